#!/usr/bin/env python3
"""Request bodies cannot make the gateway buffer without bound (the attack
probe's finding 5, at small scale), and the smaller HTTP findings: stalled
big bodies fill at most the body budget and the next one is refused with
503 + Retry-After before it is read; a management request without the token
is refused before its body; transfer codings other than chunked, a chunk
over the body limit and an overlong request target get their own answers. A
VEN polls every 100 ms throughout without one failure."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import (Checks, Stack, Validator, check, eq, install_signal_handlers, metric_sum,  # noqa: E402
                     oadr, parse_args, wait_for)
from vtntest.poller import PollingVen, RawConn  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

MAX_BODY = 128 * 1024
# bodies over 16 KiB may use 3/4 of it: three of MAX_BODY, with 12 KiB to
# spare for the small bodies the polling VEN has in flight meanwhile
BUDGET = 4 * MAX_BODY + 16 * 1024
API_MAX_BODY = 4096
POLL = oadr.SERVICE_PATH + "OadrPoll"
WAIT_S = 15.0


def head(method, path, length=None, extra=""):
    h = "%s %s HTTP/1.1\r\nHost: vtn\r\n%s" % (method, path, extra)
    if length is not None:
        h += "Content-Length: %d\r\n" % length
    return (h + "\r\n").encode()


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.body_budget")
    with checks.processes():
        with Stack(cfg, name="e2e-body-budget") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            gw = st.start_basic(workers=1, gateway_env={
                "VTN_MAX_BODY_BYTES": str(MAX_BODY),
                "VTN_BODY_BUDGET": str(BUDGET),
                "VTN_API_MAX_BODY": str(API_MAX_BODY),
                "VTN_API_TOKEN": st.api_token,
                "VTN_READ_TIMEOUT": "30s",
                "VTN_IDLE_TIMEOUT": "30s",
            })
            port, api_port = gw.ports["oadr"], gw.ports["api"]
            xml = "Content-Type: application/xml\r\n"
            bearer = "Authorization: Bearer %s\r\n" % st.api_token

            def m(name, **labels):
                return metric_sum(st.metrics(gw), name, **labels)

            legit = PollingVen(Ven("127.0.0.1", port, v, name="ven-legit"))
            legit.ven.query()
            legit.ven.register()
            legit.start()

            def stalled_bodies_fill_only_the_budget():
                stalled = []
                try:
                    for _ in range(3):
                        c = RawConn("127.0.0.1", port)
                        c.send(head("POST", POLL, MAX_BODY, xml) + b"<oadrPayload")
                        stalled.append(c)
                    wait_for("three bodies reserved",
                             lambda: m("vtn_gateway_body_budget_used_bytes") >= 3 * MAX_BODY)
                    eq(m("vtn_gateway_body_budget_bytes"), BUDGET, "budget in use")
                    c = RawConn("127.0.0.1", port)
                    c.send(head("POST", POLL, MAX_BODY, xml))
                    r = c.response(timeout=WAIT_S)
                    check(r is not None, "no answer to a body past the budget")
                    eq(r.status, 503, "status past VTN_BODY_BUDGET")
                    check(r.header("Retry-After"), "503 without Retry-After")
                    check(b"too many request bodies in progress" in r.body, "body %r" % r.body)
                    check(c.wait_closed(), "connection left open after the budget's 503")
                    c.close()
                    check(m("vtn_gateway_body_budget_refused_total") >= 1, "refusal not counted")
                    # small messages still fit: the legitimate VEN is polling now
                    time.sleep(1.0)  # let it poll ~10 times while the budget is spent
                    check(not legit.failures, "the VEN failed while big bodies were stalled: %s"
                          % legit.failures[:3])
                finally:
                    for c in stalled:
                        c.close()
                wait_for("the budget given back", lambda: m("vtn_gateway_body_budget_used_bytes") == 0)

            def api_token_checked_before_the_body():
                c = RawConn("127.0.0.1", api_port)
                c.send(head("POST", "/api/v1/vens", 3000, "Content-Type: application/json\r\n"))
                r = c.response(timeout=WAIT_S)  # no body byte was sent
                check(r is not None, "no answer before the body to a request without a token")
                eq(r.status, 401, "status without a token")
                check("Bearer" in (r.header("WWW-Authenticate") or ""), "401 without WWW-Authenticate")
                check(c.wait_closed(), "connection left open after 401")
                c.close()
                c = RawConn("127.0.0.1", api_port)
                c.send(head("POST", "/api/v1/vens", 3000,
                            "Authorization: Bearer wrong\r\nContent-Type: application/json\r\n"))
                r = c.response(timeout=WAIT_S)
                eq(r.status if r else None, 401, "status with a wrong token")
                c.close()
                check(m("vtn_gateway_api_unauthorized_total") >= 2, "401s not counted")
                # with the token: the API's own, smaller body limit
                c = RawConn("127.0.0.1", api_port)
                c.send(head("POST", "/api/v1/vens", API_MAX_BODY + 1,
                            bearer + "Content-Type: application/json\r\n"))
                r = c.response(timeout=WAIT_S)
                eq(r.status if r else None, 413, "status over VTN_API_MAX_BODY")
                c.close()
                c = RawConn("127.0.0.1", api_port)
                c.send(head("GET", "/api/v1/vens", None, bearer))
                r = c.response(timeout=WAIT_S)
                eq(r.status if r else None, 200, "GET /api/v1/vens with the token")
                c.close()

            def smaller_http_findings():
                c = RawConn("127.0.0.1", port)
                c.send(head("POST", POLL, None, xml + "Transfer-Encoding: gzip, chunked\r\n"))
                r = c.response(timeout=WAIT_S)
                eq(r.status if r else None, 501, "status for Transfer-Encoding: gzip, chunked")
                c.close()
                # a chunk announced over the body limit: refused at its size line
                c = RawConn("127.0.0.1", port)
                c.send(head("POST", POLL, None, xml + "Transfer-Encoding: chunked\r\n")
                       + b"%x\r\n<oadrPayload" % (MAX_BODY + 1))
                r = c.response(timeout=WAIT_S)
                eq(r.status if r else None, 413, "status for a chunk over the body limit")
                check(b"chunk" in r.body, "413 body %r" % r.body)
                c.close()
                # a 5 KB query on the API
                c = RawConn("127.0.0.1", api_port)
                c.send(head("GET", "/api/v1/vens?q=" + "x" * 5000, None, bearer))
                r = c.response(timeout=WAIT_S)
                eq(r.status if r else None, 414, "status for a 5 KB request target")
                check(b"request target too long" in r.body, "414 body %r" % r.body)
                c.close()

            def legit_ven_never_failed():
                legit.stop_and_check(min_polls=10)

            checks.run("stalled big bodies fill only the body budget", stalled_bodies_fill_only_the_budget)
            checks.run("the API token is checked before the body", api_token_checked_before_the_body)
            checks.run("501, 413 at the chunk header, 414", smaller_http_findings)
            checks.run("the legitimate VEN polled without a failure", legit_ven_never_failed)
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
