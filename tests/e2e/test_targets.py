#!/usr/bin/env python3
"""Event targets end to end (redis + one gateway + two workers, two
registered pull VENs): the operator records a VEN's resourceIDs and
partyIDs, an event for one of them reaches that VEN only and its
participation lists it; a program-wide event (no targets) reaches the VENs
enrolled in the program, and leaves a VEN that is withdrawn on its next poll
(implied cancel); targetsMustMatch refuses what matches nothing; a group of
10,000 members is PUT in one request through the gateway and grown with a
batch, each change one bump of the events version; a program with a live
event cannot be deleted; deleting a VEN takes it out of its groups,
programs and the resourceID/partyID indexes (a registered one as soon as its
cancel is queued)."""

import datetime
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Api, Checks, Stack, Validator, check, eq, install_signal_handlers, parse_args  # noqa: E402
from vtntest import keys, oadr  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

API = "/api/v1"
MC = "http://utility.example/programs/targets"


def event_body(start, targets=None, **over):
    body = {
        "marketContext": MC,
        "responseRequired": "never",
        "dtstart": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration": "PT1H",
        "signals": [{"signalName": "SIMPLE", "signalType": "level",
                     "intervals": [{"duration": "PT1H", "value": 1}]}],
    }
    if targets is not None:
        body["targets"] = targets
    body.update(over)
    return body


