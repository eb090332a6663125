-- KEYS[1] vtn:cert:<serial>. ARGV: now (ms), reason code. Marks the
-- certificate revoked unless it is already (the first revocation's time and
-- reason stay). Returns "404", "R" (revoked now) or "A" (already revoked).
if redis.call('EXISTS', KEYS[1]) == 0 then return '404' end
if redis.call('HEXISTS', KEYS[1], F_CERT_REVOKED_AT) == 1 then
  return 'A'
end
redis.call('HSET', KEYS[1], F_CERT_REVOKED_AT, ARGV[1], F_CERT_REASON, ARGV[2])
return 'R'
