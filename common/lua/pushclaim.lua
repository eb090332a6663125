-- A gateway takes the push jobs that are due (docs/gateway.md, "Push
-- mode"). KEYS: vtn:push:due, vtn:push:jobs, vtn:push:dirty, vtn:push:ver,
-- vtn:events:ver, vtn:push:marks. ARGV: now (ms), lease (ms), owner (the gateway's instance
-- id), how many jobs at most. Returns {venID, transportAddress, attempts,
-- rid, since} per job taken; its score becomes now + lease, so no other
-- gateway takes it until this one completes it or dies (then the lease
-- ends and the job is due again, as a retry).
--
-- An events version this script has not seen yet makes every push VEN due
-- now (its poll computes whether its event set changed); one whose job is
-- leased runs once more after it (vtn:push:dirty), one waiting for a retry
-- keeps its time. The VENs of vtn:push:marks (a message was queued for
-- them) are made due the same way. A member that is no longer a registered
-- push VEN leaves.
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local function key(p, v) return (string.gsub(p, '<[^>]*>', function() return v end, 1)) end
local function mark(ven)
  local job = redis.call('HGET', KEYS[2], ven)
  if not job then
    redis.call('ZADD', KEYS[1], 'XX', now, ven)
  elseif string.sub(job, 1, 1) ~= PUSH_SEP then
    redis.call('SADD', KEYS[3], ven)
  end
end
local v = redis.call('GET', KEYS[5]) or '0'
if redis.call('GET', KEYS[4]) ~= v then
  redis.call('SET', KEYS[4], v)
  for _, ven in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do mark(ven) end
end
for _, ven in ipairs(redis.call('SPOP', KEYS[6], 1000)) do mark(ven) end
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, ven in ipairs(due) do
  local vk = key(KEY_VEN, ven)
  local h = redis.call('HMGET', vk, F_VEN_REG, F_VEN_PULL, F_VEN_TRANSPORT)
  if not h[1] or h[2] ~= '0' or not h[3] then
    redis.call('ZREM', KEYS[1], ven)
    redis.call('HDEL', KEYS[2], ven)
    redis.call('SREM', KEYS[3], ven)
  else
    local attempts, rid, since = 0, '', now
    local job = redis.call('HGET', KEYS[2], ven)
    if job then
      local o, a, r, s = string.match(job, '^([^|]*)|(%d+)|([^|]*)|(%d+)$')
      if o then
        attempts, rid, since = tonumber(a), r, tonumber(s)
        if o ~= '' then
          -- Its gateway died holding the lease: what it had polled may not
          -- have arrived. The VEN's event set is computed again (its cursor
          -- forgotten), a popped queue entry comes back to the same rid.
          attempts = attempts + 1
          redis.call('HDEL', vk, F_VEN_EVENTS_VER, F_VEN_EVENTS_HASH)
        end
      end
    end
    redis.call('ZADD', KEYS[1], now + lease, ven)
    redis.call('HSET', KEYS[2], ven, ARGV[3] .. PUSH_SEP .. attempts .. PUSH_SEP .. rid .. PUSH_SEP .. since)
    out[#out + 1] = {ven, h[3], attempts, rid, since}
  end
end
return out
