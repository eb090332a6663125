-- API reregister. KEYS: ven, venq. ARGV: requestID of the message. Returns
-- "404", "409r" not registered, "409c" being cancelled, "409q" queue full,
-- "202" queued, "202p" already queued.
if redis.call('EXISTS', KEYS[1]) == 0 then return '404' end
local h = redis.call('HMGET', KEYS[1], F_VEN_REG, F_VEN_STATE, F_VEN_REREG)
if not h[1] then return '409r' end
if h[2] == VEN_CANCELLING then return '409c' end
if h[3] == '1' then
  for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    if string.sub(e, 1, 2) == KIND_REREG .. SEP then return '202p' end
  end
end
if redis.call('LLEN', KEYS[2]) >= QUEUE_MAX then return '409q' end
redis.call('HSET', KEYS[1], F_VEN_REREG, '1')
redis.call('RPUSH', KEYS[2], KIND_REREG .. SEP .. ARGV[1])
-- a push VEN's job runs at once (pushclaim)
push_mark(KEYS[1])
return '202'
