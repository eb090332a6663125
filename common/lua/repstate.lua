-- The state of the VTN's report requests to one VEN (docs/reports.md).
-- KEYS[1] venrr:{v}. ARGV[1] what the VEN sent, ARGV[2] now (ms), ARGV[3..]
-- reportRequestIDs:
--   created   oadrCreatedReport with these pendingReports: a listed
--             request still 'requested' becomes 'created'; every record's
--             'pending' says whether it was listed
--   canceled  oadrCanceledReport with these pendingReports: the same
--             'pending' flags; a 'cancelling' request not listed is
--             'cancelled'
--   update    oadrUpdateReport for these requests: 'active' (also from
--             'overdue'), lastUpdate
-- IDs that are no request of the VTN are ignored. Returns the records changed.
local now = tonumber(ARGV[2])
local n = 0
local function put(id, r)
  redis.call('HSET', KEYS[1], id, cjson.encode(r))
  n = n + 1
end
if ARGV[1] == 'update' then
  for i = 3, #ARGV do
    local j = redis.call('HGET', KEYS[1], ARGV[i])
    local ok, r = pcall(cjson.decode, j or '')
    if j and ok and type(r) == 'table' then
      if r.state == 'requested' or r.state == 'created' or r.state == 'overdue' then
        r.state = 'active'
      end
      r.lastUpdate = now
      put(ARGV[i], r)
    end
  end
  return n
end
local listed = {}
for i = 3, #ARGV do listed[ARGV[i]] = true end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local id = all[i]
  local ok, r = pcall(cjson.decode, all[i + 1])
  if ok and type(r) == 'table' then
    local pending = listed[id] == true
    local changed = r.pending ~= pending
    r.pending = pending
    if ARGV[1] == 'created' and pending and r.state == 'requested' then
      r.state = 'created'
      r.createdAt = now
      changed = true
    elseif ARGV[1] == 'canceled' and not pending and r.state == 'cancelling' then
      r.state = 'cancelled'
      r.cancelledAt = now
      changed = true
    end
    if changed then put(id, r) end
  end
end
return n
