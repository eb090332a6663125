#!/usr/bin/env python3
"""Time-driven event status reaches a polling VEN, across a scheduler
SIGKILL (redis + one gateway + one worker + two schedulers): an event
created through the API a few seconds ahead, with a notification window
and a short duration, reaches the VEN far; the scheduler leader is
SIGKILLed; the standby takes the lease and the VEN's next polls get the
event near, then active, then a distribute without it once it has ended,
each status once and always at modificationNumber 0. The participation
shows the modificationNumber the VEN received before it answers, and its
answer after."""

import datetime
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Api, Checks, Stack, Validator, check, eq, install_signal_handlers, parse_args  # noqa: E402
from vtntest import oadr  # noqa: E402
from vtntest.checks import wait_for  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

API = "/api/v1"
MC = "http://utility.example/programs/status"
LEASE_MS = 2000
TICK_MS = 200
# The event's times from its creation: near at NEAR_S (notification window
# of NOTIFY_S), active at START_S, completed at END_S. The standby takes
# over within the lease, well before the near transition.
NEAR_S, START_S, END_S = 5, 10, 14
NOTIFY_S = START_S - NEAR_S
POLL_EVERY = 0.25


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def events_of(rep):
    """[(eventID, modificationNumber, eventStatus)] of an oadrDistributeEvent."""
    return [(oadr.text_at(e, "oadrEvent/eiEvent/eventDescriptor/eventID"),
             int(oadr.text_at(e, "oadrEvent/eiEvent/eventDescriptor/modificationNumber")),
             oadr.text_at(e, "oadrEvent/eiEvent/eventDescriptor/eventStatus"))
            for e in oadr.find_all(rep.payload, "oadrDistributeEvent/oadrEvent")]


