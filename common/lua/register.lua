-- KEYS[1] ven:{id}, KEYS[2] venq:{id}, KEYS[3] vtn:push:due. ARGV:
-- registrationID, venName, fingerprint, pull, transportAddress, reportOnly,
-- xmlSignature, now, the requestID of the VTN's METADATA
-- oadrRegisterReport, venID, the oadrRequestedOadrPollFreq the VEN is
-- given (ms; older workers send none). A push VEN (pull "0" with a transportAddress)
-- is due for a push job now, a pull VEN leaves vtn:push:due. Empty
-- name/fingerprint keep the stored ones. Returns 1, or 0 when the VTN cancelled the
-- registration meanwhile.
local k = KEYS[1]
if redis.call('HGET', k, F_VEN_STATE) == VEN_CANCELLING then return 0 end
if redis.call('EXISTS', k) == 0 then redis.call('HSET', k, F_VEN_CREATED, ARGV[8]) end
redis.call('HSET', k, F_VEN_REG, ARGV[1], F_VEN_REG_AT, ARGV[8], F_VEN_PULL, ARGV[4],
           F_VEN_REPORT_ONLY, ARGV[6], F_VEN_XML_SIG, ARGV[7])
if ARGV[2] ~= '' then redis.call('HSET', k, F_VEN_NAME, ARGV[2]) end
if ARGV[11] and ARGV[11] ~= '' then -- the poll frequency, keeping the last poll
  local lp = redis.call('HGET', k, F_VEN_LAST_POLL)
  redis.call('HSET', k, F_VEN_LAST_POLL, (lp and string.match(lp, '^%d+') or '0') .. ' ' .. ARGV[11])
end
if ARGV[3] ~= '' then redis.call('HSET', k, F_VEN_FP, ARGV[3]) end
if ARGV[5] ~= '' then
  redis.call('HSET', k, F_VEN_TRANSPORT, ARGV[5])
else
  redis.call('HDEL', k, F_VEN_TRANSPORT)
end
redis.call('HDEL', k, F_VEN_REREG)
if KEYS[3] then
  if ARGV[4] == '0' and ARGV[5] ~= '' then
    redis.call('ZADD', KEYS[3], ARGV[8], ARGV[10])
  else
    redis.call('ZREM', KEYS[3], ARGV[10])
  end
end
-- The VTN's own METADATA oadrRegisterReport reaches the VEN on its next
-- poll (docs/reports.md): one queued is enough however often it registers.
if ARGV[9] and ARGV[9] ~= '' then
  for _, m in ipairs(redis.call('LRANGE', KEYS[2], 0, QUEUE_MAX - 1)) do
    if string.sub(m, 1, 2) == KIND_REGREPORT .. SEP then return 1 end
  end
  if redis.call('LLEN', KEYS[2]) < QUEUE_MAX then
    redis.call('RPUSH', KEYS[2], KIND_REGREPORT .. SEP .. ARGV[9])
  end
end
return 1
