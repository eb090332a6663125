-- The management API's report requests (docs/reports.md). KEYS: ven:{v},
-- venrr:{v}, venq:{v}. ARGV[1] the operation:
--   ask     ARGV[2] reportRequestID, ARGV[3] its record (JSON), ARGV[4] the
--           oadrCreateReport queue entry, '' for a request at a future
--           time (its record has sendAt; the scheduler queues it, repdue).
--           Records the request and queues the entry. A reportRequestID
--           already recorded (a retry of the same API request: the ID
--           derives from the request id) changes nothing and answers 'ok'
--           again.
--   cancel  ARGV[2] reportRequestID, ARGV[3] the oadrCancelReport's
--           requestID, ARGV[4] now (ms). A request in requested, created or
--           active becomes cancelling (cancelRequestID, cancelAskedAt) and
--           'K|<requestID>|<reportRequestID>' is queued; any other state is
--           answered as it is and nothing changes (a second DELETE). A
--           request at a future time not queued yet is 'cancelled' at once,
--           nothing is queued: the VEN never heard of it.
-- Returns 'ok', 'cancelling', 'cancelled' (not sent yet), the state of a request left as it was,
-- '404v' (no VEN), '404' (no such request), '409m' (the VEN has
-- REPORT_REQUESTS_MAX requests), '409q' (its queue is full).
if redis.call('EXISTS', KEYS[1]) == 0 then return '404v' end
if ARGV[1] == 'ask' then
  if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'ok' end
  if redis.call('HLEN', KEYS[2]) >= REPORT_REQUESTS_MAX then return '409m' end
  if ARGV[4] ~= '' and redis.call('LLEN', KEYS[3]) >= QUEUE_MAX then return '409q' end
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  if ARGV[4] ~= '' then
    redis.call('RPUSH', KEYS[3], ARGV[4])
    push_mark(KEYS[1])
  end
  return 'ok'
end
local j = redis.call('HGET', KEYS[2], ARGV[2])
if not j then return '404' end
local ok, r = pcall(cjson.decode, j)
if not ok or type(r) ~= 'table' then return '404' end
if r.state ~= 'requested' and r.state ~= 'created' and r.state ~= 'active' and
    r.state ~= 'overdue' then
  return tostring(r.state)
end
if r.state == 'requested' and type(r.sendAt) == 'number' and not r.queuedAt then
  r.state = 'cancelled'
  r.cancelledAt = tonumber(ARGV[4])
  redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(r))
  return 'cancelled'
end
if redis.call('LLEN', KEYS[3]) >= QUEUE_MAX then return '409q' end
r.state = 'cancelling'
r.cancelRequestID = ARGV[3]
r.cancelAskedAt = tonumber(ARGV[4])
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(r))
redis.call('RPUSH', KEYS[3], KIND_CANCELREPORT .. SEP .. ARGV[3] .. SEP .. ARGV[2])
push_mark(KEYS[1])
return 'cancelling'
