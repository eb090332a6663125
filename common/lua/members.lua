-- The members of a group or a program: what events target VENs by.
-- KEYS[1] the record (vtn:group:<id> or vtn:program:<id>), KEYS[2] its
-- members (vtn:group:<id>:vens, a SET; vtn:program:<id>:vens, a ZSET of
-- score 0 so the API pages it), KEYS[3] the list of its kind (vtn:groups,
-- vtn:programs), KEYS[4] vtn:events:ver.
-- ARGV: op ('put' replace, 'batch' add then remove, 'del' delete the
-- group), kind (TARGET_GROUP or TARGET_PROGRAM), id, name (put of a group),
-- now, nadd, then the nadd venIDs to add (put: the members), then the
-- venIDs to remove.
-- A group is created by its first put; a program must exist. Each VEN that
-- joins or leaves gets or loses the "<kind><id>" member of its ventargets
-- set (one write per VEN that changes, none per event); the events version
-- is bumped once when anything changed.
-- Returns {'200'|'201', members, added, removed} or {'404'}.
local op, kind, id = ARGV[1], ARGV[2], ARGV[3]
local zset = kind == TARGET_PROGRAM
local tag = kind .. id
local function key(p, v) return (string.gsub(p, '<[^>]*>', function() return v end, 1)) end
local existed = redis.call('EXISTS', KEYS[1]) == 1
if not existed and (zset or op ~= 'put') then return {'404'} end
local nadd = tonumber(ARGV[6])
local added, removed = 0, 0
local function add(ven)
  local n = zset and redis.call('ZADD', KEYS[2], 0, ven) or redis.call('SADD', KEYS[2], ven)
  if n == 1 then
    redis.call('SADD', key(KEY_VENTARGETS, ven), tag)
    added = added + 1
  end
end
local function rem(ven)
  local n = zset and redis.call('ZREM', KEYS[2], ven) or redis.call('SREM', KEYS[2], ven)
  if n == 1 then
    redis.call('SREM', key(KEY_VENTARGETS, ven), tag)
    removed = removed + 1
  end
end
if op == 'put' or op == 'del' then
  local keep = {}
  for i = 7, 6 + nadd do keep[ARGV[i]] = true end
  local cur = zset and redis.call('ZRANGE', KEYS[2], 0, -1) or redis.call('SMEMBERS', KEYS[2])
  for _, ven in ipairs(cur) do
    if not keep[ven] then rem(ven) end
  end
end
if op == 'del' then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], id)
  redis.call('INCR', KEYS[4])
  return {'200', 0, 0, removed}
end
for i = 7, 6 + nadd do add(ARGV[i]) end
for i = 7 + nadd, #ARGV do rem(ARGV[i]) end
if not zset then
  if not existed then redis.call('HSET', KEYS[1], F_GROUP_CREATED, ARGV[5]) end
  if op == 'put' then redis.call('HSET', KEYS[1], F_GROUP_NAME, ARGV[4]) end
  redis.call('HSET', KEYS[1], F_GROUP_MODIFIED, ARGV[5])
  redis.call('ZADD', KEYS[3], 0, id)
end
if added + removed > 0 then redis.call('INCR', KEYS[4]) end
local card = zset and redis.call('ZCARD', KEYS[2]) or redis.call('SCARD', KEYS[2])
return {existed and '200' or '201', card, added, removed}
