-- The poll's pop. KEYS: ven, venq, venpm. ARGV[1] the poll's request id,
-- ARGV[2] the entry kinds this worker can deliver (e.g. "CR").
-- Returns {entry or nil, number of entries dropped because of an unknown
-- kind}. The same request id gets the same entry again (a retry on another
-- worker); reregistration entries are dropped silently once the VEN
-- registered again (rq cleared).
local pr = redis.call('HGET', KEYS[1], F_VEN_POLL_RID)
if pr == ARGV[1] then
  local m = redis.call('GET', KEYS[3])
  if m then return {m, 0} end
end
local rq = redis.call('HGET', KEYS[1], F_VEN_REREG)
local skipped = 0
for i = 1, QUEUE_MAX do
  local m = redis.call('LPOP', KEYS[2])
  if not m then return {false, skipped} end
  local kind = string.sub(m, 1, 1)
  if string.sub(m, 2, 2) ~= SEP or not string.find(ARGV[2], kind, 1, true) then
    skipped = skipped + 1
  elseif kind ~= KIND_REREG or rq == '1' then
    redis.call('HSET', KEYS[1], F_VEN_POLL_RID, ARGV[1])
    redis.call('SET', KEYS[3], m, 'EX', MEMO_TTL_S)
    return {m, skipped}
  end
end
return {false, skipped}
