#!lua flags=allow-oom
-- API DELETE. KEYS: ven, venq, venpm, venreq. ARGV: force (1/0), requestID
-- of the cancel to queue. Returns JSON: ["404"], ["409"] queue full,
-- ["202", name, fp, reg] cancel queued (or already),
-- ["200", name, fp, reg] deleted.
-- allow-oom (first line): the operator deletes VENs to free memory when
-- Redis is at maxmemory; the writes besides DEL (cancel entry, memo) are
-- small and bounded.
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
  end
  res = cjson.encode({'202', h[3] or '', h[4] or '', h[1]})
else
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  res = cjson.encode({'200', h[3] or '', h[4] or '', h[1] or ''})
end
redis.call('SET', KEYS[4], res, 'EX', MEMO_TTL_S)
return res
