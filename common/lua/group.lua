-- KEYS[1] vtn:group:<id>, KEYS[2] vtn:group:<id>:vens, KEYS[3] vtn:groups,
-- KEYS[4] vtn:events:ver. ARGV: groupID, name, now, the VEN group-set key
-- pattern (vengroups:{<venID>}), then the venIDs ('-' first: delete the
-- group). Replaces the members: each VEN's vengroups set follows (one write
-- per VEN that joins or leaves, none per event), and the events version is
-- bumped once, as a member change can change what VENs receive.
-- Returns {'200'|'201', members} or {'404'} for a delete of nothing.
local function vg(ven) return (string.gsub(ARGV[4], '<venID>', ven)) end
local new = {}
local del = ARGV[5] == '-'
if not del then
  for i = 5, #ARGV do new[ARGV[i]] = true end
end
local existed = redis.call('EXISTS', KEYS[1]) == 1
if del and not existed then return {'404'} end
for _, ven in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if not new[ven] then
    redis.call('SREM', KEYS[2], ven)
    redis.call('SREM', vg(ven), ARGV[1])
  end
end
if del then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('INCR', KEYS[4])
  return {'200', 0}
end
for ven in pairs(new) do
  if redis.call('SADD', KEYS[2], ven) == 1 then redis.call('SADD', vg(ven), ARGV[1]) end
end
if not existed then redis.call('HSET', KEYS[1], F_GROUP_CREATED, ARGV[3]) end
redis.call('HSET', KEYS[1], F_GROUP_NAME, ARGV[2], F_GROUP_MODIFIED, ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('INCR', KEYS[4])
return {existed and '200' or '201', redis.call('SCARD', KEYS[2])}
