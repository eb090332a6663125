#!/usr/bin/env python3
"""Several gateways share the workers: two gateways and two workers that
find the gateways through Redis (no VTN_GATEWAYS list) plus one worker with
a configured list; a VEN works through either gateway; a gateway started
later gets workers within a few seconds; a killed gateway does not stop the
others."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import (Checks, Stack, Validator, check, eq, install_signal_handlers, parse_args,  # noqa: E402
                     wait_for)
from vtntest.ven import Ven  # noqa: E402

DISCOVERY_BOUND = 10.0  # "within a few seconds": gateways re-advertise and workers re-read every second
DEATH_BOUND = 10.0  # a gateway silent for 3 heartbeats (3 s) is dead to a worker; generous for CI


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.two_gateways")
    with checks.processes():
        with Stack(cfg, name="e2e-two-gateways") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            st.start_redis()
            g1 = st.start_gateway(wait=False)
            g2 = st.start_gateway(wait=False)

            def discovery():
                st.start_worker(discover=True, wait=False)
                st.start_worker(discover=True, wait=False)
                for g in (g1, g2):
                    st.wait_ops(g, need_ready=True, timeout=DISCOVERY_BOUND)
                    st.wait_live_workers(g, 2, timeout=DISCOVERY_BOUND)
                r = st.redis()
                try:
                    members = r.cmd("ZRANGEBYSCORE", "vtn:gateways", int(time.time() * 1000), "+inf")
                finally:
                    r.close()
                for g in (g1, g2):
                    check(g.zmq_endpoint in members,
                          "%s not advertised in vtn:gateways: %r" % (g.zmq_endpoint, members))

            def configured_list():
                # a worker with an explicit list serves both gateways as well
                st.start_worker([g1, g2])
                for g in (g1, g2):
                    st.wait_live_workers(g, 3, timeout=DISCOVERY_BOUND)

            ven = Ven("127.0.0.1", g1.ports["oadr"], v, name="two-gw-ven")
            ven2 = Ven("127.0.0.1", g2.ports["oadr"], v, name="two-gw-ven")

            def both_gateways_serve():
                ven.query()
                ven.register()
                ven.poll("oadrResponse", "200")
                # the same VEN through the other gateway: state lives in Redis
                ven2.ven_id, ven2.registration_id = ven.ven_id, ven.registration_id
                for _ in range(10):
                    rep = ven2.poll("oadrResponse", "200")
                    eq(rep.get("venID"), ven.ven_id, "venID via gateway2")
                    rep = ven.poll("oadrResponse", "200")
                again = ven2.register()
                eq(again.get("venID"), ven.ven_id, "re-registration through gateway2 keeps the venID")

            g3 = []

            def late_gateway_gets_workers():
                t0 = time.monotonic()
                g = st.start_gateway(wait=False)
                g3.append(g)
                st.wait_ops(g, need_ready=True, timeout=DISCOVERY_BOUND)
                print("   gateway3 ready %.1f s after start" % (time.monotonic() - t0))
                # the discovering workers found it; the list worker cannot
                st.wait_live_workers(g, 2, timeout=DISCOVERY_BOUND)
                v3 = Ven("127.0.0.1", g.ports["oadr"], v, name="two-gw-ven")
                v3.ven_id, v3.registration_id = ven.ven_id, ven.registration_id
                for _ in range(5):
                    v3.poll("oadrResponse", "200")
                v3.close()

            def killed_gateway():
                def live_gateways(w):
                    return st.metrics(w).get("vtn_worker_gateways_live", 0.0)

                before = {w.name: live_gateways(w) for w in st.workers}
                g1.kill()
                ven.close()
                ven2.http.close()
                for _ in range(10):
                    ven2.poll("oadrResponse", "200")
                if g3:
                    v3 = Ven("127.0.0.1", g3[0].ports["oadr"], v, name="two-gw-ven")
                    v3.ven_id = ven.ven_id
                    for _ in range(10):
                        v3.poll("oadrResponse", "200")
                    v3.close()
                # the workers stay ready and keep serving the others
                for w in st.workers:
                    check(w.alive(), "%s died after a gateway was killed" % w.name)
                # every worker has noticed: it counts one live gateway fewer
                for w in st.workers:
                    wait_for("%s drops the killed gateway" % w.name,
                             lambda w=w: live_gateways(w) < before[w.name], DEATH_BOUND)
                for _ in range(5):
                    ven2.poll("oadrResponse", "200")
                for g in [g2] + g3:
                    eq(st.ops_get(g, "/readyz").status, 200, "%s /readyz after gateway1 died" % g.name)

            checks.run("workers discover both gateways through Redis", discovery)
            checks.run("a worker with a configured list serves both", configured_list)
            checks.run("a VEN works through either gateway", both_gateways_serve)
            checks.run("a gateway started later gets workers", late_gateway_gets_workers)
            checks.run("a killed gateway leaves the others serving", killed_gateway)
            ven2.close()
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
