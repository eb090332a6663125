-- KEYS[1] ven:{id}. ARGV: registrationID, venName, fingerprint, pull,
-- transportAddress, reportOnly, xmlSignature, now. Empty name/fingerprint
-- keep the stored ones. Returns 1, or 0 when the VTN cancelled the
-- registration meanwhile.
local k = KEYS[1]
if redis.call('HGET', k, F_VEN_STATE) == VEN_CANCELLING then return 0 end
if redis.call('EXISTS', k) == 0 then redis.call('HSET', k, F_VEN_CREATED, ARGV[8]) end
redis.call('HSET', k, F_VEN_REG, ARGV[1], F_VEN_REG_AT, ARGV[8], F_VEN_PULL, ARGV[4],
           F_VEN_REPORT_ONLY, ARGV[6], F_VEN_XML_SIG, ARGV[7])
if ARGV[2] ~= '' then redis.call('HSET', k, F_VEN_NAME, ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', k, F_VEN_FP, ARGV[3]) end
if ARGV[5] ~= '' then
  redis.call('HSET', k, F_VEN_TRANSPORT, ARGV[5])
else
  redis.call('HDEL', k, F_VEN_TRANSPORT)
end
redis.call('HDEL', k, F_VEN_REREG)
return 1
