-- Claims a unique index (vtn:venname:*, vtn:venfp:*, vtn:venreg:*).
-- KEYS[1] the index key; ARGV[1] our venID; ARGV[2] a dangling venID we may
-- replace, or "". Returns the venID the key holds afterwards.
local v = redis.call('GET', KEYS[1])
if (not v) or v == ARGV[1] or (ARGV[2] ~= '' and v == ARGV[2]) then
  if v ~= ARGV[1] then redis.call('SET', KEYS[1], ARGV[1]) end
  return ARGV[1]
end
return v
