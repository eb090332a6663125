-- KEYS[1] vtn:event:<id>, KEYS[2] vtn:event:<id>:vens. ARGV: venID,
-- modificationNumber, optIn|optOut, responseCode, now. Records the VEN's
-- answer and keeps the event's optIn/optOut counts (a VEN that changes its
-- mind moves from one count to the other). 0 when the event is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local counts = {optIn = F_EVENT_OPT_IN, optOut = F_EVENT_OPT_OUT}
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then
  local was = counts[string.match(old, '^%S+ (%S+)')]
  if was then redis.call('HINCRBY', KEYS[1], was, -1) end
end
redis.call('HINCRBY', KEYS[1], counts[ARGV[3]], 1)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5])
return 1
