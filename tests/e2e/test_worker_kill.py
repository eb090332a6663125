#!/usr/bin/env python3
"""SIGKILL one of two workers while requests flow: no request is lost or
hangs, the remaining worker keeps serving, and a new worker serves too.

Several client threads poll over keep-alive connections (paced, bounded in
count and time). Every request must complete within its timeout with either 200
and a valid OpenADR body, or 503 with Retry-After; nothing else."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import (Checks, Http, Reply, Stack, Validator, check, eq, install_signal_handlers,  # noqa: E402
                     metric_sum, parse_args)
from vtntest import oadr  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

THREADS = 6
PACE = 0.005  # seconds between a thread's request starts (at most 200/s per thread)
VENS_PER_THREAD = 3
MAX_REQUESTS = 20000  # in total, across threads (a bound; the run is timed)
VALIDATE_EVERY = 25  # every reply is checked; every 25th also against the official XSD
RUN_SECONDS = 12.0  # the whole load phase
KILL_AFTER = 3.0  # seconds into the load phase
SETTLED_AFTER_KILL = 5.0  # the gateway has declared the dead worker dead by then (3 x 1 s heartbeats)
REQUEST_TIMEOUT = 15.0  # client-side bound for one request: longer than any VTN deadline


class Outcome:
    __slots__ = ("t0", "t1", "status", "retry_after", "error", "body", "ven")

    def __init__(self, t0, ven):
        self.t0, self.t1, self.ven = t0, None, ven
        self.status, self.retry_after, self.error, self.body = None, None, None, None


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.worker_kill")
    with checks.processes():
        with Stack(cfg, name="e2e-worker-kill") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            gw = st.start_basic(workers=2)
            st.wait_live_workers(gw, 2)
            port = gw.ports["oadr"]
            w1, w2 = st.workers

            # Register the VENs first (not under test here).
            vens = []
            for i in range(THREADS * VENS_PER_THREAD):
                ven = Ven("127.0.0.1", port, v, name="wk-ven-%02d" % i)
                ven.register()
                ven.close()
                vens.append(ven)

            outcomes = []
            lock = threading.Lock()
            stop = threading.Event()
            started = [0]
            t_start = time.monotonic()

            def client(k):
                mine = vens[k * VENS_PER_THREAD:(k + 1) * VENS_PER_THREAD]
                h = Http("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
                i = 0
                t_thread = time.monotonic()
                try:
                    while not stop.is_set() and time.monotonic() - t_start < RUN_SECONDS:
                        ahead = t_thread + i * PACE - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
                        with lock:
                            if started[0] >= MAX_REQUESTS:
                                break
                            started[0] += 1
                        ven = mine[i % len(mine)]
                        i += 1
                        o = Outcome(time.monotonic(), ven.ven_id)
                        try:
                            r = h.post_xml(oadr.SERVICE_PATH + "OadrPoll", oadr.poll(ven.ven_id))
                            o.status, o.retry_after, o.body = r.status, r.header("Retry-After"), r.body
                        except Exception as e:  # a lost or hung request: recorded, checked below
                            o.error = "%s: %s" % (type(e).__name__, e)
                            h.close()
                        o.t1 = time.monotonic()
                        with lock:
                            outcomes.append(o)
                finally:
                    h.close()

            threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(THREADS)]
            for t in threads:
                t.start()

            # Kill worker 1 mid-way, once it has served requests.
            time.sleep(KILL_AFTER)
            served_before = len(outcomes)
            w1_served = worker_requests(st, w1)
            w1.kill()
            t_kill = time.monotonic()
            for t in threads:
                t.join(RUN_SECONDS + REQUEST_TIMEOUT + 5)
            stop.set()
            hung = [t for t in threads if t.is_alive()]

            def nothing_lost():
                check(not hung, "%d client threads still blocked after the run" % len(hung))
                check(served_before > 0, "no request completed before the kill")
                if w1_served is not None:
                    check(w1_served > 0, "worker1 had served no request before it was killed "
                                         "(the kill tested nothing)")
                errors = [o for o in outcomes if o.error]
                check(not errors, "%d of %d requests got no complete HTTP response, first: %s"
                      % (len(errors), len(outcomes), errors[0].error if errors else ""))
                ok = [o for o in outcomes if o.status == 200]
                refused = [o for o in outcomes if o.status == 503]
                other = [o for o in outcomes if o.status not in (200, 503)]
                check(not other, "unexpected statuses: %s" % sorted({o.status for o in other}))
                for o in refused:
                    check(o.retry_after and o.retry_after.strip().isdigit(),
                          "503 without a numeric Retry-After (%r)" % o.retry_after)
                eq(len(ok), len(outcomes) - len(refused), "successes = requests - 503s")
                print("   %d requests, %d ok, %d 503, worker1 served %s before the kill; kill at %.1f s"
                      % (len(outcomes), len(ok), len(refused), w1_served, t_kill - t_start))
                gm = st.metrics(gw)
                print("   gateway: worker deaths %d, retries %d, worker timeouts %d, 503s %d"
                      % (metric_sum(gm, "vtn_gateway_worker_deaths_total"),
                         metric_sum(gm, "vtn_gateway_retries_total"),
                         metric_sum(gm, "vtn_gateway_worker_timeouts_total"),
                         metric_sum(gm, "vtn_gateway_unavailable_total")))
                check(metric_sum(gm, "vtn_gateway_worker_deaths_total") >= 1,
                      "the gateway never noticed that worker1 died")
                for i, o in enumerate(ok):
                    rep = Reply(o.body)
                    eq(rep.name, "oadrResponse", "poll payload")
                    eq(rep.code(), "200", "poll responseCode")
                    eq(rep.get("venID"), o.ven, "venID in the poll reply")
                    if i % VALIDATE_EVERY == 0:
                        v.add(o.body, "poll reply for %s" % o.ven)
                print("   %d replies validated against the official schema" % v.check_pending())

            def pool_still_serves():
                late = [o for o in outcomes if o.t0 >= t_kill + SETTLED_AFTER_KILL]
                check(late, "no request was started %.0f s after the kill: the load phase is too short "
                            "or the pool stopped serving" % SETTLED_AFTER_KILL)
                bad = [o for o in late if o.status != 200]
                check(not bad, "%d of %d requests after the kill settled did not get 200: %s"
                      % (len(bad), len(late), sorted({o.status for o in bad})))
                with Http("127.0.0.1", port) as h:
                    r = h.post_xml(oadr.SERVICE_PATH + "OadrPoll", oadr.poll(vens[0].ven_id))
                    eq(r.status, 200, "a poll after the load")

            def new_worker_serves():
                w3 = st.start_worker([gw])
                st.wait_live_workers(gw, 2)
                # Stop the old survivor cleanly: from now on only worker3 can answer.
                problem = w2.stop()
                check(problem is None, problem or "")
                before = worker_requests(st, w3)
                ven = Ven("127.0.0.1", port, v, name="wk-late")
                ven.register()
                for _ in range(20):
                    ven.poll("oadrResponse", "200")
                ven.close()
                after = worker_requests(st, w3)
                if before is not None and after is not None:
                    check(after >= before + 21, "worker3 counted %s -> %s requests for 21 sent" % (before, after))

            checks.run("no request lost or hung", nothing_lost)
            checks.run("pool still serves after the kill", pool_still_serves)
            checks.run("a new worker serves", new_worker_serves)
            checks.keep_logs_on_failure(st)
    return checks.summary()


def worker_requests(st, w):
    """Requests a worker has handled (vtn_worker_requests_total summed over
    its labels), or None when its /metrics does not answer."""
    try:
        m = st.metrics(w)
    except Exception:
        return None
    return metric_sum(m, "vtn_worker_requests_total")


if __name__ == "__main__":
    sys.exit(main())
