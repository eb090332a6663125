-- Binds a VEN to the certificate the API just issued. KEYS: ven, venreq.
-- ARGV[1] the new fingerprint. Returns JSON ["404"] (no such VEN) or
-- ["B", previous fingerprint or ""]; the outcome is kept in venreq, so a
-- retry removes the same previous index entry.
local memo = redis.call('GET', KEYS[2])
if memo then return memo end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return '["404"]'
end
local old = redis.call('HGET', KEYS[1], F_VEN_FP) or ''
redis.call('HSET', KEYS[1], F_VEN_FP, ARGV[1])
local res = cjson.encode({'B', old})
redis.call('SET', KEYS[2], res, 'EX', MEMO_TTL_S)
return res