def event_ids(rep):
    return [oadr.text_at(e, "oadrEvent/eiEvent/eventDescriptor/eventID")
            for e in oadr.find_all(rep.payload, "oadrDistributeEvent/oadrEvent")]


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.targets")
    with checks.processes():
        with Stack(cfg, name="e2e-targets") as st:
            gw = st.start_basic(workers=2)
            st.wait_live_workers(gw, 2)
            api = Api("127.0.0.1", gw.ports["api"], st.api_token)
            v = Validator(cfg.schema, workdir=st.tmpdir)
            redis = st.redis()
            start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)
            a = Ven("127.0.0.1", gw.ports["oadr"], v, name="targets-a")
            b = Ven("127.0.0.1", gw.ports["oadr"], v, name="targets-b")
            made = {}

            def version():
                return int(redis.cmd("GET", keys.build("VTN_KEY_EVENTSVER")) or 0)

            def setup():
                r = api.call("POST", API + "/programs", {"marketContext": MC})
                eq(r.status, 201, "create the program (%r)" % r)
                made["program"] = r.json()["programID"]
                for ven in (a, b):
                    ven.register()
                    ven.poll("oadrResponse", "200")

            def resource_and_party():
                r = api.call("PUT", API + "/vens/%s/targets" % a.ven_id,
                             {"resourceID": ["meter-7"], "partyID": ["acme"]})
                eq(r.status, 200, "record A's resourceID and partyID (%r)" % r)
                r = api.call("GET", API + "/vens/" + a.ven_id)
                eq(r.json()["targets"]["resourceID"], ["meter-7"], "the VEN's GET shows them")
                eq(r.json()["targets"]["partyID"], ["acme"], "partyID")
                r = api.call("POST", API + "/events",
                             event_body(start, {"resourceID": ["meter-7"]}, targetsMustMatch=True))
                eq(r.status, 201, "an event for meter-7 (%r)" % r)
                ev = r.json()["eventID"]
                eq(event_ids(a.poll("oadrDistributeEvent", None)), [ev], "A has meter-7: it gets it")
                b.poll("oadrResponse", "200")  # B has not
                r = api.call("GET", API + "/events/%s/vens" % ev)
                eq([x["venID"] for x in r.json()["vens"]], [a.ven_id], "participation lists A")
                r = api.call("POST", API + "/events",
                             event_body(start, {"partyID": ["globex"]}, targetsMustMatch=True))
                eq(r.status, 400, "a partyID no VEN has, must match (%r)" % r)
                check('targets.partyID[0] "globex" matches no VEN' in r.json()["error"], r.json())
                made["resource_event"] = ev

            def program_wide():
                r = api.call("POST", API + "/events", event_body(start, targetsMustMatch=True))
                eq(r.status, 400, "program-wide with nobody enrolled, must match (%r)" % r)
                ver = version()
                r = api.call("PUT", API + "/programs/%s/vens" % made["program"], {"venIDs": [b.ven_id]})
                eq(r.status, 200, "enroll B (%r)" % r)
                eq(version(), ver + 1, "one bump per membership change")
                r = api.call("POST", API + "/events", event_body(start))
                eq(r.status, 201, "a program-wide event (%r)" % r)
                ev = r.json()["eventID"]
                eq(r.json()["targets"], {}, "no targets")
                eq(event_ids(b.poll("oadrDistributeEvent", None)), [ev], "B is enrolled: it gets it")
                a.poll("oadrResponse", "200")  # A is not enrolled: nothing new for it
                r = api.call("GET", API + "/events/%s/vens" % ev)
                eq([x["venID"] for x in r.json()["vens"]], [b.ven_id], "participation lists B")
                r = api.call("GET", API + "/programs/%s/vens?limit=1" % made["program"])
                eq(r.json()["venIDs"], [b.ven_id], "the enrolled VENs")
                r = api.call("DELETE", API + "/programs/" + made["program"])
                eq(r.status, 409, "a program with live events (%r)" % r)
                check("has 2 event(s) that have not ended" in r.json()["error"], r.json())
                r = api.call("POST", API + "/programs/%s/vens" % made["program"], {"remove": [b.ven_id]})
                eq(r.json()["removed"], 1, "withdraw B (%r)" % r)
                eq(event_ids(b.poll("oadrDistributeEvent", None)), [], "B's set without it: implied cancel")
                made["program_event"] = ev

            def big_group():
                members = ["ven-%05d" % i for i in range(9999)] + [a.ven_id]
                ver = version()
                r = api.call("PUT", API + "/groups/big", {"venIDs": members})
                eq(r.status, 201, "a 10,000-member group in one request (%r)" % r)
                eq(version(), ver + 1, "one bump for 10,000 members")
                r = api.call("PUT", API + "/groups/big", {"venIDs": members + ["one-more"]})
                eq(r.status, 413, "10,001 members")
                check("POST /api/v1/groups/{groupID}/vens" in r.json()["error"], r.json())
                r = api.call("POST", API + "/groups/big/vens", {"add": ["more-%d" % i for i in range(5)]})
                eq(r.json()["members"], 10005, "grown with a batch (%r)" % r)
                eq(version(), ver + 2, "one bump per batch")
                r = api.call("POST", API + "/events", event_body(start, {"groupID": ["big"]}))
                ev = r.json()["eventID"]
                eq(sorted(event_ids(a.poll("oadrDistributeEvent", None))),
                   sorted([made["resource_event"], ev]), "A gets the group's event")

            def delete_ven():
                r = api.call("DELETE", API + "/vens/%s?force=true" % a.ven_id)
                eq(r.status, 200, "delete A (%r)" % r)
                eq(redis.cmd("SISMEMBER", keys.build("VTN_KEY_GROUPVENS", "big"), a.ven_id), 0,
                   "A left the group")
                for k in (keys.build("VTN_KEY_RESOURCEVENS", "meter-7"),
                          keys.build("VTN_KEY_PARTYVENS", "acme"),
                          keys.build("VTN_KEY_VENTARGETS", a.ven_id)):
                    eq(redis.cmd("EXISTS", k), 0, "%s gone" % k)
                r = api.call("POST", API + "/events",
                             event_body(start, {"resourceID": ["meter-7"]}, targetsMustMatch=True))
                eq(r.status, 400, "meter-7 matches nobody any more (%r)" % r)
                # A registered VEN: its cancel is queued, and it leaves at once.
                api.call("PUT", API + "/programs/%s/vens" % made["program"], {"venIDs": [b.ven_id]})
                r = api.call("DELETE", API + "/vens/" + b.ven_id)
                eq(r.status, 202, "delete B, registered: cancel queued (%r)" % r)
                eq(redis.cmd("ZCARD", keys.build("VTN_KEY_PROGRAMVENS", made["program"])), 0,
                   "B left the program before it acknowledged")
                b.poll("oadrCancelPartyRegistration", None)

            for name, fn in (("setup", setup), ("resourceID and partyID targets", resource_and_party),
                             ("program-wide events and enrollment", program_wide),
                             ("a 10,000-member group and batches", big_group),
                             ("a VEN's deletion", delete_ven)):
                checks.run(name, fn)
            a.close()
            b.close()
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
