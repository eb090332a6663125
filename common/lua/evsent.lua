-- KEYS[1] ven:{id}, then per event sent at a modificationNumber the VEN had
-- not received yet: vtn:event:<id>, vtn:event:<id>:vens:<shard> (the VEN's
-- shard of its participation, vtn_key_eventvens). ARGV: events
-- version, set hash, earliest end (ms), '1' when an event sent needs an
-- answer the VEN has not given ('0' else), venID, then each such event's
-- modificationNumber in the order of its keys.
-- Records what the VEN was last sent of its events, and in each event's
-- participation the modificationNumber it received (its field "<received
-- mn> <answered mn> <i|o> <code> <ms>", "-" for what it has not answered;
-- the event's received count grows with each new field). Never creates a
-- record (a VEN deleted meanwhile stays deleted), nor the field of an
-- event removed meanwhile. 1 written, 0 no record.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], F_VEN_EVENTS_VER, ARGV[1], F_VEN_EVENTS_HASH, ARGV[2],
  F_VEN_EVENTS_END, ARGV[3], F_VEN_EVENTS_AWAIT, ARGV[4])
for i = 2, #KEYS - 1, 2 do
  local mn = ARGV[5 + i / 2]
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local old = redis.call('HGET', KEYS[i + 1], ARGV[5])
    if old then
      redis.call('HSET', KEYS[i + 1], ARGV[5], (string.gsub(old, '^%S+', mn, 1)))
    else
      redis.call('HINCRBY', KEYS[i], F_EVENT_RECEIVED, 1)
      redis.call('HSET', KEYS[i + 1], ARGV[5], mn .. ' - - - -')
    end
  end
end
return 1
