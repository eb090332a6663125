#!/usr/bin/env python3
"""A VEN's whole registration life through redis + one gateway + two
workers: query -> create registration -> poll -> VTN-initiated
reregistration (management API) -> poll -> oadrResponse -> registration again
(same venID) -> poll -> VTN-initiated cancel (API DELETE) -> poll ->
oadrCanceledPartyRegistration. Plus the management API's token, 404s, name
filter, pagination and errors, and a second gateway + worker with the
provisioned registration policy. Every OpenADR reply is validated against the
official schema."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Api, Checks, Stack, Validator, check, eq, install_signal_handlers, parse_args  # noqa: E402
from vtntest import oadr  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

API = "/api/v1"


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.lifecycle")
    with checks.processes():
        with Stack(cfg, name="e2e-lifecycle") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            gw = st.start_basic(workers=2)
            st.wait_live_workers(gw, 2)
            ven = Ven("127.0.0.1", gw.ports["oadr"], v, name="lifecycle-ven-1")
            api = Api("127.0.0.1", gw.ports["api"], st.api_token)

            def lifecycle():
                rep = ven.query()
                check(rep.get("venID") is None, "query from an unregistered VEN carries a venID: %s" % rep)
                check(rep.get("vtnID"), "no vtnID in %s" % rep)

                rep = ven.register()
                ven_id, reg_id = ven.ven_id, ven.registration_id
                check(not ven_id.isdigit() and not reg_id.isdigit(), "all-digit ids: %s %s" % (ven_id, reg_id))

                rep = ven.poll("oadrResponse", "200")
                eq(rep.get("venID"), ven_id, "venID in the empty poll reply")

                r = api.call("GET", "%s/vens/%s" % (API, ven_id))
                eq(r.status, 200, "GET the registered VEN (%r)" % r)
                j = r.json()
                eq(find_key(j, "venID"), ven_id, "venID in the API's VEN")

                # VTN-initiated reregistration
                r = api.call("POST", "%s/vens/%s/reregister" % (API, ven_id))
                eq(r.status, 202, "reregister (%r)" % r)
                eq(r.json().get("status"), "queued", "reregister status")
                r = api.call("POST", "%s/vens/%s/reregister" % (API, ven_id))
                eq(r.status, 202, "reregister again (%r)" % r)
                eq(r.json().get("status"), "already_queued", "second reregister status")
                eq(api.call("GET", "%s/vens/%s" % (API, ven_id)).json().get("reregistrationPending"), True,
                   "reregistrationPending after the API call")
                rep = ven.poll("oadrRequestReregistration", None)
                eq(rep.get("venID"), ven_id, "venID in oadrRequestReregistration")
                # the VEN acknowledges on EiRegisterParty, then registers again
                ven.send("EiRegisterParty", oadr.response(200, "", ven_id), None, "200")
                rep = ven.register()
                eq(ven.ven_id, ven_id, "venID after the requested re-registration")
                eq(api.call("GET", "%s/vens/%s" % (API, ven_id)).json().get("reregistrationPending"), False,
                   "reregistrationPending after the VEN registered again")
                rep = ven.poll("oadrResponse", "200")  # the request was delivered once
                eq(rep.get("venID"), ven_id, "venID in the poll after re-registration")

                # VTN-initiated cancel
                r = api.call("DELETE", "%s/vens/%s" % (API, ven_id))
                eq(r.status, 202, "DELETE of a registered VEN (%r)" % r)
                eq(r.json().get("state"), "cancelling", "state after DELETE")
                r = api.call("DELETE", "%s/vens/%s" % (API, ven_id))
                eq(r.status, 202, "DELETE again while cancelling (%r)" % r)
                # while the cancel is pending, the VEN cannot register again
                ven.send("EiRegisterParty", oadr.create_party_registration(
                    ven.name, registration_id=ven.registration_id, ven_id=ven_id),
                    "oadrCreatedPartyRegistration", "451")
                rep = ven.poll("oadrCancelPartyRegistration", None)
                eq(rep.get("venID"), ven_id, "venID in oadrCancelPartyRegistration")
                eq(rep.get("registrationID"), ven.registration_id, "registrationID in oadrCancelPartyRegistration")
                cancel_req = rep.get("requestID")
                check(cancel_req, "no requestID in %s" % rep)
                ven.send("EiRegisterParty",
                         oadr.canceled_party_registration(200, cancel_req, ven.registration_id, ven_id), None, "200")
                # the VEN is gone
                r = api.call("GET", "%s/vens/%s" % (API, ven_id))
                eq(r.status, 404, "GET a VEN after its cancel was acknowledged")
                ven.poll("oadrResponse", "463")

            def api_auth():
                for tok in (False, "Bearer wrong-token", "Basic dGVzdDp0ZXN0", "Bearer"):
                    r = api.call("GET", API + "/vens", token=tok)
                    eq(r.status, 401, "GET /vens with Authorization %r" % tok)
                    check(isinstance(r.json().get("error"), str), "401 without a JSON error: %r" % r)
                r = api.call("GET", API + "/vens")
                eq(r.status, 200, "GET /vens with the token (%r)" % r)

            def api_not_found():
                for method, path in (("GET", "/vens/ven-00000000000000000404"),
                                     ("DELETE", "/vens/ven-00000000000000000404"),
                                     ("POST", "/vens/ven-00000000000000000404/reregister"),
                                     ("GET", "/nothing-here")):
                    r = api.call(method, API + path)
                    eq(r.status, 404, "%s %s" % (method, path))
                    check(isinstance(r.json().get("error"), str), "404 without a JSON error: %r" % r)

            def api_list():
                names = ["list-alpha-%d" % i for i in range(5)] + ["list-beta-%d" % i for i in range(3)]
                ids = {}
                for n in names:
                    x = Ven("127.0.0.1", gw.ports["oadr"], v, name=n)
                    x.register()
                    x.close()
                    ids[n] = x.ven_id
                # name filter
                r = api.call("GET", API + "/vens?name=list-beta-1")
                eq(r.status, 200, "list with a name filter (%r)" % r)
                items, _ = page_of(r.json())
                eq([find_key(i, "venID") for i in items], [ids["list-beta-1"]], "VENs named list-beta-1")
                r = api.call("GET", API + "/vens?name=no-such-ven")
                eq(r.status, 200, "list with a name nobody has")
                eq(page_of(r.json())[0], [], "VENs named no-such-ven")
                # pagination: pages of 3 cover every VEN exactly once
                seen = []
                url = API + "/vens?limit=3"
                for _ in range(20):  # bounded
                    r = api.call("GET", url)
                    eq(r.status, 200, "list page %s (%r)" % (url, r))
                    items, cursor = page_of(r.json())
                    check(len(items) <= 3, "page longer than limit=3: %d" % len(items))
                    seen += [find_key(i, "venID") for i in items]
                    if not cursor:
                        break
                    url = API + "/vens?limit=3&cursor=" + cursor
                eq(len(seen), len(set(seen)), "VENs listed twice across pages: %r" % seen)
                for n, i in ids.items():
                    check(i in seen, "%s (%s) missing from the paginated list" % (n, i))
                # bad parameters are a 400 with a message
                r = api.call("GET", API + "/vens?limit=0")
                eq(r.status, 400, "limit=0")
                check(isinstance(r.json().get("error"), str), "400 without a JSON error")

            def api_errors():
                r = api.call("PUT", API + "/vens")
                eq(r.status, 405, "PUT /vens")
                check(isinstance(r.json().get("error"), str), "405 without a JSON error")
                r = api.http.request("POST", API + "/vens", b'{"venName": "x"}',
                                     {"Authorization": "Bearer " + st.api_token, "Content-Type": "text/plain"})
                eq(r.status, 415, "POST /vens with text/plain")
                r = api.http.request("POST", API + "/vens", b'{"venName": ',
                                     {"Authorization": "Bearer " + st.api_token, "Content-Type": "application/json"})
                eq(r.status, 400, "POST /vens with broken JSON")
                check(isinstance(r.json().get("error"), str), "400 without a JSON error")
                r = api.call("POST", API + "/vens", {"venName": ""})
                eq(r.status, 400, "POST /vens with an empty venName")

            def provisioned_policy():
                # a second gateway whose worker only accepts provisioned VENs (same Redis)
                gw2 = st.start_gateway(wait=False)
                st.start_worker([gw2], env={"VTN_REGISTRATION_POLICY": "provisioned"})
                api2 = Api("127.0.0.1", gw2.ports["api"], st.api_token)
                try:
                    r = api2.call("POST", API + "/vens", {"venName": "prov-ven-1"})
                    eq(r.status, 201, "provision prov-ven-1 (%r)" % r)
                    pid = r.json().get("venID")
                    check(pid and pid.startswith("ven-"), "venID of the provisioned VEN: %r" % pid)
                    eq(r.header("Location"), "%s/vens/%s" % (API, pid), "Location of the new VEN")
                    eq(r.json().get("provisioned"), True, "provisioned flag")
                    r = api2.call("POST", API + "/vens", {"venName": "prov-ven-1"})
                    eq(r.status, 409, "provisioning the same venName twice (%r)" % r)

                    good = Ven("127.0.0.1", gw2.ports["oadr"], v, name="prov-ven-1")
                    good.register()
                    eq(good.ven_id, pid, "venID the provisioned VEN got at registration")
                    good.poll("oadrResponse", "200")
                    bad = Ven("127.0.0.1", gw2.ports["oadr"], v, name="prov-ven-2")
                    rep = bad.send("EiRegisterParty", oadr.create_party_registration("prov-ven-2"),
                                   "oadrCreatedPartyRegistration", None)
                    check(rep.code() != "200", "an unprovisioned VEN registered: %s" % rep)
                    check(rep.get("venID") is None, "an unprovisioned VEN got a venID: %s" % rep)
                    bad.close()

                    # DELETE of a VEN that never registered: gone at once
                    r = api2.call("POST", API + "/vens", {"venName": "prov-ven-3"})
                    eq(r.status, 201, "provision prov-ven-3")
                    p3 = r.json()["venID"]
                    r = api2.call("DELETE", "%s/vens/%s" % (API, p3))
                    eq(r.status, 200, "DELETE of a VEN that is not registered (%r)" % r)
                    eq(r.json().get("state"), "deleted", "state")
                    eq(api2.call("GET", "%s/vens/%s" % (API, p3)).status, 404, "GET after DELETE")

                    # force=true: the registered VEN is gone and not told
                    r = api2.call("DELETE", "%s/vens/%s?force=true" % (API, pid))
                    eq(r.status, 200, "DELETE ?force=true (%r)" % r)
                    good.poll("oadrResponse", "463")
                    good.close()
                finally:
                    api2.close()

            checks.run("registration lifecycle", lifecycle)
            checks.run("API needs the bearer token", api_auth)
            checks.run("API 404 for unknown VENs and paths", api_not_found)
            checks.run("API list: name filter and pagination", api_list)
            checks.run("API errors: 405, 415, 400", api_errors)
            checks.run("provisioned policy, provisioning and DELETE", provisioned_policy)
            ven.close()
            api.close()
            checks.keep_logs_on_failure(st)
    return checks.summary()


def find_key(obj, key):
    """obj[key], also when obj wraps the record (e.g. {"ven": {...}})."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for val in obj.values():
            if isinstance(val, dict) and key in val:
                return val[key]
    return None


def page_of(j):
    """(items, next cursor or None) from a list reply: the first list value
    is the page, the cursor is a string under a key with 'cursor' or 'next'."""
    if isinstance(j, list):
        return j, None
    items = next((val for val in j.values() if isinstance(val, list)), None)
    if items is None:
        raise AssertionError("no list in the API reply: %r" % j)
    cursor = None
    for k, val in j.items():
        if ("cursor" in k.lower() or "next" in k.lower()) and isinstance(val, str) and val:
            cursor = val
    return items, cursor


if __name__ == "__main__":
    sys.exit(main())
