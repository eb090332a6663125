#!/usr/bin/env python3
"""A stall of a process' own loop is never blamed on its peers.

The gateway: stopped (SIGSTOP) for 4 s while a worker holds a request, then
continued. The workers' silence was the gateway's own, so no worker is
declared dead for silence, the request is answered 200 (not 503 as a
suspected poison request), the stall is counted in /metrics and logged, and
VENs are served afterwards by two live workers.

A worker: Redis is stopped for 4 s while the worker runs a request, so the
worker's loop waits on Redis (VTN_REDIS_TIMEOUT 10 s) with the gateway's
heartbeats piling up unread. After SIGCONT the worker does not declare the
gateway silent (no gateway_silent line, no reconnect counted), counts and
logs the stall, and VENs are served afterwards."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import (Checks, Stack, Validator, check, eq, install_signal_handlers, metric_sum,  # noqa: E402
                     parse_args, wait_for)
from vtntest.poller import RawConn, held_request, raw_poll  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

STALL_S = 4.0  # longer than the 3 s liveness window


def serve_a_ven(port, v):
    ven = Ven("127.0.0.1", port, v, name="ven-after")
    ven.query()
    ven.register()
    for _ in range(4):
        ven.poll()


def gateway_stall(cfg, checks):
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
                c = held_request(port, raw_poll("ven-stall")[0], timeout=0.3)
                check(c, "no request reached the stopped worker")
                held.append(c)
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
            serve_a_ven(port, v)

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


def worker_stall(cfg, checks):
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
            c = RawConn("127.0.0.1", port)
            c.send(raw_poll("ven-stall")[0])
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
            serve_a_ven(port, v)

        try:
            checks.run("the worker waits 4 s on a stopped Redis", worker_waits_on_redis)
            checks.run("the gateway is not declared silent", gateway_not_blamed)
            checks.run("VENs are served after the stall", vens_served)
        finally:
            if stopped and redis.alive():
                os.kill(redis.pid, signal.SIGCONT)  # so it can be stopped by SIGTERM
        checks.keep_logs_on_failure(st)


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.loop_stall")
    with checks.processes():
        gateway_stall(cfg, checks)
        worker_stall(cfg, checks)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
