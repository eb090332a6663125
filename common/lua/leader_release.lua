-- Gives the scheduler's lease up if it is still ours. KEYS[1]
-- vtn:scheduler:leader; ARGV[1] "<epoch> <instance>" as we hold it.
local cur = redis.call('GET', KEYS[1])
if cur and cur == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
