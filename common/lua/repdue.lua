-- The scheduler's report request tasks (docs/reports.md). ARGV[1] the
-- operation, ARGV[2] the reportRequestID, ARGV[3] now (ms):
--   send   KEYS ven:{v}, venrr:{v}, venq:{v}. A request the API made for a
--          future time (sendAt), still requested and not queued, gets
--          queuedAt and its oadrCreateReport queued ('Q|crapi-<rrID>|[record]',
--          kept by a new oadrRegisterReport like the API's): {'sent'}. Not
--          due yet: {'later', sendAt}. Queued before, cancelled, not a
--          scheduled request: {'done'}. No VEN or no such request:
--          {'gone'}. A full queue: {'409q'} (nothing changes).
--   check  KEYS venrr:{v}; ARGV[4] VTN_REPORT_OVERDUE_FACTOR. Whether the
--          request is overdue: no update within factor x reportBackDuration
--          (else granularity) of the later of its start (queuedAt, else
--          requestedAt) and its last update. {'ok', deadline}: not yet;
--          {'late', deadline, back}: it is; {'drop'}: no longer watched
--          (gone, cancelling, cancelled, completed, not sent yet, no
--          back-interval). Writes nothing.
--   mark   as check, and a late request not marked yet becomes 'overdue'
--          (overdueAt): {'marked', deadline, back}, or {'late', ...} when it
--          was already. An update makes it active again (repstate).
-- Safe to repeat: each answer depends only on the record, which records
-- what was done.
local op, rr, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local venrr = op == 'send' and KEYS[2] or KEYS[1]
if op == 'send' and redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
local j = redis.call('HGET', venrr, rr)
local ok, r = pcall(cjson.decode, j or '')
if not j or not ok or type(r) ~= 'table' then return {op == 'send' and 'gone' or 'drop'} end
if op == 'send' then
  if r.state ~= 'requested' or type(r.sendAt) ~= 'number' or r.queuedAt then return {'done'} end
  if r.sendAt > now then return {'later', r.sendAt} end
  if redis.call('LLEN', KEYS[3]) >= QUEUE_MAX then return {'409q'} end
  r.queuedAt = now
  local rec = cjson.encode(r)
  redis.call('HSET', venrr, rr, rec)
  redis.call('RPUSH', KEYS[3], KIND_CREATEREPORT .. SEP .. 'crapi-' .. rr .. SEP .. '[' .. rec .. ']')
  push_mark(KEYS[1]) -- a push VEN gets it at once
  return {'sent'}
end
-- ISO 8601 durations as the VTN writes and accepts them (weeks, days,
-- hours, minutes, seconds; no years, months or fractions); nil otherwise.
local function duration_ms(s)
  if type(s) ~= 'string' then return nil end
  local date, time = string.match(s, '^P([%dWD]*)T?([%dHMS]*)$')
  if not date then return nil end
  local ms = 0
  for n, u in string.gmatch(date, '(%d+)([WD])') do
    ms = ms + tonumber(n) * (u == 'W' and 604800000 or 86400000)
  end
  for n, u in string.gmatch(time, '(%d+)([HMS])') do
    ms = ms + tonumber(n) * (u == 'H' and 3600000 or u == 'M' and 60000 or 1000)
  end
  return ms
end
local st = r.state
if st ~= 'requested' and st ~= 'created' and st ~= 'active' and st ~= 'overdue' then
  return {'drop'}
end
if type(r.sendAt) == 'number' and not r.queuedAt then return {'drop'} end
local back = duration_ms(r.reportBackDuration)
if not back or back <= 0 then back = duration_ms(r.granularity) end
if not back or back <= 0 then return {'drop'} end
-- A one-shot request completes one back-interval after its window: then
-- it is no longer watched, whatever came (docs/reports.md).
if type(r.endsAt) == 'number' and now >= r.endsAt + back then return {'drop'} end
local from = tonumber(r.queuedAt or r.requestedAt) or now
if type(r.lastUpdate) == 'number' and r.lastUpdate > from then from = r.lastUpdate end
local deadline = from + tonumber(ARGV[4]) * back
if now < deadline then return {'ok', deadline} end
if op == 'mark' and st ~= 'overdue' then
  r.state = 'overdue'
  r.overdueAt = now
  redis.call('HSET', venrr, rr, cjson.encode(r))
  return {'marked', deadline, back}
end
return {'late', deadline, back}
