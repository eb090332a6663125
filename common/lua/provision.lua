-- KEYS[1] ven:{id}. ARGV: venName, fingerprint, now. Creates a provisioned
-- record unless one exists (then 0: a retry of the same request, whose
-- claimed id it is).
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], F_VEN_PROVISIONED, '1', F_VEN_CREATED, ARGV[3])
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], F_VEN_NAME, ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], F_VEN_FP, ARGV[2]) end
return 1
