-- KEYS[1] venopts:{venID}, KEYS[2] vtn:opts:sched, and for an opt of one
-- event KEYS[3] vtn:event:<id>, KEYS[4] vtn:event:<id>:vens:<shard> (the
-- VEN's shard of its participation). ARGV: optID, the record (JSON, with
-- "expires" in ms and, for a schedule, "m": its vtn:opts:sched member),
-- the schedule's score (its last end, ms; '' for an event opt), now (ms),
-- venID, the event opt's letter (i or o; '' for a schedule), eventID ('').
-- Stores one oadrCreateOpt of one VEN (docs/opt.md):
--  * first drops the VEN's opts past their "expires" and every schedule of
--    vtn:opts:sched that has ended (a read never needs them again);
--  * the same optID again replaces the opt (a retry, or a corrected
--    schedule) unless it named another event: -2;
--  * a new optID past OPTS_MAX opts: -1, nothing written but the clean-up
--    of expired opts above;
--  * an event opt replaces the VEN's earlier opt for the same event, and
--    becomes the sixth part of the VEN's participation field (rule 206:
--    oadrCreatedEvent answers no longer change it); the event's optIn/
--    optOut counts move from the field's former opt to this one. An event
--    removed meanwhile: -3, nothing written.
-- 1 stored.
local now = tonumber(ARGV[4])
local event = ARGV[7]
if event ~= '' and redis.call('EXISTS', KEYS[3]) == 0 then return -3 end
local all = redis.call('HGETALL', KEYS[1])
local count = 0
local old, same_event
for i = 1, #all, 2 do
  local ok, rec = pcall(cjson.decode, all[i + 1])
  local id = all[i]
  if not ok or type(rec) ~= 'table' then
    redis.call('HDEL', KEYS[1], id)
  elseif tonumber(rec.expires) and tonumber(rec.expires) <= now and id ~= ARGV[1] then
    if rec.m then redis.call('ZREM', KEYS[2], rec.m) end
    redis.call('HDEL', KEYS[1], id)
  else
    count = count + 1
    if id == ARGV[1] then
      old = rec
    elseif event ~= '' and rec.eventID == event then
      same_event = {id = id, rec = rec}
    end
  end
end
if old then
  if (old.eventID or '') ~= event then return -2 end
  if old.m then redis.call('ZREM', KEYS[2], old.m) end
elseif same_event == nil and count >= OPTS_MAX then
  return -1
end
if same_event then redis.call('HDEL', KEYS[1], same_event.id) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if event == '' then
  local rec = cjson.decode(ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], rec.m)
  return 1
end
local counts = {i = F_EVENT_OPT_IN, o = F_EVENT_OPT_OUT}
local field = redis.call('HGET', KEYS[4], ARGV[5])
local mn = cjson.decode(ARGV[2]).modificationNumber
local letter = ARGV[6]
local head, answer, eo
if field then head, answer, eo = string.match(field, '^(%S+ %S+ (%S+) %S+ %S+) ?(%S*)') end
if head then
  local was = eo ~= '' and eo or answer
  if counts[was] then redis.call('HINCRBY', KEYS[3], counts[was], -1) end
  field = head
else
  redis.call('HINCRBY', KEYS[3], F_EVENT_RECEIVED, 1)
  field = string.format('%d', mn) .. ' - - - -'
end
redis.call('HINCRBY', KEYS[3], counts[letter], 1)
redis.call('HSET', KEYS[4], ARGV[5], field .. ' ' .. letter)
return 1
