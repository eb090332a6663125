-- KEYS[1] vtn:program:<id>, KEYS[2] vtn:programs, KEYS[3] vtn:programmc:<mc>,
-- KEYS[4] vtn:req:<rid>. ARGV: programID, name, marketContext, now.
-- Creates the program unless its marketContext has one; a retry of the
-- same request gets the program it created (the memo), not a 409.
local prior = redis.call('GET', KEYS[4])
if prior then return {'201', prior} end
local owner = redis.call('GET', KEYS[3])
if owner then return {'409', owner} end
redis.call('SET', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], F_PROGRAM_NAME, ARGV[2], F_PROGRAM_MC, ARGV[3], F_PROGRAM_CREATED, ARGV[4])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('SET', KEYS[4], ARGV[1], 'EX', MEMO_TTL_S)
return {'201', ARGV[1]}
