-- PUT /api/v1/vens/<venID>/targets. KEYS[1] ven:{<venID>}, KEYS[2]
-- ventargets:{<venID>}, KEYS[3] vtn:events:ver. ARGV: venID, nres, the
-- nres resourceIDs, then the partyIDs.
-- Replaces the VEN's resourceIDs and partyIDs (its "r:"/"y:" ventargets
-- members; its groups and programs stay) and keeps the reverse indexes
-- (vtn:resource:<id>:vens, vtn:party:<id>:vens); the events version is
-- bumped once when anything changed. Returns {'200', changes} or {'404'}.
local function key(p, v) return (string.gsub(p, '<[^>]*>', function() return v end, 1)) end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'404'} end
local ven, nres = ARGV[1], tonumber(ARGV[2])
local index = {[TARGET_RESOURCE] = KEY_RESOURCEVENS, [TARGET_PARTY] = KEY_PARTYVENS}
local want = {}
for i = 3, 2 + nres do want[TARGET_RESOURCE .. ARGV[i]] = true end
for i = 3 + nres, #ARGV do want[TARGET_PARTY .. ARGV[i]] = true end
local n = #TARGET_RESOURCE
local changes = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local idx = index[string.sub(m, 1, n)]
  if idx and not want[m] then
    redis.call('SREM', KEYS[2], m)
    redis.call('SREM', key(idx, string.sub(m, n + 1)), ven)
    changes = changes + 1
  end
end
for m in pairs(want) do
  if redis.call('SADD', KEYS[2], m) == 1 then
    redis.call('SADD', key(index[string.sub(m, 1, n)], string.sub(m, n + 1)), ven)
    changes = changes + 1
  end
end
if changes > 0 then redis.call('INCR', KEYS[3]) end
return {'200', changes}
