-- Compare-and-delete: KEYS[1] an index key, ARGV[1] the venID it must hold.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
