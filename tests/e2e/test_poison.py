#!/usr/bin/env python3
"""One request never stalls more than one worker (the attack probe's finding
1, the gateway's half): a worker stopped with SIGSTOP while it holds a
request stays connected but goes silent; the gateway answers that request
503 after the liveness window instead of retrying it on the other worker,
counts and logs it as a suspected poison request, and a legitimate VEN keeps
polling through the other worker without one failure."""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import (Checks, Stack, Validator, check, eq, install_signal_handlers, metric_sum,  # noqa: E402
                     oadr, parse_args, wait_for)
from vtntest.poller import PollingVen, held_request, raw_poll  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

POLL = oadr.SERVICE_PATH + "OadrPoll"
WAIT_S = 15.0  # the gateway declares a silent worker dead after 3 s


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.poison")
    with checks.processes():
        with Stack(cfg, name="e2e-poison") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            st.start_redis()
            gw = st.start_gateway(wait=False)
            # one credit: once it holds the poison request it gets no other
            stuck = st.start_worker([gw], env={"VTN_WORKER_CREDITS": "1"})
            st.start_worker([gw])
            st.wait_live_workers(gw, 2)
            port = gw.ports["oadr"]

            def m(name, **labels):
                return metric_sum(st.metrics(gw), name, **labels)

            legit = PollingVen(Ven("127.0.0.1", port, v, name="ven-legit"))
            legit.ven.query()
            legit.ven.register()
            poison = []

            def stopped_worker_holds_a_request():
                os.kill(stuck.pid, signal.SIGSTOP)
                req, size = raw_poll("ven-poison")
                c = held_request(port, req)
                check(c, "no request reached the stopped worker")
                poison.append((c, size))
                legit.start()

            def answered_503_not_retried():
                c, size = poison[0]
                r = c.response(timeout=WAIT_S)
                check(r is not None, "no answer to the request the stopped worker held")
                eq(r.status, 503, "status of the request held by a silent worker")
                eq(r.body, b"worker stalled while handling the request; not retried\n", "body")
                check(r.header("Retry-After"), "503 without Retry-After")
                c.close()
                eq(m("vtn_gateway_retries_total"), 0, "requests retried on the other worker")
                eq(m("vtn_gateway_poison_suspects_total"), 1, "poison suspects counted")
                eq(m("vtn_gateway_unavailable_total", reason="worker_stalled"), 1,
                   "503s for a stalled worker")
                line = wait_for("a poison_suspect log line", lambda: [
                    ln for ln in gw.log_text().splitlines() if " event=poison_suspect " in ln])[0]
                for want in (r"req=[0-9a-f]{16}", r"remote=127\.0\.0\.1:\d+",
                             r"path=%s" % re.escape(POLL), r"size=%d" % size):
                    check(re.search(want, line), "%r not in the log line %r" % (want, line))
                eq(m("vtn_gateway_live_workers"), 1, "live workers after the stall")
                time.sleep(1.0)  # the VEN keeps polling through the other worker meanwhile

            def worker_comes_back():
                os.kill(stuck.pid, signal.SIGCONT)
                # told DISCONNECT on its next heartbeat, it starts a new session
                wait_for("the stopped worker live again",
                         lambda: m("vtn_gateway_live_workers") == 2)
                eq(m("vtn_gateway_retries_total"), 0, "requests retried after it came back")

            def legit_ven_never_failed():
                legit.stop_and_check(min_polls=20)

            try:
                checks.run("a stopped worker holds a request", stopped_worker_holds_a_request)
                checks.run("that request gets 503, not a retry on the other worker",
                           answered_503_not_retried)
                checks.run("the worker comes back after SIGCONT", worker_comes_back)
                checks.run("the legitimate VEN polled without a failure", legit_ven_never_failed)
            finally:
                if stuck.alive():
                    os.kill(stuck.pid, signal.SIGCONT)  # so it can be stopped by SIGTERM
                legit.stop()
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
