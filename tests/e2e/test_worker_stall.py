#!/usr/bin/env python3
"""A stall of a worker's own loop is never blamed on the gateway: Redis is
stopped (SIGSTOP) for 4 s while the worker runs a request, so the worker's
loop waits on Redis (VTN_REDIS_TIMEOUT 10 s) with the gateway's heartbeats
piling up unread. After SIGCONT the worker does not declare the gateway
silent (no gateway_silent line, no reconnect counted), counts and logs the
stall, and VENs are served afterwards."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import (Checks, Stack, Validator, check, eq, install_signal_handlers, metric_sum,  # noqa: E402
                     oadr, parse_args, wait_for)
from vtntest.poller import RawConn  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

POLL = oadr.SERVICE_PATH + "OadrPoll"
STALL_S = 4.0  # longer than the 3 s liveness window


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.worker_stall")
    with checks.processes():
        with Stack(cfg, name="e2e-worker-stall") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            st.start_redis()
            redis = [p for p in st.procs if p.name == "redis"][0]
            gw = st.start_gateway(wait=False, env={"VTN_REQUEST_TIMEOUT": "20s"})
            wk = st.start_worker([gw], env={"VTN_REDIS_TIMEOUT": "10s"})
            st.wait_live_workers(gw, 1)
            port = gw.ports["oadr"]
            stopped = []

            def wm(name, **labels):
                return metric_sum(st.metrics(wk), name, **labels)

            def worker_waits_on_redis():
                eq(wm("vtn_worker_gateway_reconnects_total"), 0, "reconnects before the stall")
                os.kill(redis.pid, signal.SIGSTOP)
                stopped.append(1)
                body = oadr.poll("ven-stall").encode()
                c = RawConn("127.0.0.1", port)
                c.send(("POST %s HTTP/1.1\r\nHost: vtn\r\nContent-Type: application/xml\r\n"
                        "Content-Length: %d\r\n\r\n" % (POLL, len(body))).encode() + body)
                time.sleep(STALL_S)
                os.kill(redis.pid, signal.SIGCONT)
                stopped.clear()
                # answered by the worker, or 503 by a gateway that found the
                # worker silent: the worker's loop did stall; either way it ends
                check(c.response(timeout=15.0) is not None, "no answer to the request")
                c.close()

            def gateway_not_blamed():
                silent = [ln for ln in wk.log_text().splitlines() if " event=gateway_silent " in ln]
                check(not silent, "the gateway declared silent: %r" % silent)
                eq(wm("vtn_worker_gateway_reconnects_total"), 0, "reconnects after a silent gateway")
                check(wm("vtn_worker_loop_stalls_total") >= 1, "stall not counted")
                wait_for("a loop_stall log line", lambda: [
                    ln for ln in wk.log_text().splitlines() if " event=loop_stall " in ln])

            def vens_served():
                wait_for("the worker live", lambda: metric_sum(
                    st.metrics(gw), "vtn_gateway_live_workers") == 1)
                ven = Ven("127.0.0.1", port, v, name="ven-after")
                ven.query()
                ven.register()
                for _ in range(4):
                    ven.poll()

            try:
                checks.run("the worker waits 4 s on a stopped Redis", worker_waits_on_redis)
                checks.run("the gateway is not declared silent", gateway_not_blamed)
                checks.run("VENs are served after the stall", vens_served)
            finally:
                if stopped and redis.alive():
                    os.kill(redis.pid, signal.SIGCONT)  # so it can be stopped by SIGTERM
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
