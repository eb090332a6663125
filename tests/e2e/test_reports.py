#!/usr/bin/env python3
"""Reports end to end: telemetry is stored once, never lost, and leaves the
VTN through a consumer group.

A VEN registers, registers a TELEMETRY_USAGE report, takes the
oadrCreateReport on a poll and answers oadrCreatedReport, then sends
several oadrUpdateReport: one of them twice, one while the worker holding
it is SIGKILLed (the gateway retries it on the other worker). The
management API and the example consumer (tests/e2e/telemetry_consumer.py,
SIGKILLed once between its sink write and its XACK, then restarted) each
return exactly the intervals sent, once each."""

import calendar
import json
import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from vtntest import Api, Checks, Http, Reply, Stack, Validator, check, eq, install_signal_handlers  # noqa: E402
from vtntest import metric_sum, parse_args, wait_for  # noqa: E402
from vtntest import oadr  # noqa: E402
from vtntest.stack import Proc  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

API = "/api/v1"
CONSUMER = os.path.join(HERE, "telemetry_consumer.py")
STREAM = "vtn:{telemetry}"
SPEC = "spec-usage"
RIDS = ["meter-power", "meter-energy"]
UPDATES = 8  # distinct oadrUpdateReport messages
KILL_TRIES = 4  # updates tried until one lands on the stopped worker (the LRU alternates)
HELD = 1.0  # seconds a request is given to show it is held by the stopped worker


