-- The scheduler's event_transitions task. KEYS[1] vtn:events:due, KEYS[2]
-- vtn:events:ver, KEYS[3..] vtn:event:<id> of each due event. ARGV: now,
-- then the eventIDs in the order of their keys. Each event still due moves
-- to its next transition (near, start, end; a cancelled one only has its
-- end) or leaves the index; one INCR of the version for the whole batch,
-- so that every VEN's next poll computes its set again (the new eventStatus,
-- or the event dropping out at its end). Safe to repeat: an event moved on
-- is no longer due. Returns how many transitions were applied.
local now, n = tonumber(ARGV[1]), 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local score = tonumber(redis.call('ZSCORE', KEYS[1], id))
  if score and score <= now then
    local h = redis.call('HMGET', KEYS[i + 1], F_EVENT_NEAR, F_EVENT_START, F_EVENT_END,
      F_EVENT_CANCELLED)
    local times = h[4] == '1' and {h[3]} or {h[1], h[2], h[3]}
    local next
    for _, t in ipairs(times) do
      t = tonumber(t)
      if t and t > now and (next == nil or t < next) then next = t end
    end
    if next then redis.call('ZADD', KEYS[1], next, id)
    else redis.call('ZREM', KEYS[1], id) end
    n = n + 1
  end
end
if n > 0 then redis.call('INCR', KEYS[2]) end
return n
