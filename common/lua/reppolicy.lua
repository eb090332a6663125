-- A report request policy set or removed through the API (docs/reports.md).
-- KEYS[1] the record that must exist (ven:{v} or vtn:program:<id>; the
-- policy hash itself for the default), KEYS[2] the hash holding the policy
-- (ven:{v} itself for a VEN's). ARGV[1] its field, ARGV[2] the policy JSON
-- ('' removes it), ARGV[3] '1' when KEYS[1] must exist. Returns 0 when
-- the record does not exist (nothing written; a deleted VEN or program is
-- not brought back as a record holding only a policy), else 1 (a removal
-- that found nothing: 2).
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[2] == '' then
  if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 2 end
  return 1
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
