-- Stores the interval data of one oadrUpdateReport (docs/reports.md).
-- KEYS[1] vtn:{telemetry}, KEYS[2..] one "seen" key per oadrReport of the
-- message. ARGV[1] MAXLEN (approximate trim), ARGV[2] MINID ('' none),
-- ARGV[3] venID, then per report, in KEYS order: reportRequestID, n (its
-- values) and its intervals packed as one JSON array of
-- [rID, dtstart ms, duration ms, value or status, quality?].
-- A report is one stream entry: one XADD per report, not one per value,
-- which is what keeps an interval at a few tens of bytes of Redis memory.
-- A report whose seen key exists was stored before (a resend, or a retry
-- through another worker): nothing is added for it. The seen key and the
-- entry are written together, so a report is stored exactly once.
-- Returns the values added per report.
local out = {}
local a = 4
for k = 2, #KEYS do
  local n = tonumber(ARGV[a + 1])
  if redis.call('SET', KEYS[k], '1', 'NX', 'EX', TTL_TELEMETRY_SEEN_S) then
    if n > 0 then
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'ven', ARGV[3], 'rr', ARGV[a],
                 'i', ARGV[a + 2])
    end
    out[#out + 1] = n
  else
    out[#out + 1] = 0
  end
  a = a + 3
end
if ARGV[2] ~= '' then redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2]) end
return out
