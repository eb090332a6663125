-- The VEN's oadrCanceledPartyRegistration. KEYS: ven, venq, venpm, venreq.
-- ARGV: registrationID ("" = not given), fingerprint. Returns JSON: ["463"],
-- ["463f"], ["452"], ["N"] nothing was being cancelled,
-- ["D", name, fp, reg] record deleted.
local memo = redis.call('GET', KEYS[4])
if memo then return memo end
local h = redis.call('HMGET', KEYS[1], F_VEN_REG, F_VEN_FP, F_VEN_STATE, F_VEN_NAME)
if not h[1] then return '["463"]' end
if ARGV[2] ~= '' and h[2] and h[2] ~= ARGV[2] then return '["463f"]' end
if ARGV[1] ~= '' and h[1] ~= ARGV[1] then return '["452"]' end
if h[3] ~= VEN_CANCELLING then return '["N"]' end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local res = cjson.encode({'D', h[4] or '', h[2] or '', h[1]})
redis.call('SET', KEYS[4], res, 'EX', MEMO_TTL_S)
return res