def created_event(ven, eid, mn, opt):
    body = oadr.payload_xml(
        '<oadr:oadrCreatedEvent ei:schemaVersion="2.0b"><pyld:eiCreatedEvent>'
        '<ei:eiResponse><ei:responseCode>200</ei:responseCode><pyld:requestID/></ei:eiResponse>'
        '<ei:eventResponses><ei:eventResponse><ei:responseCode>200</ei:responseCode>'
        '<pyld:requestID>rq-dist</pyld:requestID><ei:qualifiedEventID><ei:eventID>%s</ei:eventID>'
        '<ei:modificationNumber>%d</ei:modificationNumber></ei:qualifiedEventID>'
        '<ei:optType>%s</ei:optType></ei:eventResponse></ei:eventResponses>'
        '<ei:venID>%s</ei:venID></pyld:eiCreatedEvent></oadr:oadrCreatedEvent>'
        % (eid, mn, opt, ven.ven_id))
    return ven.send("EiEvent", body, "oadrResponse", code=None)


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "scheduler", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.event_status")
    env = {"VTN_SCHEDULER_LEASE": "%dms" % LEASE_MS, "VTN_SCHEDULER_TICK": "%dms" % TICK_MS}
    with checks.processes():
        with Stack(cfg, name="e2e-event-status") as st:
            gw = st.start_basic(workers=1)
            api = Api("127.0.0.1", gw.ports["api"], st.api_token)
            v = Validator(cfg.schema, workdir=st.tmpdir)
            scheds = [st.start_scheduler(env=env), st.start_scheduler(env=env)]
            state = {}

            def leader_of(procs):
                lead = [p for p in procs if p.alive() and st.metrics(p).get("vtn_scheduler_leader") == 1]
                return lead[0] if len(lead) == 1 else None

            def far_to_the_ven():
                state["lead"] = wait_for("a scheduler leader", lambda: leader_of(scheds),
                                         timeout=3 * LEASE_MS / 1000)
                r = api.call("POST", API + "/programs", {"name": "status", "marketContext": MC})
                eq(r.status, 201, "create a program (%r)" % r)
                ven = Ven("127.0.0.1", gw.ports["oadr"], v, name="status-ven")
                ven.register()
                ven.poll("oadrResponse", "200")
                t0 = math.ceil(time.time())
                r = api.call("POST", API + "/events", {
                    "marketContext": MC, "responseRequired": "always",
                    "dtstart": iso(t0 + START_S), "duration": "PT%dS" % (END_S - START_S),
                    "notification": "PT%dS" % NOTIFY_S,
                    "signals": [{"signalName": "SIMPLE", "signalType": "level", "signalID": "s",
                                 "intervals": [{"duration": "PT%dS" % (END_S - START_S), "value": 2}]}],
                    "targets": {"venID": [ven.ven_id]}})
                eq(r.status, 201, "create the event (%r)" % r)
                eid = r.json()["eventID"]
                rep = ven.poll("oadrDistributeEvent", None)
                eq(events_of(rep), [(eid, 0, "far")], "the VEN gets the event far")
                state.update(ven=ven, eid=eid)

            def participation_received_then_answered():
                ven, eid = state["ven"], state["eid"]
                p = api.call("GET", API + "/events/%s/vens" % eid).json()
                eq([(x["venID"], x["receivedModificationNumber"], x["modificationNumber"], x["opt"])
                    for x in p["vens"]], [(ven.ven_id, 0, None, "none")], "received, not answered")
                eq(p["counts"], {"received": 1, "optIn": 0, "optOut": 0, "none": 1}, "counts")
                eq(api.call("GET", API + "/events/" + eid).json()["participation"],
                   {"received": 1, "optIn": 0, "optOut": 0, "noAnswer": 1}, "the event's counts")
                eq(created_event(ven, eid, 0, "optIn").code(), "200", "the VEN opts in")
                p = api.call("GET", API + "/events/%s/vens" % eid).json()
                row = p["vens"][0]
                eq((row["receivedModificationNumber"], row["modificationNumber"], row["opt"],
                    row["responseCode"]), (0, 0, "optIn", 200), "received and answered")
                eq(api.call("GET", API + "/events/" + eid).json()["participation"],
                   {"received": 1, "optIn": 1, "optOut": 0, "noAnswer": 0}, "the event's counts")
                lines = api.call("GET", API + "/events/%s/vens?format=csv" % eid).body.decode().split("\r\n")
                check(lines[1].startswith(ven.ven_id + ",0,optIn,200,") and lines[1].endswith(",0,createdEvent"),
                      "CSV row with the received modificationNumber, then the opt's source: %r" % lines[1])
                ven.poll("oadrResponse", "200")  # answered: nothing new until the status moves

            def standby_carries_the_transitions():
                ven, eid, lead = state["ven"], state["eid"], state["lead"]
                lead.kill()  # SIGKILL: the lease lapses, the standby takes it
                standby = [p for p in scheds if p is not lead][0]
                wait_for("the standby to lead", lambda: leader_of([standby]),
                         timeout=3 * LEASE_MS / 1000)
                # What the VEN's polls carry from now on, each distribute once.
                got = []

                def next_distribute():
                    rep = ven.poll()
                    if rep.name == "oadrDistributeEvent":
                        got.append(events_of(rep))
                        return True
                    eq(rep.name, "oadrResponse", "a poll without news")
                    return False

                for want in ("near", "active"):
                    wait_for("the event %s" % want, next_distribute, timeout=END_S + 5, every=POLL_EVERY)
                    eq(got[-1], [(eid, 0, want)], "the VEN's next distribute")
                wait_for("the event to drop out", next_distribute, timeout=END_S + 5, every=POLL_EVERY)
                eq(got[-1], [], "after its end: a distribute without it (implied cancellation)")
                ven.poll("oadrResponse", "200")
                def transitions():
                    return {k: x for k, x in st.metrics(standby).items() if "event_transitions" in k}

                def applied(mine):
                    return sum(x for k, x in mine.items() if k.startswith("vtn_scheduler_task_items_total"))

                # The end may reach the VEN first through its own cursor (en),
                # a tick before the scheduler applies it.
                mine = wait_for("the standby to apply the three transitions",
                                lambda: (lambda m: m if applied(m) >= 3 else None)(transitions()),
                                timeout=5)
                eq(applied(mine), 3, "transitions the standby applied")
                check(any(k.startswith("vtn_scheduler_task_lag_ms") for k in mine),
                      "a lag gauge for event_transitions: %r" % mine)
                eq(api.call("GET", API + "/events/" + eid).json()["modificationNumber"], 0,
                   "no status change bumped modificationNumber")

            checks.run("the VEN gets the event far", far_to_the_ven)
            checks.run("participation: received, then answered", participation_received_then_answered)
            checks.run("after a leader SIGKILL the standby sends near, active, then the end",
                       standby_carries_the_transitions)
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
