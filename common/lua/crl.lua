-- KEYS: vtn:ca:{id}:revoked, vtn:ca:{id}:crlnumber (one hash tag). ARGV:
-- now (s), the most entries wanted. Drops entries of certificates expired
-- for more than AFTER_EXPIRY_S (TLS refuses them anyway; the margin covers
-- clock skew), then returns {next CRL number, members up to ARGV[2]+1} read
-- in the same atomic step, so a higher number never carries an older list.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (tonumber(ARGV[1]) - AFTER_EXPIRY_S))
local m = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]))
local n = redis.call('INCR', KEYS[2])
return {n, m}
