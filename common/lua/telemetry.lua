-- Stores the interval data of one oadrUpdateReport (docs/reports.md).
-- KEYS[1] vtn:{telemetry}, KEYS[2..] one "seen" key per oadrReport of the
-- message. ARGV[1] MAXLEN (approximate trim), ARGV[2] MINID ('' none),
-- ARGV[3] venID, then per report, in KEYS order: reportRequestID, n, and n
-- points of 6: rID, dtstart ms, duration ms, 'v' or 's' (float value or
-- resource status JSON), the value, oadrDataQuality ('' none).
-- A report whose seen key exists was stored before (a resend, or a retry
-- through another worker): nothing is added for it. The seen key and the
-- entries are written together, so a report is stored exactly once.
-- Returns the entries added per report.
local out = {}
local a = 4
for k = 2, #KEYS do
  local rr, n = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  if redis.call('SET', KEYS[k], '1', 'NX', 'EX', TTL_TELEMETRY_SEEN_S) then
    for _ = 1, n do
      if ARGV[a + 5] ~= '' then
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'ven', ARGV[3], 'rr', rr,
                   'rid', ARGV[a], 't', ARGV[a + 1], 'd', ARGV[a + 2], ARGV[a + 3], ARGV[a + 4],
                   'q', ARGV[a + 5])
      else
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'ven', ARGV[3], 'rr', rr,
                   'rid', ARGV[a], 't', ARGV[a + 1], 'd', ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
      end
      a = a + 6
    end
    out[#out + 1] = n
  else
    a = a + 6 * n
    out[#out + 1] = 0
  end
end
if ARGV[2] ~= '' then redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2]) end
return out
