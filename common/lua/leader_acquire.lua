-- The scheduler's lease. KEYS: vtn:scheduler:leader, vtn:scheduler:epoch.
-- ARGV: this instance, the lease (ms). Takes the lease if free, bumping the
-- epoch, or renews it if it is ours. Returns the epoch when we hold the
-- lease, 0 otherwise. One script, so the check and the write cannot
-- interleave with a rival's.
local cur = redis.call('GET', KEYS[1])
if cur then
  local e, who = string.match(cur, '^(%d+) (.+)$')
  if who == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(e)
  end
  return 0
end
local e = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], e .. ' ' .. ARGV[1], 'PX', ARGV[2])
return e
