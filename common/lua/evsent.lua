-- KEYS[1] ven:{id}. ARGV: events version, set hash, earliest end (ms),
-- '1' when an event sent needs an answer the VEN has not given ('0' else).
-- Records what the VEN was last sent of its events; never creates a record
-- (a VEN deleted meanwhile stays deleted). 1 written, 0 no record.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], F_VEN_EVENTS_VER, ARGV[1], F_VEN_EVENTS_HASH, ARGV[2],
  F_VEN_EVENTS_END, ARGV[3], F_VEN_EVENTS_AWAIT, ARGV[4])
return 1
