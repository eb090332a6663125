#!/usr/bin/env python3
"""The scheduler's report tasks against a real Redis (the repdue script):
report_requests queues a request made for a future time once, at or after
its sendAt, drops what is cancelled, gone or malformed and retries a VEN
whose queue is full later; report_overdue marks a request overdue only
after VTN_REPORT_OVERDUE_FACTOR back-intervals without an update, drops
what is no longer watched (completed, cancelling, gone), heals an overdue
set entry whose request got an update, and exposes the count. A factor out
of range stops the scheduler at start with a message naming it."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Checks, Stack, check, eq, install_signal_handlers, parse_args, wait_for  # noqa: E402
from vtntest import keys  # noqa: E402

FACTOR = 2
SEND, CHECK, OVERDUE = (keys.const(k) for k in ("VTN_KEY_REPORTS_SEND", "VTN_KEY_REPORTS_CHECK",
                                               "VTN_KEY_REPORTS_OVERDUE"))


def now_ms():
    return int(time.time() * 1000)


def record(rr, state, **kw):
    rec = {"reportRequestID": rr, "reportSpecifierID": "spec-usage", "granularity": "PT1S",
           "reportBackDuration": "PT1S", "state": state, "requestedAt": now_ms(), "via": "api",
           "rIDs": [{"rID": "meter-power", "readingType": "Direct Read"}]}
    rec.update(kw)
    return rec


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("scheduler", "redis_server")
    install_signal_handlers()
    checks = Checks("e2e.report_tasks")
    with checks.processes():
        with Stack(cfg, name="e2e-report-tasks") as st:
            st.start_redis()
            r = st.redis()

            def ven(v):
                r.cmd("HSET", keys.build("VTN_KEY_VEN", v), keys.fields("VEN")["NAME"], v, "ct", "1")

            def put(v, rec):
                r.cmd("HSET", keys.build("VTN_KEY_VENRR", v), rec["reportRequestID"], json.dumps(rec))

            def get(v, rr):
                j = r.cmd("HGET", keys.build("VTN_KEY_VENRR", v), rr)
                return json.loads(j) if j else None

            def factor_out_of_range():
                p = subprocess.run([cfg.scheduler], env=dict(os.environ, VTN_REPORT_OVERDUE_FACTOR="0",
                                                             VTN_REDIS_URL=st.redis_url),
                                   capture_output=True, text=True, timeout=10)
                eq(p.returncode, 2, "exit status with VTN_REPORT_OVERDUE_FACTOR=0")
                check("VTN_REPORT_OVERDUE_FACTOR" in p.stderr, "the message names the variable: %r" % p.stderr)

            def start():
                st.start_scheduler(env={"VTN_SCHEDULER_TICK": "100ms",
                                        "VTN_REPORT_OVERDUE_FACTOR": str(FACTOR)})

            def sends_once_at_its_time():
                ven("ven-a")
                send_at = now_ms() + 1500
                put("ven-a", record("rr-s", "requested", sendAt=send_at, reportBackDuration="PT1H"))
                put("ven-a", record("rr-c", "cancelled", sendAt=now_ms() - 1000))
                r.cmd("ZADD", SEND, send_at, "ven-a|rr-s", 0, "ven-a|rr-c", 0, "ven-gone|rr-x", 0, "nobar")
                q = keys.build("VTN_KEY_VENQ", "ven-a")
                entries = wait_for("the oadrCreateReport queued", lambda: r.cmd("LRANGE", q, 0, -1))
                rec = get("ven-a", "rr-s")
                check(rec["queuedAt"] >= send_at, "queued at %d, before sendAt %d" % (rec["queuedAt"], send_at))
                eq(rec["state"], "requested", "state once queued (created when the VEN answers)")
                eq(len(entries), 1, "entries queued (the cancelled one is not): %r" % entries)
                kind, qid, body = entries[0].split("|", 2)
                eq((kind, qid), ("Q", "crapi-rr-s"), "the queue entry's kind and requestID")
                eq([x["reportRequestID"] for x in json.loads(body)], ["rr-s"], "the requests it carries")
                wait_for("the send index to empty", lambda: r.cmd("ZCARD", SEND) == 0)
                check(r.cmd("ZSCORE", CHECK, "ven-a|rr-s") is not None, "watched for overdue once sent")
                eq(get("ven-a", "rr-c")["state"], "cancelled", "the cancelled one stays cancelled")
                # A retry of the same entry (a run cut short before its ZREM) queues nothing more.
                r.cmd("ZADD", SEND, 0, "ven-a|rr-s")
                wait_for("the repeated entry to go", lambda: r.cmd("ZCARD", SEND) == 0)
                eq(r.cmd("LLEN", q), 1, "entries queued after the entry came again")

            def full_queue_is_retried_later():
                ven("ven-b")
                q = keys.build("VTN_KEY_VENQ", "ven-b")
                r.cmd("RPUSH", q, *["R|req-%d" % i for i in range(keys.const("VTN_QUEUE_MAX"))])
                put("ven-b", record("rr-f", "requested", sendAt=now_ms()))
                due = now_ms()
                r.cmd("ZADD", SEND, due, "ven-b|rr-f")
                score = wait_for("the entry to move on",
                                 lambda: (lambda s: float(s) if s and float(s) > due else None)(
                                     r.cmd("ZSCORE", SEND, "ven-b|rr-f")))
                check(score >= due + keys.const("VTN_REPORTS_RETRY_MS"), "retried at %d" % score)
                check("queuedAt" not in get("ven-b", "rr-f"), "queued into a full queue")
                eq(r.cmd("LLEN", q), keys.const("VTN_QUEUE_MAX"), "queue length")

            def overdue_after_factor_back_intervals():
                ven("ven-c")
                t = now_ms()
                put("ven-c", record("rr-o", "active", requestedAt=t))
                put("ven-c", record("rr-done", "requested", requestedAt=t - 20000, endsAt=t - 10000,
                                    duration="PT10S"))
                put("ven-c", record("rr-cx", "cancelling", requestedAt=t - 20000))
                put("ven-c", record("rr-h", "active", requestedAt=t - 20000, lastUpdate=t + 60000))
                r.cmd("ZADD", CHECK, t, "ven-c|rr-o", t, "ven-c|rr-done", t, "ven-c|rr-cx", t, "ven-c|rr-none",
                      t, "ven-c|rr-h")
                r.cmd("ZADD", OVERDUE, t - 1000, "ven-c|rr-h")  # an update's removal that was lost
                rec = wait_for("rr-o overdue", lambda: (lambda x: x if x["state"] == "overdue" else None)(
                    get("ven-c", "rr-o")), timeout=20)
                check(rec["overdueAt"] >= t + FACTOR * 1000,
                      "overdue at %d, before %d back-intervals from %d" % (rec["overdueAt"], FACTOR, t))
                eq(r.cmd("ZSCORE", OVERDUE, "ven-c|rr-o"), str(t + FACTOR * 1000), "overdue since its deadline")
                wait_for("the unwatched ones to leave the check index",
                         lambda: sorted(r.cmd("ZRANGE", CHECK, 0, -1)) ==
                         ["ven-a|rr-s", "ven-c|rr-h", "ven-c|rr-o"])
                eq(r.cmd("ZRANGE", OVERDUE, 0, -1), ["ven-c|rr-o"], "the overdue set, healed")
                eq(get("ven-c", "rr-done")["state"], "requested", "a completed one-shot is not marked")
                eq(r.cmd("ZSCORE", CHECK, "ven-c|rr-h"), str(t + 60000 + FACTOR * 1000),
                   "the next look at an updated request: its deadline")
                m = wait_for("the gauge", lambda: (lambda m: m if m.get("vtn_report_requests_overdue") == 1
                                                   else None)(st.metrics(st.scheduler)))
                eq(m.get("vtn_report_requests_overdue_total"), 1.0, "requests marked overdue")
                # Looked at again (one back-interval later), it stays overdue, marked once.
                s0 = float(r.cmd("ZSCORE", CHECK, "ven-c|rr-o"))
                wait_for("the second look", lambda: float(r.cmd("ZSCORE", CHECK, "ven-c|rr-o")) > s0)
                eq(get("ven-c", "rr-o")["overdueAt"], rec["overdueAt"], "overdueAt after a second look")
                eq(st.metrics(st.scheduler).get("vtn_report_requests_overdue_total"), 1.0,
                   "requests marked overdue after a second look")

            for label, fn in (("a factor out of range stops the scheduler", factor_out_of_range),
                              ("start", start),
                              ("report_requests sends once, at its time", sends_once_at_its_time),
                              ("report_requests retries a full queue later", full_queue_is_retried_later),
                              ("report_overdue", overdue_after_factor_back_intervals)):
                if not checks.run(label, fn):
                    break
            r.close()
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
