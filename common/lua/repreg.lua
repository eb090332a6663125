-- A VEN's oadrRegisterReport (docs/reports.md). KEYS: venreports:{v},
-- venrr:{v}, venq:{v}, venreq:{v}:<rid>. ARGV[1] the VEN's METADATA
-- reports (JSON), ARGV[2] the oadrCreateReport queue entry ('' when the
-- requests go inside oadrRegisteredReport or there are none), ARGV[3] n,
-- then n (reportRequestID, reportSpecifierID, record JSON) triples: the
-- VTN's new report requests.
-- The registration replaces the previous one; a request of the VTN for a
-- reportSpecifierID the new requests cover is superseded (removed), and an
-- oadrCreateReport of a policy not yet delivered is dropped with it. Returns 1, or 0
-- when this request id already did it (a retry: the reply is the same,
-- the reportRequestIDs being derived from the request id).
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
local n = tonumber(ARGV[3])
local specs = {}
for i = 0, n - 1 do specs[ARGV[5 + 3 * i]] = true end
if n > 0 then
  local old = redis.call('HGETALL', KEYS[2])
  for i = 1, #old, 2 do
    local ok, r = pcall(cjson.decode, old[i + 1])
    if not ok or type(r) ~= 'table' or specs[r.reportSpecifierID] then
      redis.call('HDEL', KEYS[2], old[i])
    end
  end
  for i = 0, n - 1 do
    if redis.call('HLEN', KEYS[2]) < REPORT_REQUESTS_MAX then
      redis.call('HSET', KEYS[2], ARGV[4 + 3 * i], ARGV[6 + 3 * i])
    end
  end
end
-- New requests supersede an undelivered oadrCreateReport of an earlier
-- registration also when they go inside oadrRegisteredReport (a VEN whose
-- policy changed from poll to registered).
if ARGV[2] ~= '' or n > 0 then
  for _, m in ipairs(redis.call('LRANGE', KEYS[3], 0, QUEUE_MAX - 1)) do
    -- The policy's own (crep-...); the API's (crapi-...) stay.
    if string.sub(m, 1, 7) == KIND_CREATEREPORT .. SEP .. 'crep-' then redis.call('LREM', KEYS[3], 1, m) end
  end
end
if ARGV[2] ~= '' and redis.call('LLEN', KEYS[3]) < QUEUE_MAX then redis.call('RPUSH', KEYS[3], ARGV[2]) end
redis.call('SET', KEYS[4], '1', 'EX', MEMO_TTL_S)
return 1
