#!/usr/bin/env python3
"""Programs and events through the management API (redis + one gateway +
two workers): create a program, refuse a second one with its marketContext;
create events, read them back with the 2.0b field names, list them with
each filter and with paging; modify (modificationNumber and
modificationReason), cancel (idempotent), a modify of a cancelled event is
refused; a change is one INCR of vtn:events:ver whatever it targets; every
invalid body is a 400 whose message names the field, and changes nothing.
Then distribution to a registered pull VEN: its poll gets oadrDistributeEvent
(official schema) when its set changed (new event, modify, cancel, an event
that ended), active events first, and oadrResponse when the change was
another VEN's; oadrRequestEvent answers the set with replyLimit. Groups:
create, replace members, delete; an event for a group reaches its members
and drops out for a VEN that leaves it. The scheduler removes ended events
after the retention, also after its leader is SIGKILLed."""

import datetime
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Api, Checks, Stack, Validator, check, eq, install_signal_handlers, parse_args  # noqa: E402
from vtntest import keys, oadr  # noqa: E402
from vtntest.checks import wait_for  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

API = "/api/v1"
MC = "http://utility.example/programs/cpp"


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(start, **over):
    body = {
        "marketContext": MC,
        "priority": 1,
        "responseRequired": "always",
        "vtnComment": "peak day",
        "dtstart": iso(start),
        "duration": "PT1H",
        "notification": "PT30M",
        "signals": [{
            "signalName": "SIMPLE",
            "signalType": "level",
            "signalID": "sig-1",
            "currentValue": 0,
            "intervals": [{"duration": "PT30M", "value": 1}, {"uid": "1", "duration": "PT30M", "value": 2}],
        }],
        "targets": {"venID": ["ven-a", "ven-b"], "groupID": ["north"]},
    }
    body.update(over)
    return body


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.events")
    with checks.processes():
        with Stack(cfg, name="e2e-events") as st:
            gw = st.start_basic(workers=2)
            st.wait_live_workers(gw, 2)
            api = Api("127.0.0.1", gw.ports["api"], st.api_token)
            v = Validator(cfg.schema, workdir=st.tmpdir)
            redis = st.redis()
            now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
            made = {}

            def programs():
                r = api.call("POST", API + "/programs", {"name": "Critical peak", "marketContext": MC})
                eq(r.status, 201, "create a program (%r)" % r)
                p = r.json()
                eq(p["marketContext"], MC, "marketContext")
                eq(p["name"], "Critical peak", "name")
                made["program"] = p["programID"]
                eq(r.header("Location"), API + "/programs/" + p["programID"], "Location")
                r = api.call("POST", API + "/programs", {"name": "again", "marketContext": MC})
                eq(r.status, 409, "a second program with the same marketContext (%r)" % r)
                check(p["programID"] in r.json()["error"], "409 names the owner: %r" % r.json())
                r = api.call("POST", API + "/programs", {"name": "no uri", "marketContext": "cpp"})
                eq(r.status, 400, "marketContext without a scheme")
                check("marketContext" in r.json()["error"], r.json())
                r = api.call("GET", API + "/programs/" + p["programID"])
                eq(r.status, 200, "GET the program")
                eq(r.json(), p, "GET returns what POST did")
                eq(api.call("GET", API + "/programs/prg-none").status, 404, "unknown program")
                r = api.call("GET", API + "/programs?limit=10")
                eq([x["programID"] for x in r.json()["programs"]], [p["programID"]], "program list")
                eq(api.call("GET", API + "/programs?name=x").status, 400, "unknown list parameter")

            def create_and_get():
                ver0 = int(redis.cmd("GET", keys.build("VTN_KEY_EVENTSVER")) or 0)
                r = api.call("POST", API + "/events", event_body(now + datetime.timedelta(hours=2)))
                eq(r.status, 201, "create an event (%r)" % r)
                e = r.json()
                made["far"] = e["eventID"]
                eq(e["modificationNumber"], 0, "modificationNumber of a new event")
                eq(e["eventStatus"], "far", "status two hours ahead with 30 min notification")
                eq(e["programID"], made["program"], "programID")
                eq(e["testEvent"], False, "testEvent default")
                eq(e["priority"], 1, "priority")
                eq(e["signals"][0]["intervals"][1]["uid"], "1", "interval uid kept")
                eq(e["targets"]["groupID"], ["north"], "targets")
                eq(int(redis.cmd("GET", keys.build("VTN_KEY_EVENTSVER"))), ver0 + 1,
                   "one version bump per create")
                r = api.call("GET", API + "/events/" + e["eventID"])
                eq(r.status, 200, "GET the event")
                eq(r.json(), e, "GET returns what POST did")
                # near (inside the notification window), active, completed, test event
                r = api.call("POST", API + "/events", event_body(now + datetime.timedelta(minutes=10),
                                                                 targets={"partyID": ["p-1"]}))
                eq(r.json().get("eventStatus"), "near", "status 10 min ahead with 30 min notification")
                made["near"] = r.json()["eventID"]
                r = api.call("POST", API + "/events", event_body(now - datetime.timedelta(minutes=10),
                                                                 testEvent=True))
                eq(r.json().get("eventStatus"), "active", "status of a running event")
                eq(r.json().get("testEvent"), True, "testEvent")
                made["active"] = r.json()["eventID"]
                r = api.call("POST", API + "/events", event_body(now - datetime.timedelta(hours=3),
                                                                 targets={"resourceID": ["r-1"]}))
                eq(r.json().get("eventStatus"), "completed", "status of an event that ended")
                made["completed"] = r.json()["eventID"]
                eq(api.call("GET", API + "/events/evt-none").status, 404, "unknown event")

            def modify_and_cancel():
                eid = made["far"]
                body = event_body(now + datetime.timedelta(hours=3), priority=2,
                                  modificationReason="moved by an hour")
                r = api.call("PUT", API + "/events/" + eid, body)
                eq(r.status, 200, "modify (%r)" % r)
                e = r.json()
                eq(e["modificationNumber"], 1, "modify bumps modificationNumber")
                eq(e["modificationReason"], "moved by an hour", "modificationReason")
                eq(e["priority"], 2, "modified priority")
                eq(e["dtstart"], iso(now + datetime.timedelta(hours=3)), "modified dtstart")
                r = api.call("POST", API + "/events/%s/cancel" % eid, {"modificationReason": "cool day"})
                eq(r.status, 200, "cancel (%r)" % r)
                eq(r.json()["eventStatus"], "cancelled", "status after cancel")
                eq(r.json()["modificationNumber"], 2, "cancel bumps modificationNumber")
                ver = int(redis.cmd("GET", keys.build("VTN_KEY_EVENTSVER")))
                r = api.call("POST", API + "/events/%s/cancel" % eid)
                eq(r.status, 200, "cancel again")
                eq(r.json()["modificationNumber"], 2, "a second cancel changes nothing")
                eq(int(redis.cmd("GET", keys.build("VTN_KEY_EVENTSVER"))), ver, "nor the version")
                r = api.call("PUT", API + "/events/" + eid, body)
                eq(r.status, 409, "modify a cancelled event")
                eq(api.call("PUT", API + "/events/evt-none", body).status, 404, "modify unknown")
                eq(api.call("POST", API + "/events/evt-none/cancel").status, 404, "cancel unknown")

            def listing():
                def ids(query):
                    r = api.call("GET", API + "/events" + query)
                    eq(r.status, 200, "list %s (%r)" % (query, r))
                    return sorted(e["eventID"] for e in r.json()["events"])

                every = sorted(made[k] for k in ("far", "near", "active", "completed"))
                eq(ids(""), every, "all events")
                eq(ids("?status=cancelled"), [made["far"]], "status filter")
                eq(ids("?status=near&status=active"), sorted([made["near"], made["active"]]),
                   "two statuses")
                eq(ids("?target=p-1"), [made["near"]], "target filter (partyID)")
                eq(ids("?target=north"), sorted([made["far"], made["active"]]), "target filter (groupID)")
                eq(ids("?programID=" + made["program"]), every, "program filter")
                eq(ids("?programID=prg-other"), [], "another program")
                window = "?from=%s&to=%s" % (iso(now - datetime.timedelta(minutes=5)),
                                             iso(now + datetime.timedelta(minutes=15)))
                eq(ids(window), sorted([made["near"], made["active"]]), "time window")
                seen, cursor = [], None
                for _ in range(10):
                    r = api.call("GET", API + "/events?limit=3" + ("&cursor=" + cursor if cursor else ""))
                    seen += [e["eventID"] for e in r.json()["events"]]
                    cursor = r.json()["next_cursor"]
                    if cursor is None:
                        break
                eq(sorted(seen), every, "pages of 3")
                for q, field in (("?status=soon", "status"), ("?from=yesterday", "from"),
                                 ("?limit=0", "limit"), ("?colour=red", "colour")):
                    r = api.call("GET", API + "/events" + q)
                    eq(r.status, 400, "list %s" % q)
                    check(field in r.json()["error"], "%s: %r" % (q, r.json()))

            def invalid():
                before = redis.cmd("ZCARD", keys.build("VTN_KEY_EVENTS"))
                start = now + datetime.timedelta(hours=5)
                sig = event_body(start)["signals"][0]
                cases = [
                    ({"marketContext": "http://nowhere.example/x"}, "marketContext"),
                    ({"dtstart": "tomorrow"}, "dtstart"),
                    ({"duration": "P1M"}, "duration"),
                    ({"priority": -1}, "priority"),
                    ({"responseRequired": "sometimes"}, "responseRequired"),
                    ({"signals": []}, "signals"),
                    ({"signals": [dict(sig, intervals=[{"duration": "PT30M", "value": 4},
                                                       {"duration": "PT30M", "value": 1}])]},
                     "signals[0].intervals[0].value"),
                    ({"signals": [dict(sig, intervals=[{"duration": "PT30M", "value": 1}])]},
                     "signals[0].intervals"),
                    ({"signals": [dict(sig, signalType="price")]}, "signals[0].signalType"),
                    # Empty targets make a program-wide event; refused when the
                    # program has no enrolled VEN and that is asked to be an error.
                    ({"targets": {}, "targetsMustMatch": True}, "has no enrolled VEN"),
                    ({"targets": {"groupID": ["nobody-here"]}, "targetsMustMatch": True},
                     'targets.groupID[0] "nobody-here" matches no VEN'),
                    ({"targets": {"venID": ["bad id"]}}, "targets.venID[0]"),
                    ({"rampUp": "soon"}, "rampUp"),
                    ({"colour": "red"}, "colour"),
                ]
                for over, field in cases:
                    r = api.call("POST", API + "/events", event_body(start, **over))
                    eq(r.status, 400, "invalid %r (%r)" % (over, r))
                    check(field in r.json()["error"], "message names %s: %r" % (field, r.json()))
                eq(redis.cmd("ZCARD", keys.build("VTN_KEY_EVENTS")), before, "nothing created")
                r = api.call("PUT", API + "/events/" + made["active"], event_body(start, duration="PT2H"))
                eq(r.status, 400, "modify with intervals that no longer add up")
                eq(api.call("GET", API + "/events/" + made["active"]).json()["modificationNumber"], 0,
                   "a refused modify changes nothing")

            def events_of(rep):
                """[(eventID, modificationNumber, eventStatus, responseRequired)] of a distribute."""
                out = []
                for e in oadr.find_all(rep.payload, "oadrDistributeEvent/oadrEvent"):
                    out.append((oadr.text_at(e, "oadrEvent/eiEvent/eventDescriptor/eventID"),
                                int(oadr.text_at(e, "oadrEvent/eiEvent/eventDescriptor/modificationNumber")),
                                oadr.text_at(e, "oadrEvent/eiEvent/eventDescriptor/eventStatus"),
                                oadr.text_at(e, "oadrEvent/oadrResponseRequired")))
                return out

            def request_event(ven, limit=None):
                body = oadr.payload_xml(
                    '<oadr:oadrRequestEvent ei:schemaVersion="2.0b"><pyld:eiRequestEvent>'
                    '<pyld:requestID>rq-events-1</pyld:requestID><ei:venID>%s</ei:venID>%s'
                    '</pyld:eiRequestEvent></oadr:oadrRequestEvent>'
                    % (ven.ven_id, "<pyld:replyLimit>%d</pyld:replyLimit>" % limit if limit else ""))
                return ven.send("EiEvent", body, "oadrDistributeEvent", code=None)

            def created_event(ven, answers):
                """oadrCreatedEvent with one eventResponse per (eventID, modificationNumber, opt)."""
                rs = "".join(
                    '<ei:eventResponse><ei:responseCode>200</ei:responseCode>'
                    '<pyld:requestID>rq-dist</pyld:requestID><ei:qualifiedEventID>'
                    '<ei:eventID>%s</ei:eventID><ei:modificationNumber>%d</ei:modificationNumber>'
                    '</ei:qualifiedEventID><ei:optType>%s</ei:optType></ei:eventResponse>' % a
                    for a in answers)
                body = oadr.payload_xml(
                    '<oadr:oadrCreatedEvent ei:schemaVersion="2.0b"><pyld:eiCreatedEvent>'
                    '<ei:eiResponse><ei:responseCode>200</ei:responseCode><pyld:requestID/></ei:eiResponse>'
                    '<ei:eventResponses>%s</ei:eventResponses><ei:venID>%s</ei:venID>'
                    '</pyld:eiCreatedEvent></oadr:oadrCreatedEvent>' % (rs, ven.ven_id))
                return ven.send("EiEvent", body, "oadrResponse", code=None)

            def answer(ven, rep):
                """What a VEN does with a distribute: opt in to each event that needs an answer."""
                need = [(e[0], e[1], "optIn") for e in events_of(rep) if e[3] == "always"]
                if need:
                    eq(created_event(ven, need).code(), "200", "the VEN's answers")

            def distribution():
                ven = Ven("127.0.0.1", gw.ports["oadr"], v, name="events-ven-1")
                ven.register()
                ven.poll("oadrResponse", "200")  # the events so far target other VENs
                mine = {"venID": [ven.ven_id]}
                r = api.call("POST", API + "/events", event_body(now + datetime.timedelta(hours=4),
                                                                 priority=1, targets=mine,
                                                                 responseRequired="never"))
                far = r.json()["eventID"]
                r = api.call("POST", API + "/events", event_body(now - datetime.timedelta(minutes=5),
                                                                 priority=2, targets=mine))
                active = r.json()["eventID"]
                rep = ven.poll("oadrDistributeEvent", None)
                check(rep.get("requestID") and rep.get("vtnID"), "requestID and vtnID: %s" % rep)
                eq(events_of(rep), [(active, 0, "active", "always"), (far, 0, "far", "never")],
                   "the VEN's events, active first")
                # responseRequired=always: sent again on every poll until answered
                eq(events_of(ven.poll("oadrDistributeEvent", None)), events_of(rep), "sent again")
                answer(ven, rep)
                ven.poll("oadrResponse", "200")  # answered, nothing new
                r = api.call("PUT", API + "/events/" + far,
                             event_body(now + datetime.timedelta(hours=5), priority=1, targets=mine))
                eq(r.status, 200, "modify (%r)" % r)
                rep = ven.poll("oadrDistributeEvent", None)
                eq(events_of(rep), [(active, 0, "active", "always"), (far, 1, "far", "always")],
                   "after modify")
                answer(ven, rep)
                api.call("POST", API + "/events/%s/cancel" % far)
                rep = ven.poll("oadrDistributeEvent", None)
                eq(events_of(rep), [(active, 0, "active", "always"), (far, 2, "cancelled", "always")],
                   "after cancel")
                answer(ven, rep)
                ven.poll("oadrResponse", "200")
                # another VEN's event: the version moves, this VEN's set does not
                api.call("POST", API + "/events", event_body(now + datetime.timedelta(hours=1),
                                                             targets={"venID": ["ven-somebody"]}))
                ven.poll("oadrResponse", "200")
                eq(events_of(request_event(ven)), [(active, 0, "active", "always"),
                                                   (far, 2, "cancelled", "always")], "oadrRequestEvent")
                rep = request_event(ven, limit=1)
                eq(rep.get("requestID"), "rq-events-1", "the VEN's requestID")
                eq(events_of(rep), [(active, 0, "active", "always")], "replyLimit 1")
                # an event that ends: it drops out of the VEN's next set (implied cancellation)
                soon = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
                r = api.call("POST", API + "/events", event_body(soon - datetime.timedelta(seconds=3597),
                                                                 targets=mine))
                ending = r.json()["eventID"]
                rep = ven.poll("oadrDistributeEvent", None)
                eq([e[0] for e in events_of(rep)], [ending, active, far],
                   "with the event about to end (priority 1 first)")
                answer(ven, rep)

                def dropped():
                    rep = ven.poll()
                    return rep.name == "oadrDistributeEvent" and rep

                rep = wait_for("the ended event to drop out", dropped, timeout=20, every=0.5)
                eq([e[0] for e in events_of(rep)], [active, far], "after the event ended")
                ven.poll("oadrResponse", "200")
                made["ven"], made["mine"] = ven.ven_id, active

                # oadrCreatedEvent: opt in (again), the profile's error codes, participation
                eq(created_event(ven, [(active, 0, "optIn")]).code(), "200", "opt in")
                rep = created_event(ven, [(far, 1, "optOut")])
                eq(rep.code(), "450", "an answer to an older modificationNumber")
                check("modificationNumber 1" in rep.get("eiResponse/responseDescription"), rep)
                eq(created_event(ven, [("evt-nope", 0, "optIn")]).code(), "452", "unknown eventID")
                r = api.call("GET", API + "/events/%s/vens" % active)
                eq(r.status, 200, "participation (%r)" % r)
                p = r.json()
                eq(p["counts"], {"received": 1, "optIn": 1, "optOut": 0, "none": 0}, "counts")
                eq([(x["venID"], x["opt"], x["modificationNumber"], x["receivedModificationNumber"])
                    for x in p["vens"]], [(ven.ven_id, "optIn", 0, 0)], "the VEN's answer")
                eq(api.call("GET", API + "/events/" + active).json()["participation"],
                   {"received": 1, "optIn": 1, "optOut": 0, "noAnswer": 0}, "counts in the event")
                eq(created_event(ven, [(active, 0, "optOut")]).code(), "200", "changes its mind")
                eq(api.call("GET", API + "/events/" + active).json()["participation"],
                   {"received": 1, "optIn": 0, "optOut": 1, "noAnswer": 0}, "moved to optOut")
                r = api.call("GET", API + "/events/%s/vens?format=csv" % active)
                eq(r.status, 200, "CSV")
                check(r.header("Content-Type").startswith("text/csv"), r.header("Content-Type"))
                lines = r.body.decode().strip().split("\r\n")
                eq(lines[0], "venID,modificationNumber,opt,responseCode,respondedDateTime,"
                   "receivedModificationNumber,optSource", "CSV header")
                check(lines[1].startswith("%s,0,optOut,200," % ven.ven_id), lines)
                eq(api.call("GET", API + "/events/%s/vens?format=xls" % active).status, 400, "format")
                r = api.call("GET", API + "/events/" + made["far"] + "/vens")
                eq(r.json()["counts"]["none"], 2, "targeted VENs that did not answer (ven-a, ven-b)")

            def groups():
                ven = Ven("127.0.0.1", gw.ports["oadr"], v, name="events-ven-2")
                ven.register()
                ven.poll()
                r = api.call("PUT", API + "/groups/east", {"name": "North feeder",
                                                            "venIDs": [ven.ven_id, "ven-x"]})
                eq(r.status, 201, "create a group (%r)" % r)
                eq(r.json()["venIDs"], sorted([ven.ven_id, "ven-x"]), "members")
                eq(r.header("Location"), API + "/groups/east", "Location")
                eq(api.call("GET", API + "/groups/east").json()["name"], "North feeder", "GET")
                eq([g["groupID"] for g in api.call("GET", API + "/groups").json()["groups"]],
                   ["east"], "group list")
                r = api.call("PUT", API + "/groups/south", {"venIDs": ["bad id"]})
                eq(r.status, 400, "invalid venID")
                check("venIDs[0]" in r.json()["error"], r.json())
                eq(api.call("GET", API + "/groups/south").status, 404, "nothing created")
                r = api.call("POST", API + "/events", event_body(now + datetime.timedelta(hours=6),
                                                                 targets={"groupID": ["east"]}))
                by_group = r.json()["eventID"]
                rep = ven.poll("oadrDistributeEvent", None)
                eq([e[0] for e in events_of(rep)], [by_group], "the group's event reaches its member")
                eq(oadr.text_at(rep.payload, "oadrDistributeEvent/oadrEvent/eiEvent/eiTarget/groupID"),
                   "east", "eiTarget groupID")
                r = api.call("PUT", API + "/groups/east", {"venIDs": ["ven-x"]})
                eq(r.status, 200, "replace the members (%r)" % r)
                eq(events_of(ven.poll("oadrDistributeEvent", None)), [],
                   "a VEN that left the group: the empty set, the event implicitly cancelled")
                eq(api.call("DELETE", API + "/groups/east").status, 200, "delete the group")
                eq(api.call("DELETE", API + "/groups/east").status, 404, "delete again")
                eq(redis.cmd("SMEMBERS", keys.build("VTN_KEY_VENTARGETS", "ven-x")), [],
                   "no membership left behind")

            def retention():
                """The scheduler removes ended events after the retention; a SIGKILLed
                leader's standby carries on within the lease."""
                if not cfg.scheduler:
                    print("   (no scheduler binary: skipped)")
                    return
                env = {"VTN_EVENT_RETENTION": "2s", "VTN_SCHEDULER_LEASE": "2s",
                       "VTN_SCHEDULER_TICK": "200ms"}
                scheds = [st.start_scheduler(env=env), st.start_scheduler(env=env)]
                lead = wait_for("a scheduler leader", lambda: next(
                    (p for p in scheds if st.metrics(p).get("vtn_scheduler_leader") == 1), None))
                lead.kill()  # SIGKILL: the standby takes the lease when it lapses
                standby = [p for p in scheds if p is not lead][0]
                # created after the kill: only the standby can remove it
                ended = now - datetime.timedelta(hours=2)
                r = api.call("POST", API + "/events", event_body(ended, targets={"venID": ["ven-r"]}))
                old_id = r.json()["eventID"]
                eq(r.json()["eventStatus"], "completed", "an event that ended an hour ago")
                # A VEN's answer to it in its participation shard (as evopt writes it,
                # only while the record exists): the standby leads only after the lease.
                shard = keys.event_vens(old_id, "ven-r")
                eq(redis.cmd("EVAL", "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
                             "redis.call('HSET', KEYS[2], ARGV[1], '0 0 i 200 0') return 1", "2",
                             keys.build("VTN_KEY_EVENT", old_id), shard, "ven-r"), 1,
                   "a participation field for the ended event")
                live = api.call("POST", API + "/events", event_body(now + datetime.timedelta(hours=1),
                                                                    targets={"venID": ["ven-r"]}))
                wait_for("the ended event removed", lambda: api.call(
                    "GET", API + "/events/" + old_id).status == 404, timeout=20, every=0.2)
                eq(st.metrics(standby).get("vtn_scheduler_leader"), 1, "the standby leads")
                eq(api.call("GET", API + "/events/" + live.json()["eventID"]).status, 200,
                   "an event that has not ended stays")
                eq(redis.cmd("ZSCORE", keys.build("VTN_KEY_EVENTSEND"), old_id), None,
                   "nor listed for removal")
                eq(redis.cmd("EXISTS", shard), 0, "its participation removed with it")
                lag = [v for k, v in st.metrics(standby).items()
                       if k.startswith("vtn_scheduler_task_lag_ms") and "expire_events" in k]
                check(lag, "a lag gauge for expire_events: %s" % lag)

            def create_opt(ven, opt_id, opt_type, event=None, window=None):
                """oadrCreateOpt: for one event (eventID, modificationNumber), or a schedule
                of one component (dtstart, duration) in the events' marketContext."""
                inner = ('<ei:optID>%s</ei:optID><ei:optType>%s</ei:optType>'
                         '<ei:optReason>participating</ei:optReason>' % (opt_id, opt_type))
                if window:
                    inner += ('<emix:marketContext xmlns:emix="http://docs.oasis-open.org/ns/emix/2011/06">'
                              '%s</emix:marketContext>' % MC)
                inner += '<ei:venID>%s</ei:venID>' % ven.ven_id
                if window:
                    inner += ('<xcal:vavailability xmlns:xcal="urn:ietf:params:xml:ns:icalendar-2.0">'
                              '<xcal:components><xcal:available><xcal:properties><xcal:dtstart>'
                              '<xcal:date-time>%s</xcal:date-time></xcal:dtstart><xcal:duration>'
                              '<xcal:duration>%s</xcal:duration></xcal:duration></xcal:properties>'
                              '</xcal:available></xcal:components></xcal:vavailability>' % window)
                inner += '<ei:createdDateTime>%s</ei:createdDateTime><pyld:requestID>rq-%s</pyld:requestID>' % (
                    iso(now), opt_id)
                if event:
                    inner += ('<ei:qualifiedEventID><ei:eventID>%s</ei:eventID><ei:modificationNumber>%d'
                              '</ei:modificationNumber></ei:qualifiedEventID>' % event)
                inner += '<ei:eiTarget/>'
                body = oadr.payload_xml('<oadr:oadrCreateOpt ei:schemaVersion="2.0b">%s</oadr:oadrCreateOpt>'
                                        % inner)
                return ven.send("EiOpt", body, "oadrCreatedOpt", code=None)

            def opts():
                """EiOpt through real processes: an event opt outlasts oadrCreatedEvent
                (rule 206), a schedule gives the opt of a VEN that did not answer, and
                the cancel brings the answer back."""
                a = Ven("127.0.0.1", gw.ports["oadr"], v, name="events-ven-opt-a")
                b = Ven("127.0.0.1", gw.ports["oadr"], v, name="events-ven-opt-b")
                a.register()
                b.register()
                start = now + datetime.timedelta(hours=6)
                r = api.call("POST", API + "/events",
                             event_body(start, targets={"venID": [a.ven_id, b.ven_id]}))
                eid = r.json()["eventID"]
                eq(events_of(a.poll("oadrDistributeEvent", None))[0][0], eid, "a has the event")
                rep = create_opt(a, "opt-a", "optOut", event=(eid, 0))
                eq((rep.code(), rep.get("optID")), ("200", "opt-a"), "the event opt stored (%s)" % rep)
                eq(created_event(a, [(eid, 0, "optIn")]).code(), "200", "rule 206: still 200")
                rep = create_opt(b, "sched-b", "optIn", window=(iso(start - datetime.timedelta(hours=1)), "PT4H"))
                eq(rep.code(), "200", "b's schedule stored (%s)" % rep)
                p = api.call("GET", API + "/events/%s/vens" % eid).json()
                rows = {x["venID"]: (x["opt"], x["optSource"], x["createdEventOpt"]) for x in p["vens"]}
                eq(rows, {a.ven_id: ("optOut", "eventOpt", "optIn"), b.ven_id: ("optIn", "schedule", None)},
                   "participation by precedence")
                eq(p["counts"], {"received": 1, "optIn": 1, "optOut": 1, "none": 0}, "counts")
                eq(api.call("GET", API + "/events/" + eid).json()["participation"],
                   {"received": 1, "optIn": 0, "optOut": 1, "noAnswer": 0}, "the event's own counts: no schedules")
                o = api.call("GET", API + "/vens/%s/opts" % a.ven_id).json()
                eq([(x["optID"], x["eventID"], x["optType"]) for x in o["eventOpts"]], [("opt-a", eid, "optOut")],
                   "a's opts")
                eq(o["schedules"], [], "a has no schedule")
                body = oadr.payload_xml('<oadr:oadrCancelOpt ei:schemaVersion="2.0b"><pyld:requestID>rq-c'
                                        '</pyld:requestID><ei:optID>opt-a</ei:optID><ei:venID>%s</ei:venID>'
                                        '</oadr:oadrCancelOpt>' % a.ven_id)
                a.send("EiOpt", body, "oadrCanceledOpt", "200")
                p = api.call("GET", API + "/events/%s/vens" % eid).json()
                eq([(x["opt"], x["optSource"]) for x in p["vens"] if x["venID"] == a.ven_id],
                   [("optIn", "createdEvent")], "the answer counts again")
                a.send("EiOpt", body.replace("rq-c", "rq-c2"), "oadrCanceledOpt", "452")

            checks.run("programs", programs)
            checks.run("events: create and get, status", create_and_get)
            checks.run("events: modify and cancel", modify_and_cancel)
            checks.run("events: list filters and paging", listing)
            checks.run("events: invalid bodies name the field", invalid)
            checks.run("events: distribution to a polling VEN", distribution)
            checks.run("groups: membership and distribution", groups)
            checks.run("opts: rule 206, schedules, cancel", opts)
            checks.run("scheduler: retention, across a leader SIGKILL", retention)
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
