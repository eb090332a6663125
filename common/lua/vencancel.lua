-- The VEN cancels its registration. KEYS: ven, venq, venpm, venreq. ARGV:
-- registrationID, fingerprint ("" without TLS). Returns JSON:
--   ["463"] not registered, ["463f"] fingerprint mismatch,
--   ["452"] other registrationID,
--   ["U", name, fp, reg] registration removed, record kept,
--   ["D", name, fp, reg] record deleted (the VTN had cancelled it already).
local memo = redis.call('GET', KEYS[4])
if memo then return memo end
local h = redis.call('HMGET', KEYS[1], F_VEN_REG, F_VEN_FP, F_VEN_STATE, F_VEN_NAME)
if not h[1] then return '["463"]' end
if ARGV[2] ~= '' and h[2] and h[2] ~= ARGV[2] then return '["463f"]' end
if h[1] ~= ARGV[1] then return '["452"]' end
local kind = 'U'
if h[3] == VEN_CANCELLING then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  kind = 'D'
else
  redis.call('HDEL', KEYS[1], F_VEN_REG, F_VEN_REG_AT, F_VEN_PULL, F_VEN_TRANSPORT,
             F_VEN_REPORT_ONLY, F_VEN_XML_SIG, F_VEN_REREG, F_VEN_POLL_RID)
  redis.call('DEL', KEYS[2], KEYS[3])
end
local res = cjson.encode({kind, h[4] or '', h[2] or '', h[1]})
redis.call('SET', KEYS[4], res, 'EX', MEMO_TTL_S)
return res
