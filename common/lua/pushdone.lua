-- The gateway holding a push job reports on it. KEYS: vtn:push:due,
-- vtn:push:jobs, vtn:push:dirty, ven:{id}. ARGV: venID, owner, what, now
-- (ms), next (ms: the job's next score), rid, reason. what:
--   renew  the gateway is about to poll with rid; its lease runs to next
--   ok     delivered everything due: due again at next (the recheck), or
--          now when something became due meanwhile
--   retry  this attempt failed: due again at next, the VEN's event set is
--          computed again then (its cursor forgotten), rid is kept so a
--          popped queue entry comes back
--   giveup as retry, with the attempts counted from 0 again, and the VEN
--          marked undelivered (F_VEN_PUSH_UNDELIVERED: "now attempts reason")
-- Returns 1, or 0 when the job is not this gateway's any more (its lease
-- ended and another took it): then nothing is written.
local job = redis.call('HGET', KEYS[2], ARGV[1])
if not job then return 0 end
local o, a, r, s = string.match(job, '^([^|]*)|(%d+)|([^|]*)|(%d+)$')
if o ~= ARGV[2] then return 0 end
local what, now, nxt = ARGV[3], ARGV[4], ARGV[5]
if what == 'renew' then
  redis.call('ZADD', KEYS[1], 'XX', nxt, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], o .. PUSH_SEP .. a .. PUSH_SEP .. ARGV[6] .. PUSH_SEP .. s)
  return 1
end
if what == 'ok' then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[4], F_VEN_PUSH_UNDELIVERED)
  if redis.call('SREM', KEYS[3], ARGV[1]) == 1 then nxt = now end
  redis.call('ZADD', KEYS[1], 'XX', nxt, ARGV[1])
  return 1
end
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[1], 'XX', nxt, ARGV[1])
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HDEL', KEYS[4], F_VEN_EVENTS_VER, F_VEN_EVENTS_HASH)
end
if what == 'giveup' then
  redis.call('HSET', KEYS[2], ARGV[1], PUSH_SEP .. '0' .. PUSH_SEP .. ARGV[6] .. PUSH_SEP .. now)
  if redis.call('EXISTS', KEYS[4]) == 1 then
    redis.call('HSET', KEYS[4], F_VEN_PUSH_UNDELIVERED, now .. ' ' .. (tonumber(a) + 1) .. ' ' .. ARGV[7])
  end
else
  redis.call('HSET', KEYS[2], ARGV[1], PUSH_SEP .. (tonumber(a) + 1) .. PUSH_SEP .. ARGV[6] .. PUSH_SEP .. s)
end
return 1
