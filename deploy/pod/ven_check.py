#!/usr/bin/env python3
"""A VEN against the local pod (deploy/pod/pod.sh up): registration and polls
over mutual TLS with the development PKI's ven1 certificate, on both gateways,
with the VEN client the tests use (tests/lib/vtntest). Every OpenADR reply is
validated against the official schema. Then the management API lists the VEN
with the certificate's fingerprint, and both gateways' /metrics counted the
requests. Ends with "pod: N passed, M failed"; exit 1 on any failure."""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

from vtntest import Api, Checks, Validator, check, eq, metric_sum  # noqa: E402
from vtntest.httpc import http_get  # noqa: E402
from vtntest.stack import parse_metrics  # noqa: E402
from vtntest.tls import Cert, TlsVen  # noqa: E402


class DevPki:
    """The part of vtntest.tls.Pki a client needs: the CAs it trusts."""

    def __init__(self, directory):
        self.client_ca = os.path.join(directory, "client-ca.pem")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pki", required=True, help="the pod's development PKI folder")
    ap.add_argument("--oadr", type=int, nargs=2, required=True, metavar="PORT",
                    help="host ports of the two gateways' OpenADR listeners")
    ap.add_argument("--ops", type=int, nargs=2, required=True, metavar="PORT",
                    help="host ports of the two gateways' ops listeners")
    ap.add_argument("--api", type=int, required=True, help="host port of the management API")
    ap.add_argument("--token", required=True, help="the management API token")
    ap.add_argument("--fingerprint", required=True, help="ven1's OpenADR fingerprint")
    ap.add_argument("--schema", required=True, help="the official oadr_20b.xsd")
    ap.add_argument("--polls", type=int, default=20, help="polls on each gateway")
    a = ap.parse_args()

    pki = DevPki(a.pki)
    cert = Cert("ven1", os.path.join(a.pki, "ven1.pem"), os.path.join(a.pki, "ven1.key"),
                a.fingerprint, os.path.join(a.pki, "ca-ecc"))
    validator = Validator(a.schema)
    checks = Checks("pod")
    vens = [TlsVen(port, validator, pki, cert, name="pod-ven1") for port in a.oadr]
    state = {}

    def register():
        vens[0].register()
        state["ven_id"] = vens[0].ven_id
        state["registration_id"] = vens[0].registration_id

    def poll_both():
        # The second gateway knows the VEN through Redis alone.
        vens[1].ven_id = state["ven_id"]
        vens[1].registration_id = state["registration_id"]
        for _ in range(a.polls):
            for v in vens:
                v.poll("oadrResponse", "200")

    def query_on_second():
        rep = vens[1].query()
        eq(rep.get("registrationID"), state["registration_id"],
           "registrationID the second gateway reports")

    def api_lists_ven():
        api = Api("127.0.0.1", a.api, a.token)
        r = api.call("GET", "/api/v1/vens/" + state["ven_id"])
        eq(r.status, 200, "GET /api/v1/vens/<id> status (%r)" % r)
        body = r.json()
        check(a.fingerprint.lower() in str(body).lower(),
              "the VEN's record names ven1's fingerprint: %r" % body)
        eq(api.call("GET", "/api/v1/vens", token=False).status, 401, "API without the token")
        api.close()

    def metrics_counted():
        for port in a.ops:
            m = parse_metrics(http_get("127.0.0.1", port, "/metrics").text())
            polls = metric_sum(m, "vtn_gateway_requests_total", route="OadrPoll", status="200")
            check(polls >= a.polls, "gateway on ops port %d counted %d OK polls, want >= %d"
                  % (port, polls, a.polls))
            check(metric_sum(m, "vtn_gateway_live_workers") >= 3,
                  "gateway on ops port %d sees 3 live workers" % port)

    checks.run("register over mutual TLS (gateway 1)", register)
    if "ven_id" in state:
        checks.run("poll on both gateways", poll_both)
        checks.run("registration known to gateway 2", query_on_second)
        checks.run("management API lists the VEN", api_lists_ven)
        checks.run("gateway metrics", metrics_counted)
    for v in vens:
        v.close()
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