def update(ven_id, rr, n):
    """The n-th update: one oadrReport, 2 intervals x 2 rIDs, distinct
    times and values; returns (body, the intervals as the stream keeps them)."""
    base = 1714564800 + n * 120  # 2024-05-01T12:00:00Z + 2 min per update
    ivs, want = [], []
    for k in range(2):
        t = base + k * 60
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        for rid in RIDS:
            v = "%d.%d" % (n * 10 + k, len(rid))
            ivs.append((iso, "PT1M", rid, v))
            want.append((rr, rid, t * 1000, 60000, v))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + 120))
    return oadr.update_report(ven_id, rr, SPEC, "rep-%d" % n, created, ivs), want


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.reports")
    with checks.processes():
        with Stack(cfg, name="e2e-reports") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            gw = st.start_basic(workers=2)
            st.wait_live_workers(gw, 2)
            port = gw.ports["oadr"]
            ven = Ven("127.0.0.1", port, v, name="rep-ven")
            r = st.redis()
            s = {"sent": [], "rr": None, "consumers": 0}
            sink = os.path.join(st.tmpdir, "sink.jsonl")

            def start_consumer(extra=()):
                s["consumers"] += 1
                name = "consumer%d" % s["consumers"]
                p = Proc(name, [sys.executable, CONSUMER, "--port", str(st.redis_port), "--group", "platform",
                                "--name", "consumer-1", "--sink", sink, "--count", "1",
                                "--block-ms", "200"] + list(extra),
                         dict(os.environ), os.path.join(st.tmpdir, name + ".log"))
                st.procs.append(p)
                return p

            def sink_ids():
                if not os.path.exists(sink):
                    return []
                with open(sink, "rb") as f:
                    return [json.loads(line)["id"] for line in f.read().split(b"\n")[:-1]]

            def pending():
                return r.cmd("XPENDING", STREAM, "platform")[0]

            def send_update(n, times=1):
                body, want = update(ven.ven_id, s["rr"], n)
                for _ in range(times):
                    ven.send("EiReport", body, "oadrUpdatedReport", "200")
                s["sent"] += want

            def register_and_request():
                ven.register()
                ven.send("EiReport", oadr.register_report(ven.ven_id, SPEC, RIDS, min_period="PT1M"),
                         "oadrRegisteredReport", "200")
                cr = ven.poll("oadrCreateReport")
                rrs = [e.text for e in oadr.find_all(cr.payload, "oadrCreateReport/oadrReportRequest/reportRequestID")]
                eq(len(rrs), 1, "report requests in the oadrCreateReport (one TELEMETRY_USAGE offered)")
                eq(cr.get("oadrReportRequest/reportSpecifier/reportSpecifierID"), SPEC, "requested specifier")
                s["rr"] = rrs[0]
                ven.send("EiReport", oadr.created_report(200, cr.get("requestID"), rrs, ven.ven_id),
                         "oadrResponse", "200")
                ven.poll("oadrResponse", "200")  # nothing else queued

            def consumer_killed_between_write_and_ack():
                send_update(0)
                send_update(1)
                # 2 entries (one per oadrReport), 1 a read: the consumer writes 1, then
                # waits before its XACK
                c1 = start_consumer(["--pause-before-ack", "60"])
                wait_for("the consumer's first write", lambda: len(sink_ids()) >= 1, timeout=20)
                check(pending() >= 1, "entries written to the sink are not pending (acked before the kill?)")
                c1.kill()
                eq(pending() >= 1, True, "written entries still pending after the SIGKILL")

            def update_twice():
                send_update(2, times=2)
                send_update(3)

            def update_through_killed_worker():
                w1 = st.workers[0]
                retries0 = metric_sum(st.metrics(gw), "vtn_gateway_retries_total")
                n = 4
                held = False
                for n in range(4, 4 + KILL_TRIES):
                    body, want = update(ven.ven_id, s["rr"], n)
                    out = {}

                    def post():
                        try:
                            with Http("127.0.0.1", port, timeout=20) as h:
                                out["r"] = h.post_xml(oadr.SERVICE_PATH + "EiReport", body)
                        except Exception as e:  # checked below
                            out["e"] = e

                    os.kill(w1.pid, signal.SIGSTOP)
                    t = threading.Thread(target=post, daemon=True)
                    t.start()
                    t.join(HELD)
                    held = t.is_alive()
                    if held:
                        w1.kill()  # holding the request, before it could read it
                    else:
                        os.kill(w1.pid, signal.SIGCONT)  # the other worker answered it
                    t.join(25)
                    check(not t.is_alive(), "update %d got no answer" % n)
                    check("e" not in out, "update %d: %s" % (n, out.get("e")))
                    eq(out["r"].status, 200, "HTTP status of update %d" % n)
                    v.validate(out["r"].body, "oadrUpdatedReport to update %d" % n)
                    rep = Reply(out["r"].body)
                    eq((rep.name, rep.code()), ("oadrUpdatedReport", "200"), "reply to update %d" % n)
                    s["sent"] += want
                    if held:
                        break
                check(held, "no update of %d landed on the stopped worker" % KILL_TRIES)
                check(metric_sum(st.metrics(gw), "vtn_gateway_retries_total") > retries0,
                      "the gateway did not retry the update the killed worker held")
                for k in range(n + 1, UPDATES):
                    send_update(k)

            def api_returns_each_once():
                api = Api("127.0.0.1", gw.ports["api"], st.api_token)
                try:
                    res = api.call("GET", "%s/reports?venID=%s&limit=5000" % (API, ven.ven_id))
                finally:
                    api.close()
                eq(res.status, 200, "GET /reports status (%s)" % res.body[:200])
                body = res.json()
                eq(body.get("next_cursor"), None, "next_cursor (everything fits one page)")
                got = []
                for d in body["data"]:
                    eq(d["venID"], ven.ven_id, "venID of a value")
                    t = time.strptime(d["dtstart"], "%Y-%m-%dT%H:%M:%SZ")
                    got.append((d["reportRequestID"], d["rID"], calendar.timegm(t) * 1000, d["durationMs"], d["value"]))
                eq(sorted(got), sorted(s["sent"]), "the API's values vs the intervals sent")
                eq(len(set(got)), len(got), "values the API returns twice")

            def consumer_resumes_and_takes_each_once():
                c2 = start_consumer()
                want = r.cmd("XLEN", STREAM)
                wait_for("the consumer to store %d entries and ack them all" % want,
                         lambda: len(sink_ids()) >= want and pending() == 0, timeout=30)
                eq(c2.stop(), None, "the consumer's exit on SIGTERM")
                ids = sink_ids()
                eq(len(ids), len(set(ids)), "entries the sink holds twice")
                eq(sorted(ids), sorted(e[0] for e in r.cmd("XRANGE", STREAM, "-", "+")), "sink ids vs stream ids")
                got = []
                with open(sink) as f:
                    for line in f:
                        e = json.loads(line)["f"]
                        eq(e["ven"], ven.ven_id, "ven of a sink entry")
                        # one entry per oadrReport, its values packed (docs/reports.md)
                        for rid, t, d, val in json.loads(e["i"]):
                            got.append((e["rr"], rid, t, d, val))
                eq(sorted(got), sorted(s["sent"]), "the consumer's sink vs the intervals sent")
                info = r.cmd("XINFO", "GROUPS", STREAM)
                eq(len(info), 1, "consumer groups on the stream")
                g = dict(zip(info[0][0::2], info[0][1::2]))
                eq(g["pending"], 0, "entries pending in the group")

            steps = [("register, register reports, created report", register_and_request),
                     ("consumer SIGKILLed between write and ack", consumer_killed_between_write_and_ack),
                     ("an update sent twice", update_twice),
                     ("an update through a worker SIGKILLed holding it", update_through_killed_worker),
                     ("the API returns each interval once", api_returns_each_once),
                     ("the restarted consumer takes each interval once", consumer_resumes_and_takes_each_once)]
            for label, fn in steps:
                if not checks.run(label, fn):
                    break  # the later steps build on this one
            ven.close()
            r.close()
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
