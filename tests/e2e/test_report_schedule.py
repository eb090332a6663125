#!/usr/bin/env python3
"""Report requests over time, end to end (gateway, worker, scheduler).

A report request the API makes for a future time (sendAt a few seconds
ahead) is not on the VEN's polls before its time and reaches it on a poll
after it; one cancelled before its time never reaches the VEN. A request
with a short back-interval becomes overdue once the VEN stops updating: the
API shows it (state, counts, the overdue list) and the scheduler's /metrics
counts it; the VEN's next update makes it active again and the gauge goes
back to 0. No timed assertion: each wait is a poll with a bounded deadline,
and "not before" is checked against the times the VTN recorded."""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from vtntest import Api, Checks, Stack, Validator, check, eq, install_signal_handlers  # noqa: E402
from vtntest import metric_sum, parse_args, wait_for  # noqa: E402
from vtntest import oadr  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

API = "/api/v1"
SPEC = "spec-usage"
RIDS = ["meter-power"]
AHEAD_S = 3  # how far ahead the scheduled request is sent
FACTOR = 2  # VTN_REPORT_OVERDUE_FACTOR for this run


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "scheduler", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.report_schedule")
    with checks.processes():
        with Stack(cfg, name="e2e-report-schedule") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            gw = st.start_basic(workers=1)
            sc = st.start_scheduler(env={"VTN_SCHEDULER_TICK": "100ms",
                                         "VTN_REPORT_OVERDUE_FACTOR": str(FACTOR)})
            ven = Ven("127.0.0.1", gw.ports["oadr"], v, name="sched-ven")
            api = Api("127.0.0.1", gw.ports["api"], st.api_token)
            r = st.redis()
            s = {"n": 0}

            def requests():
                res = api.call("GET", "%s/vens/%s/reports" % (API, ven.ven_id))
                eq(res.status, 200, "GET the VEN's reports (%s)" % res.body[:200])
                return res.json()

            def request_of(rr):
                return next(q for q in requests()["requests"] if q["reportRequestID"] == rr)

            def send_update(rr):
                s["n"] += 1
                t = int(time.time()) - 60
                body = oadr.update_report(ven.ven_id, rr, SPEC, "rep-%d" % s["n"], iso(t + 60),
                                          [(iso(t), "PT1S", RIDS[0], "%d.5" % s["n"])])
                ven.send("EiReport", body, "oadrUpdatedReport", "200")

            def setup():
                ven.register()
                # A report the default policy does not request: only this test's requests exist.
                ven.send("EiReport", oadr.register_report(ven.ven_id, SPEC, RIDS, min_period="PT1M",
                                                          report_name="METADATA_HISTORY_USAGE"),
                         "oadrRegisteredReport", "200")
                ven.poll("oadrResponse", "200")

            def scheduled_request_reaches_the_ven_after_its_time():
                send_at = int(time.time()) + AHEAD_S
                res = api.call("POST", "%s/vens/%s/reports" % (API, ven.ven_id),
                               {"reportSpecifierID": SPEC, "sendAt": iso(send_at)})
                eq(res.status, 201, "POST with sendAt (%s)" % res.body[:300])
                rr = res.json()["reportRequestID"]
                eq(res.json()["sendAt"], send_at * 1000, "sendAt recorded")
                eq(res.json()["state"], "requested", "state of a request not sent yet")
                # A second one for the same time, cancelled now: the VEN never hears of it.
                res2 = api.call("POST", "%s/vens/%s/reports" % (API, ven.ven_id),
                                {"reportSpecifierID": SPEC, "sendAt": iso(send_at)})
                eq(res2.status, 201, "second POST with sendAt")
                rr2 = res2.json()["reportRequestID"]
                d = api.call("DELETE", "%s/vens/%s/reports/%s" % (API, ven.ven_id, rr2))
                eq((d.status, d.json()["state"]), (200, "cancelled"), "DELETE before sendAt")
                got = None
                deadline = time.monotonic() + AHEAD_S + 15
                while got is None:
                    rep = ven.poll()
                    polled_at = time.time()
                    if rep.name == "oadrCreateReport":
                        got = rep
                        break
                    eq(rep.name, "oadrResponse", "a poll before the request is due")
                    check(time.monotonic() < deadline, "the scheduled request never reached the VEN")
                    time.sleep(0.2)
                check(polled_at >= send_at, "oadrCreateReport on a poll at %.3f, before sendAt %d"
                      % (polled_at, send_at))
                rrs = [e.text for e in oadr.find_all(got.payload, "oadrCreateReport/oadrReportRequest/reportRequestID")]
                eq(rrs, [rr], "the oadrCreateReport carries the scheduled request only")
                rec = request_of(rr)
                check(rec["queuedAt"] >= send_at * 1000, "queued at %d, before sendAt" % rec["queuedAt"])
                eq(request_of(rr2)["state"], "cancelled", "the cancelled one")
                ven.send("EiReport", oadr.created_report(200, got.get("requestID"), [rr], ven.ven_id),
                         "oadrResponse", "200")
                ven.poll("oadrResponse", "200")  # nothing more: the cancelled one was never queued
                eq(r.cmd("ZCARD", "vtn:reports:send"), 0, "send index empty")
                eq(api.call("DELETE", "%s/vens/%s/reports/%s" % (API, ven.ven_id, rr)).status, 202,
                   "cancel the scheduled request once delivered")
                ven.poll("oadrCancelReport")

            def overdue_then_active_again():
                res = api.call("POST", "%s/vens/%s/reports" % (API, ven.ven_id),
                               {"reportSpecifierID": SPEC, "granularity": "PT1S", "reportBackDuration": "PT1S"})
                eq(res.status, 201, "POST a request with a 1 s back-interval (%s)" % res.body[:300])
                rr = res.json()["reportRequestID"]
                cr = ven.poll("oadrCreateReport")
                ven.send("EiReport", oadr.created_report(200, cr.get("requestID"), [rr], ven.ven_id),
                         "oadrResponse", "200")
                send_update(rr)
                eq(request_of(rr)["state"], "active", "state after an update")
                # The VEN stops updating.
                wait_for("the request to read overdue", lambda: request_of(rr)["state"] == "overdue", timeout=20)
                rec = request_of(rr)
                check(rec["overdueAt"] >= rec["lastUpdate"] + FACTOR * 1000,
                      "marked overdue at %d, less than %d back-intervals after the update at %d"
                      % (rec["overdueAt"], FACTOR, rec["lastUpdate"]))
                eq(requests()["counts"]["overdue"], 1, "counts.overdue")
                lst = api.call("GET", "%s/reports?state=overdue" % API).json()
                eq([(q["venID"], q["reportRequestID"]) for q in lst["requests"]], [(ven.ven_id, rr)],
                   "GET /reports?state=overdue")
                m = wait_for("the overdue gauge", lambda: (lambda m: m if m.get("vtn_report_requests_overdue") == 1
                                                           else None)(st.metrics(sc)))
                check(m.get("vtn_report_requests_overdue_total", 0) >= 1, "overdue transitions counted")
                check(metric_sum(m, "vtn_scheduler_task_items_total", task="report_overdue") >= 1,
                      "report_overdue items")
                check(metric_sum(m, "vtn_scheduler_task_items_total", task="report_requests") >= 1,
                      "report_requests items")
                # An update: active again at once, the gauge follows.
                send_update(rr)
                eq(request_of(rr)["state"], "active", "state after an update of an overdue request")
                eq(api.call("GET", "%s/reports?state=overdue" % API).json()["requests"], [],
                   "overdue list after the update")
                wait_for("the overdue gauge back to 0",
                         lambda: st.metrics(sc).get("vtn_report_requests_overdue") == 0)

            for label, fn in (("setup", setup),
                              ("a request at a future time reaches the VEN after it", scheduled_request_reaches_the_ven_after_its_time),
                              ("overdue, then active again after an update", overdue_then_active_again)):
                if not checks.run(label, fn):
                    break
            api.close()
            r.close()
            ven.close()
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
