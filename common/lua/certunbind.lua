-- Revocation: KEYS[1] ven; ARGV[1] the revoked certificate's fingerprint.
-- Removes the binding only when the VEN is still bound to that
-- certificate. Returns 1 or 0.
if redis.call('HGET', KEYS[1], F_VEN_FP) == ARGV[1] then
  redis.call('HDEL', KEYS[1], F_VEN_FP)
  return 1
end
return 0
