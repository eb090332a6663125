#!/usr/bin/env python3
"""Connection slots cannot be exhausted by anyone who reaches the port (the
attack probe's finding 4, at small scale): silent TCP connections to the TLS
port, many connections from one address, and a body that trickles in. A VEN
with a verified certificate polls every 100 ms throughout without one
failure, and every attack gets a precise refusal."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import (Api, Checks, Stack, Validator, check, eq, install_signal_handlers, metric_sum,  # noqa: E402
                     parse_args, wait_for)
from vtntest.poller import PollingVen, RawConn  # noqa: E402
from vtntest.tls import Pki, TlsVen, attempt, find_vtnctl, tls12_context  # noqa: E402

MAX_CONNS = 24      # OpenADR (TLS) listener
API_MAX_CONNS = 4
PER_IP = 6
READ_TIMEOUT_S = 2
WAIT_S = 15.0       # bound for anything the test waits for


def main():
    def extra(ap):
        ap.add_argument("--vtnctl", help="vtnctl binary (env VTNCTL; default: next to the gateway)")

    cfg, a = parse_args(__doc__.split("\n")[0], extra)
    cfg.require("gateway", "worker", "redis_server", "schema")
    vtnctl = find_vtnctl(a.vtnctl, cfg.gateway)
    install_signal_handlers()
    checks = Checks("e2e.conn_limits")
    with checks.processes():
        with Stack(cfg, name="e2e-conn-limits") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            pki = Pki(vtnctl, os.path.join(st.tmpdir, "pki"))
            legit_cert = pki.issue("ven-legit")
            other_cert = pki.issue("ven-other")
            st.start_redis()
            env = pki.gateway_env(crl=False)
            env.update({
                "VTN_MAX_CONNECTIONS": str(MAX_CONNS),
                "VTN_API_MAX_CONNECTIONS": str(API_MAX_CONNS),
                "VTN_MAX_CONNECTIONS_PER_IP": str(PER_IP),
                "VTN_MAX_CONNECTIONS_PER_IP_EXEMPT": "",  # loopback is capped too here
                "VTN_READ_TIMEOUT": "%ds" % READ_TIMEOUT_S,
                # long enough that only the limits under test act
                "VTN_TLS_HANDSHAKE_TIMEOUT": "60s",
                "VTN_HEADER_TIMEOUT": "60s",
                "VTN_IDLE_TIMEOUT": "60s",
                "VTN_API_TOKEN": st.api_token,
            })
            gw = st.start_gateway(env=env, wait=False)
            st.start_worker([gw])
            port, api_port = gw.ports["oadr"], gw.ports["api"]

            def m(name, **labels):
                return metric_sum(st.metrics(gw), name, **labels)

            legit = PollingVen(TlsVen(port, v, pki, legit_cert, name="ven-legit"))
            legit.ven.query()
            legit.ven.register()
            legit.start()

            def per_address_cap():
                held = [RawConn("127.0.0.1", port, src="127.0.0.2") for _ in range(PER_IP)]
                try:
                    wait_for("%d connections from 127.0.0.2" % PER_IP,
                             lambda: m("vtn_gateway_open_connections") >= PER_IP + 1)
                    # one more from that address, here on the API listener: a
                    # plain-HTTP 503 that says why
                    extra = RawConn("127.0.0.1", api_port, src="127.0.0.2")
                    r = extra.response(timeout=WAIT_S)
                    check(r is not None, "no answer to the connection over the per-address cap")
                    eq(r.status, 503, "status over VTN_MAX_CONNECTIONS_PER_IP")
                    eq(r.body, b"too many connections from your address\n", "body")
                    check(r.header("Retry-After"), "503 without Retry-After")
                    check(extra.wait_closed(), "connection over the cap left open")
                    extra.close()
                    # on the TLS listener the connection is closed unanswered
                    extra = RawConn("127.0.0.1", port, src="127.0.0.2")
                    check(extra.wait_closed(), "TLS connection over the cap left open")
                    eq(extra.buf, b"", "bytes sent to a refused TLS connection")
                    extra.close()
                    check(m("vtn_gateway_connections_per_ip_rejected_total") >= 2,
                          "per-address refusals not counted")
                    # another address is not affected
                    o = attempt(port, tls12_context(pki, other_cert))
                    check(o.ok, "a VEN from another address: %r" % o)
                finally:
                    for c in held:
                        c.close()

            def silent_tls_connections_do_not_lock_vens_out():
                # many addresses, each under the per-address cap, fill the
                # TLS listener with connections that never start a handshake
                held = []
                n_addr = (MAX_CONNS + 2 * PER_IP) // PER_IP
                try:
                    for i in range(n_addr):
                        for _ in range(PER_IP):
                            held.append(RawConn("127.0.0.1", port, src="127.0.0.%d" % (10 + i)))
                    wait_for("the OpenADR listener full",
                             lambda: m("vtn_gateway_open_connections") >= MAX_CONNS)
                    check(m("vtn_gateway_connections_shed_total", tier="fresh") >= 1,
                          "no unauthenticated connection was shed")
                    check(m("vtn_gateway_open_connections") <= MAX_CONNS,
                          "more open connections than VTN_MAX_CONNECTIONS")
                    # the oldest silent ones made room and were closed unanswered
                    check(held[0].wait_closed(timeout=5.0), "the oldest silent connection was kept")
                    eq(held[0].buf, b"", "bytes sent to a shed connection")
                    # a VEN connecting now completes its handshake and is served
                    other = TlsVen(port, v, pki, other_cert, name="ven-other")
                    try:
                        other.query()
                        other.register()
                        for _ in range(3):
                            other.poll("oadrResponse", "200")
                    finally:
                        other.close()
                    # and the management API has slots of its own
                    api = Api("127.0.0.1", api_port, st.api_token)
                    try:
                        r = api.call("GET", "/api/v1/vens")
                        eq(r.status, 200, "management API while the OpenADR listener is full")
                    finally:
                        api.close()
                finally:
                    for c in held:
                        c.close()

            def trickling_body_is_408():
                # one byte every 300 ms: each pause is far below the idle
                # timeout, the whole request is not
                c = RawConn("127.0.0.1", api_port, src="127.0.0.3")
                try:
                    c.send(("POST /api/v1/vens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                            % st.api_token).encode())
                    r = None
                    deadline = time.monotonic() + WAIT_S
                    while r is None and not c.closed and time.monotonic() < deadline:
                        try:
                            c.send(b" ")
                        except OSError:
                            break
                        r = c.response(timeout=0.3)
                    if r is None:
                        r = c.response(timeout=1.0)
                    check(r is not None, "no answer to a body that never completes")
                    eq(r.status, 408, "status for a body past VTN_READ_TIMEOUT")
                    check(c.wait_closed(), "connection left open after 408")
                finally:
                    c.close()

            def legit_ven_never_failed():
                legit.stop_and_check(min_polls=10)

            checks.run("one address gets at most VTN_MAX_CONNECTIONS_PER_IP", per_address_cap)
            checks.run("silent TLS connections do not lock VENs or operators out",
                       silent_tls_connections_do_not_lock_vens_out)
            checks.run("a trickling body gets 408 at VTN_READ_TIMEOUT", trickling_body_is_408)
            checks.run("the legitimate VEN polled without a failure", legit_ven_never_failed)
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
