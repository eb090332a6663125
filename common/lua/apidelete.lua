#!lua flags=allow-oom
-- API DELETE. KEYS: ven, venq, venpm, venreq, ventargets, vtn:events:ver.
-- ARGV: force (1/0), requestID of the cancel to queue, venID. Returns JSON: ["404"], ["409"] queue full,
-- ["202", name, fp, reg] cancel queued (or already),
-- ["200", name, fp, reg] deleted.
-- allow-oom (first line): the operator deletes VENs to free memory when
-- Redis is at maxmemory; the writes besides DEL (cancel entry, memo) are
-- small and bounded.
-- A VEN being deleted leaves its groups, programs and the resourceID/partyID
-- indexes (what its ventargets set names) at once, also when only its
-- cancel is queued (the record goes when the VEN acknowledges it, in the
-- canceled script), with one bump of the events version when it was in any.
local function key(p, v) return (string.gsub(p, '<[^>]*>', function() return v end, 1)) end
local function forget(ven)
  local index = {[TARGET_GROUP] = {'SREM', KEY_GROUPVENS}, [TARGET_PROGRAM] = {'ZREM', KEY_PROGRAMVENS},
    [TARGET_RESOURCE] = {'SREM', KEY_RESOURCEVENS}, [TARGET_PARTY] = {'SREM', KEY_PARTYVENS}}
  local n = #TARGET_GROUP
  local members = redis.call('SMEMBERS', KEYS[5])
  for _, m in ipairs(members) do
    local idx = index[string.sub(m, 1, n)]
    if idx then redis.call(idx[1], key(idx[2], string.sub(m, n + 1)), ven) end
  end
  if #members > 0 then
    redis.call('DEL', KEYS[5])
    redis.call('INCR', KEYS[6])
  end
end
local memo = redis.call('GET', KEYS[4])
if memo then return memo end
if redis.call('EXISTS', KEYS[1]) == 0 then return '["404"]' end
local h = redis.call('HMGET', KEYS[1], F_VEN_REG, F_VEN_STATE, F_VEN_NAME, F_VEN_FP)
local res
if ARGV[1] ~= '1' and h[1] then
  if h[2] ~= VEN_CANCELLING then
    if redis.call('LLEN', KEYS[2]) >= QUEUE_MAX then return '["409"]' end
    redis.call('HSET', KEYS[1], F_VEN_STATE, VEN_CANCELLING)
    redis.call('RPUSH', KEYS[2], KIND_CANCEL .. SEP .. ARGV[2] .. SEP .. h[1])
    push_mark(KEYS[1])
  end
  forget(ARGV[3])
  res = cjson.encode({'202', h[3] or '', h[4] or '', h[1]})
else
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  forget(ARGV[3])
  res = cjson.encode({'200', h[3] or '', h[4] or '', h[1] or ''})
end
redis.call('SET', KEYS[4], res, 'EX', MEMO_TTL_S)
return res
