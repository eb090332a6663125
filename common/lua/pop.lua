-- The poll's pop. KEYS: ven, venq, venpm. ARGV[1] the poll's request id,
-- ARGV[2] the entry kinds this worker can deliver (e.g. "CR").
-- Returns {entry or nil, 0}; the second element, once the number of
-- entries dropped for an unknown kind, stays 0: none is dropped any more.
--
-- The same request id gets the same entry again (a retry on another
-- worker). The first entry of a kind this worker delivers is removed and
-- returned. Entries of other kinds (written by a newer version during a
-- rollout) stay where they are for a worker that knows them: a known entry
-- behind them overtakes them, and a queue of unknown entries only answers
-- as an empty one. Reregistration entries whose request was answered
-- meanwhile (the VEN registered again, rq cleared) are dropped on the way.
local pr = redis.call('HGET', KEYS[1], F_VEN_POLL_RID)
if pr == ARGV[1] then
  local m = redis.call('GET', KEYS[3])
  if m then return {m, 0} end
end
local rq = redis.call('HGET', KEYS[1], F_VEN_REREG)
for _, m in ipairs(redis.call('LRANGE', KEYS[2], 0, QUEUE_MAX - 1)) do
  local kind = string.sub(m, 1, 1)
  if string.sub(m, 2, 2) == SEP and string.find(ARGV[2], kind, 1, true) then
    -- LREM 1 takes the first equal entry: this one, or an equal one before
    -- it, which is the same message.
    redis.call('LREM', KEYS[2], 1, m)
    if kind ~= KIND_REREG or rq == '1' then
      redis.call('HSET', KEYS[1], F_VEN_POLL_RID, ARGV[1])
      redis.call('SET', KEYS[3], m, 'EX', MEMO_TTL_S)
      return {m, 0}
    end
  end
end
return {false, 0}
