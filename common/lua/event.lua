-- KEYS[1] vtn:event:<id>, KEYS[2] vtn:events, KEYS[3] vtn:events:ver,
-- KEYS[4] vtn:req:<rid>, KEYS[5] vtn:events:end (the scheduler's retention),
-- KEYS[6] vtn:events:due (its status transitions). ARGV: mode ('c' create,
-- 'm' modify, 'x' cancel), eventID, now, body JSON, programID, start ms,
-- end ms, modificationReason, near ms (start of the near window).
-- One write of the event and one INCR of the version, whatever the number
-- of VENs it targets. Returns {'200', eventID} (a retry of the same request
-- gets what it did the first time, from the memo), {'404'}, or {'409'} for
-- a change to a cancelled event. A cancel of a cancelled event is a no-op.
local prior = redis.call('GET', KEYS[4])
if prior then return {'200', prior} end
local mode = ARGV[1]
-- The event's next status transition after now, in the scheduler's due
-- index (none left: out of it). A cancelled event changes only at its end,
-- when it drops out of what VENs receive.
local function due(times)
  local now, next = tonumber(ARGV[3]), nil
  for _, t in ipairs(times) do
    t = tonumber(t)
    if t and t > now and (next == nil or t < next) then next = t end
  end
  if next then redis.call('ZADD', KEYS[6], next, ARGV[2])
  else redis.call('ZREM', KEYS[6], ARGV[2]) end
end
if mode == 'c' then
  redis.call('HSET', KEYS[1], F_EVENT_BODY, ARGV[4], F_EVENT_PROGRAM, ARGV[5], F_EVENT_MODNUM, 0,
    F_EVENT_CREATED, ARGV[3], F_EVENT_MODIFIED, ARGV[3], F_EVENT_START, ARGV[6], F_EVENT_END, ARGV[7],
    F_EVENT_NEAR, ARGV[9])
  redis.call('ZADD', KEYS[2], 0, ARGV[2])
  redis.call('ZADD', KEYS[5], ARGV[7], ARGV[2])
  due({ARGV[9], ARGV[6], ARGV[7]})
else
  if redis.call('EXISTS', KEYS[1]) == 0 then return {'404'} end
  if redis.call('HGET', KEYS[1], F_EVENT_CANCELLED) == '1' then
    if mode == 'x' then return {'200', ARGV[2]} end
    return {'409'}
  end
  redis.call('HINCRBY', KEYS[1], F_EVENT_MODNUM, 1)
  redis.call('HSET', KEYS[1], F_EVENT_MODIFIED, ARGV[3], F_EVENT_REASON, ARGV[8])
  if mode == 'm' then
    redis.call('HSET', KEYS[1], F_EVENT_BODY, ARGV[4], F_EVENT_PROGRAM, ARGV[5],
      F_EVENT_START, ARGV[6], F_EVENT_END, ARGV[7], F_EVENT_NEAR, ARGV[9])
    redis.call('ZADD', KEYS[5], ARGV[7], ARGV[2])
    due({ARGV[9], ARGV[6], ARGV[7]})
  else
    redis.call('HSET', KEYS[1], F_EVENT_CANCELLED, '1')
    due({redis.call('HGET', KEYS[1], F_EVENT_END)})
  end
end
redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[4], ARGV[2], 'EX', MEMO_TTL_S)
return {'200', ARGV[2]}
