-- KEYS[1] vtn:event:<id>, KEYS[2] vtn:event:<id>:vens:<shard> (the VEN's
-- shard of its participation, vtn_key_eventvens). ARGV: venID,
-- modificationNumber, optIn|optOut, responseCode, now. Records the VEN's
-- answer in its field ("<received mn> <answered mn> <i|o> <code> <ms>", one
-- letter for the opt: the field is stored once per VEN per event) and keeps
-- the event's counts: optIn/optOut (a VEN that changes its mind moves from
-- one to the other) and received (a VEN that answers a modificationNumber
-- has received it, also when no distribute recorded it: a replyLimit cut).
-- Rule 206: when the field has a sixth part (the VEN's oadrCreateOpt for the
-- event, optcreate.lua), the answer is recorded but the opt stays the
-- opt's: the part is kept and the counts do not move.
-- 0 when the event is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local counts = {i = F_EVENT_OPT_IN, o = F_EVENT_OPT_OUT}
local letter = {optIn = 'i', optOut = 'o'}
local opt = letter[ARGV[3]]
local old = redis.call('HGET', KEYS[2], ARGV[1])
local recv = ARGV[2]
local eo = ''
if old then
  local r, was, rest = string.match(old, '^(%S+) %S+ (%S+) %S+ %S+ ?(%S*)')
  eo = rest or ''
  if eo == '' and counts[was] then redis.call('HINCRBY', KEYS[1], counts[was], -1) end
  if tonumber(r) and tonumber(r) > tonumber(recv) then recv = r end
else
  redis.call('HINCRBY', KEYS[1], F_EVENT_RECEIVED, 1)
end
if eo == '' then redis.call('HINCRBY', KEYS[1], counts[opt], 1) else eo = ' ' .. eo end
redis.call('HSET', KEYS[2], ARGV[1],
  recv .. ' ' .. ARGV[2] .. ' ' .. opt .. ' ' .. ARGV[4] .. ' ' .. ARGV[5] .. eo)
return 1
