-- KEYS[1] venopts:{venID}, KEYS[2] vtn:opts:sched, KEYS[3]
-- venreq:{venID}:<rid>, and for an opt of one event KEYS[4]
-- vtn:event:<id>, KEYS[5] vtn:event:<id>:vens:<shard>. ARGV: optID, venID.
-- Cancels one opt of one VEN (oadrCancelOpt): removes its record, its
-- schedule member, and for an event opt the sixth part of the VEN's
-- participation field (the oadrCreatedEvent answer, if any, counts again).
-- The outcome is kept under the request id for MEMO_TTL_S, so a retry of
-- the same request gets 1 again. 1 cancelled, 0 no such opt.
if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local ok, rec = pcall(cjson.decode, raw)
redis.call('HDEL', KEYS[1], ARGV[1])
if ok and type(rec) == 'table' then
  if rec.m then redis.call('ZREM', KEYS[2], rec.m) end
  if rec.eventID and #KEYS == 5 and redis.call('EXISTS', KEYS[4]) == 1 then
    local field = redis.call('HGET', KEYS[5], ARGV[2])
    local head, answer, eo
    if field then head, answer, eo = string.match(field, '^(%S+ %S+ (%S+) %S+ %S+) ?(%S*)') end
    if head and eo ~= '' then
      local counts = {i = F_EVENT_OPT_IN, o = F_EVENT_OPT_OUT}
      redis.call('HINCRBY', KEYS[4], counts[eo], -1)
      if counts[answer] then redis.call('HINCRBY', KEYS[4], counts[answer], 1) end
      redis.call('HSET', KEYS[5], ARGV[2], head)
    end
  end
end
redis.call('SET', KEYS[3], '1', 'EX', MEMO_TTL_S)
return 1
