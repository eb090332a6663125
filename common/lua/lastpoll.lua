-- KEYS[1] ven:{id}. ARGV: now (ms), the VEN's poll frequency (ms). The
-- VEN's last poll, written by a poll only when the stored one is old
-- enough (docs/redis-keys.md, field lp); never creates a record that was
-- deleted since the poll read it.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], F_VEN_LAST_POLL, ARGV[1] .. ' ' .. ARGV[2])
return 1
