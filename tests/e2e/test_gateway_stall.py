#!/usr/bin/env python3
"""A stall of the gateway's own loop is never blamed on its workers: the
gateway is stopped (SIGSTOP) for 4 s while a worker holds a request, then
continued. The worker's silence was the gateway's own, so no worker is
declared dead for silence, the request is answered 200 (not 503 as a
suspected poison request), the stall is counted in /metrics and logged once,
and VENs keep being served by two live workers."""

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
    checks = Checks("e2e.gateway_stall")
    with checks.processes():
        with Stack(cfg, name="e2e-gateway-stall") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            st.start_redis()
            # a deadline well past the stall: the answer must come from a worker
            gw = st.start_gateway(wait=False, env={"VTN_REQUEST_TIMEOUT": "20s"})
            # one credit: the request it holds is the only one it has
            holder = st.start_worker([gw], env={"VTN_WORKER_CREDITS": "1"})
            st.start_worker([gw])
            st.wait_live_workers(gw, 2)
            port = gw.ports["oadr"]

            def m(name, **labels):
                return metric_sum(st.metrics(gw), name, **labels)

            held = []
            gw_stopped = []

            def worker_holds_a_request():
                # the holder is stopped only until the gateway is, so the
                # gateway never has a reason of its own to find it silent
                os.kill(holder.pid, signal.SIGSTOP)
                try:
                    body = oadr.poll("ven-stall").encode()
                    req = ("POST %s HTTP/1.1\r\nHost: vtn\r\nContent-Type: application/xml\r\n"
                           "Content-Length: %d\r\n\r\n" % (POLL, len(body))).encode() + body
                    # the LRU queue alternates: within two requests one reaches
                    # the stopped worker, and an unanswered one is the one it holds
                    for _ in range(2):
                        c = RawConn("127.0.0.1", port)
                        c.send(req)
                        r = c.response(timeout=0.3)
                        if r is None:
                            held.append(c)
                            break
                        eq(r.status, 200, "a request the other worker answered")
                        c.close()
                    check(held, "no request reached the stopped worker")
                    eq(m("vtn_gateway_inflight_requests"), 1, "requests a worker holds")
                    os.kill(gw.pid, signal.SIGSTOP)
                    gw_stopped.append(1)
                finally:
                    # it answers now; the answer waits for the stopped gateway
                    os.kill(holder.pid, signal.SIGCONT)

            def gateway_continues():
                time.sleep(STALL_S)
                os.kill(gw.pid, signal.SIGCONT)
                gw_stopped.clear()

            def request_answered_200():
                r = held[0].response(timeout=15.0)
                check(r is not None, "no answer to the request held during the stall")
                eq(r.status, 200, "status of the request a worker held during the stall")
                held[0].close()
                eq(m("vtn_gateway_poison_suspects_total"), 0, "poison suspects")
                eq(m("vtn_gateway_unavailable_total", reason="worker_stalled"), 0,
                   "503s for a stalled worker")

            def stall_counted_and_logged():
                check(m("vtn_gateway_loop_stalls_total") >= 1, "stall not counted")
                check(m("vtn_gateway_loop_lag_max_ms") >= 3000,
                      "largest lag %r ms below the stall" % m("vtn_gateway_loop_lag_max_ms"))
                wait_for("a loop_stall log line", lambda: [
                    ln for ln in gw.log_text().splitlines() if " event=loop_stall " in ln])

            def no_worker_dead_for_silence():
                # the workers heard nothing for 4 s either, so they may have
                # started new sessions (the old ones then die as unreachable);
                # none may be declared dead for a silence that was the gateway's
                dead = [ln for ln in gw.log_text().splitlines() if " event=worker_dead " in ln]
                check(not [ln for ln in dead if "reason=silent" in ln],
                      "a worker declared dead for silence: %r" % dead)
                wait_for("two live workers", lambda: m("vtn_gateway_live_workers") == 2)

            def vens_served():
                ven = Ven("127.0.0.1", port, v, name="ven-after")
                ven.query()
                ven.register()
                for _ in range(4):
                    ven.poll()

            try:
                checks.run("a worker holds a request when the gateway stops",
                           worker_holds_a_request)
                checks.run("the gateway continues after 4 s", gateway_continues)
                checks.run("the held request is answered 200, not as poison", request_answered_200)
                checks.run("the stall is counted and logged", stall_counted_and_logged)
                checks.run("no worker is declared dead for silence", no_worker_dead_for_silence)
                checks.run("VENs are served after the stall", vens_served)
            finally:
                if gw_stopped and gw.alive():
                    os.kill(gw.pid, signal.SIGCONT)  # so it can be stopped by SIGTERM
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
