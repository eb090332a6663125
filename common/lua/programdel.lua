-- DELETE /api/v1/programs/<id>. KEYS[1] vtn:program:<id>, KEYS[2]
-- vtn:program:<id>:vens, KEYS[3] vtn:programs, KEYS[4] vtn:events,
-- KEYS[5] vtn:events:ver, KEYS[6] vtn:reportpolicies. ARGV: programID, now (ms).
-- Refused while an event of the program has not ended and is not
-- cancelled: it reads every event's program (the list is kept short by the
-- scheduler's retention; a program's deletion is rare). Else removes the
-- program, its marketContext index and its enrollments (each enrolled
-- VEN's "p:<id>" ventargets member) and its report request policy, and bumps the events version once.
-- Returns {'200', enrolled} or {'404'} or {'409', live events, one of them}.
local function key(p, v) return (string.gsub(p, '<[^>]*>', function() return v end, 1)) end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'404'} end
local id, now = ARGV[1], tonumber(ARGV[2])
local live, first = 0, ''
for _, ev in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  local h = redis.call('HMGET', key(KEY_EVENT, ev), F_EVENT_PROGRAM, F_EVENT_END, F_EVENT_CANCELLED)
  if h[1] == id and h[3] ~= '1' and tonumber(h[2] or '0') > now then
    live = live + 1
    if first == '' then first = ev end
  end
end
if live > 0 then return {'409', tostring(live), first} end
local vens = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, ven in ipairs(vens) do
  redis.call('SREM', key(KEY_VENTARGETS, ven), TARGET_PROGRAM .. id)
end
local mc = redis.call('HGET', KEYS[1], F_PROGRAM_MC)
if mc and redis.call('GET', key(KEY_PROGRAMMC, mc)) == id then
  redis.call('DEL', key(KEY_PROGRAMMC, mc))
end
redis.call('DEL', KEYS[1], KEYS[2])
-- Its report request policy goes with it (a global key, like the others here).
redis.call('HDEL', KEYS[6], TARGET_PROGRAM .. id)
redis.call('ZREM', KEYS[3], id)
redis.call('INCR', KEYS[5])
return {'200', #vens}
