-- The scheduler's lease. KEYS: vtn:scheduler:leader, vtn:scheduler:epoch.
-- ARGV: this instance, the lease (ms). Takes the lease if free, with a new
-- epoch, or renews it if it is ours. Returns the epoch when we hold the
-- lease, 0 otherwise. One script, so the check and the write cannot
-- interleave with a rival's.
--
-- A new epoch is max(INCR of the counter, Redis' clock in ms): the counter
-- alone would restart at 1 after Redis lost its data, and a task that fences
-- its writes with the epoch would then let a deposed leader's writes win.
-- Taken from the clock, an epoch is about the ms of its takeover, so it keeps
-- growing across a data loss as long as Redis' clock does not step back past
-- the last takeover (docs/architecture.md).
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
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > e then
  e = now
  redis.call('SET', KEYS[2], string.format('%.0f', e))
end
redis.call('SET', KEYS[1], string.format('%.0f', e) .. ' ' .. ARGV[1], 'PX', ARGV[2])
return e
