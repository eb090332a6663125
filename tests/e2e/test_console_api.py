#!/usr/bin/env python3
"""What the operator console reads, through redis + one gateway + two
workers + the scheduler: GET /api/v1/health shows the gateway, both
workers and the scheduler leader with their heartbeats, Redis' memory and
the fleet's totals; a stopped worker reads alive: false; a VEN's lastPoll
and online follow its polls (poll frequency 1 s: online within two
intervals, offline after); the fleet list's filters q, program, group and
state, alone and combined, over cursor pages that may be short; bad query
parameters get 400 naming the parameter."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Api, Checks, Stack, Validator, check, eq, install_signal_handlers, parse_args, wait_for  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

API = "/api/v1"
POLL_FREQ_MS = 1000


def health(api):
    r = api.call("GET", API + "/health")
    eq(r.status, 200, "GET /health (%r)" % r)
    return r.json()


def procs_of(h, role):
    return [p for p in h["processes"] if p["role"] == role]


def list_all(api, query, limit=2):
    """Every VEN the filtered list gives, following next_cursor to its end;
    also the number of pages."""
    out, cursor, pages = [], None, 0
    while True:
        q = "%s&limit=%d" % (query, limit) if query else "limit=%d" % limit
        if cursor:
            q += "&cursor=" + cursor
        r = api.call("GET", API + "/vens?" + q)
        eq(r.status, 200, "GET /vens?%s (%r)" % (q, r))
        j = r.json()
        check(len(j["vens"]) <= limit, "a page longer than limit: %r" % j)
        out += [v["venID"] for v in j["vens"]]
        pages += 1
        check(pages < 200, "paging does not end")
        cursor = j["next_cursor"]
        if cursor is None:
            return out, pages


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "scheduler", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.console_api")
    wenv = {"VTN_POLL_FREQ": "%dms" % POLL_FREQ_MS}
    with checks.processes():
        with Stack(cfg, name="e2e-console-api") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            gw = st.start_basic(workers=2, worker_env=wenv)
            st.wait_live_workers(gw, 2)
            sched = st.start_scheduler(env={"VTN_SCHEDULER_TICK": "100ms", "VTN_SCHEDULER_LEASE": "1s"})
            api = Api("127.0.0.1", gw.ports["api"], st.api_token)

            def health_shows_processes():
                def complete():
                    h = health(api)
                    ok = (len(procs_of(h, "gateway")) == 1 and len(procs_of(h, "worker")) == 2 and
                          len(procs_of(h, "scheduler")) == 1 and h["scheduler"]["leader"] is not None)
                    return h if ok else None
                h = wait_for("a gateway, two workers, a scheduler leader in /health", complete, timeout=20)
                for p in h["processes"]:
                    eq(p["alive"], True, "alive of %s %s" % (p["role"], p["id"]))
                    check(p["pid"] > 0 and p["host"] and p["version"], "identity of %r" % p)
                    check(p["startedAt"].endswith("Z") and p["lastSeen"].endswith("Z"), "times of %r" % p)
                    for k in ("requestsPerSecond", "pollsPerSecond", "errorsPerSecond", "inFlight"):
                        check(isinstance(p[k], (int, float)), "%s of %r" % (k, p))
                eq(procs_of(h, "gateway")[0]["id"], gw.zmq_endpoint, "the gateway's id")
                eq(sorted(p["id"] for p in procs_of(h, "worker")), sorted(w.name for w in st.workers),
                   "the workers' ids")
                eq(h["scheduler"]["leader"], procs_of(h, "scheduler")[0]["id"], "the leader is the scheduler")
                check(h["scheduler"]["term"] > 0, "a term: %r" % h["scheduler"])
                eq(h["redis"]["role"], "master", "redis role")
                check(h["redis"]["usedMemory"] > 0 and h["redis"]["keys"] > 0, "redis figures %r" % h["redis"])
                eq(h["redis"]["connectedReplicas"], 0, "replicas")
                check(h["generatedAt"].endswith("Z"), "generatedAt %r" % h["generatedAt"])

            def last_poll_and_online():
                ven = Ven("127.0.0.1", gw.ports["oadr"], v, name="console-ven-1")
                ven.register()
                vid = ven.ven_id

                def get():
                    r = api.call("GET", "%s/vens/%s" % (API, vid))
                    eq(r.status, 200, "GET the VEN (%r)" % r)
                    return r.json()
                # the registration's own poll (its METADATA report) counts: wait it out
                wait_for("the VEN offline", lambda: get()["online"] is False, timeout=10)
                j = get()
                eq(j["pollFreqSeconds"], POLL_FREQ_MS / 1000, "the poll frequency it was given")
                ven.poll("oadrResponse", "200")
                j = wait_for("online after a poll", lambda: (lambda j: j if j["online"] else None)(get()),
                             timeout=5)
                check(j["lastPoll"] and j["lastPoll"].endswith("Z"), "lastPoll %r" % j["lastPoll"])
                eq(j["queued"], 0, "queued")
                eq(j["reportsOverdue"], 0, "reportsOverdue")
                before = health(api)["totals"]
                eq(before["vensOnline"], 1, "vensOnline while it polls")
                # the list says the same
                r = api.call("GET", API + "/vens?state=online").json()
                eq([x["venID"] for x in r["vens"]], [vid], "state=online")
                eq(r["vens"][0]["lastPoll"], j["lastPoll"], "lastPoll in the list")
                # two intervals without a poll: offline
                wait_for("offline two intervals after its last poll", lambda: get()["online"] is False,
                         timeout=10)
                eq(health(api)["totals"]["vensOnline"], 0, "vensOnline after it stopped")
                r = api.call("GET", API + "/vens?state=offline").json()
                check(vid in [x["venID"] for x in r["vens"]], "state=offline lists it: %r" % r)
                # and online again with its next poll, lastPoll moved on
                ven.poll("oadrResponse", "200")
                j2 = wait_for("online again", lambda: (lambda j: j if j["online"] else None)(get()), timeout=5)
                check(j2["lastPoll"] > j["lastPoll"], "lastPoll moved: %r -> %r" % (j["lastPoll"], j2["lastPoll"]))
                ven.close()

            def filters():
                # a fleet written straight into Redis: what the filters read
                now = int(time.time() * 1000)
                fleet = {
                    # venID: (name, fields, groups, programs)
                    "ven-f01": ("Meter North 1", {"r": "reg-1", "lp": "%d 600000" % now}, ["g1"], ["prgA"]),
                    "ven-f02": ("meter north 2", {"r": "reg-2"}, ["g1"], []),
                    "ven-f03": ("Pump South", {"pv": "1"}, ["g2"], ["prgA"]),
                    "ven-f04": ("pump west", {"r": "reg-4", "lp": "%d 600000" % now,
                                              "pu": "%d 5 connect refused" % now}, ["g1", "g2"], ["prgA"]),
                    "ven-f05": ("Tank", {"r": "reg-5", "lp": "%d 600000" % (now - 3600000)}, [], ["prgA"]),
                    "ven-f06": ("NORTHERN tank", {"pv": "1"}, ["g1"], []),
                }
                with st.redis() as rd:
                    for vid, (name, fields, groups, programs) in fleet.items():
                        kv = ["n", name, "ct", str(now)] + [x for k, val in fields.items() for x in (k, str(val))]
                        rd.cmd("HSET", "ven:{%s}" % vid, *kv)
                        rd.cmd("ZADD", "vtn:vens", 0, vid)
                        for g in groups:
                            rd.cmd("SADD", "ventargets:{%s}" % vid, "g:" + g)
                            rd.cmd("SADD", "vtn:group:%s:vens" % g, vid)
                        for p in programs:
                            rd.cmd("SADD", "ventargets:{%s}" % vid, "p:" + p)
                            rd.cmd("ZADD", "vtn:program:%s:vens" % p, 0, vid)
                    # ven-f05 has an overdue report request, ven-f01 an active one
                    rd.cmd("HSET", "venrr:{ven-f05}", "rr-1", '{"state":"overdue","reportName":"x"}')
                    rd.cmd("HSET", "venrr:{ven-f01}", "rr-2", '{"state":"active","reportName":"x"}')
                    rd.cmd("ZADD", "vtn:reports:overdue", now - 1000, "ven-f05|rr-1")
                    rd.cmd("RPUSH", "venq:{ven-f04}", "R|req-1")
                    rd.cmd("SET", "vtn:venname:Tank", "ven-f05")
                    # a dangling member: listed, no record
                    rd.cmd("ZADD", "vtn:vens", 0, "ven-f00")
                ours = lambda ids: [i for i in ids if i.startswith("ven-f")]  # noqa: E731
                cases = [
                    ("", ["ven-f01", "ven-f02", "ven-f03", "ven-f04", "ven-f05", "ven-f06"]),
                    ("q=NORTH", ["ven-f01", "ven-f02", "ven-f06"]),
                    ("q=ven-f0", ["ven-f01", "ven-f02", "ven-f03", "ven-f04", "ven-f05", "ven-f06"]),
                    ("q=F03", ["ven-f03"]),
                    ("q=pump+w", ["ven-f04"]),
                    ("q=nothing-like-it", []),
                    ("program=prgA", ["ven-f01", "ven-f03", "ven-f04", "ven-f05"]),
                    ("program=prgZ", []),
                    ("group=g1", ["ven-f01", "ven-f02", "ven-f04", "ven-f06"]),
                    ("group=g2", ["ven-f03", "ven-f04"]),
                    ("state=provisioned", ["ven-f03", "ven-f06"]),
                    ("state=registered", ["ven-f01", "ven-f02", "ven-f04", "ven-f05"]),
                    ("state=online", ["ven-f01", "ven-f04"]),
                    ("state=offline", ["ven-f02", "ven-f05"]),
                    ("state=overdue", ["ven-f05"]),
                    ("state=push_undeliverable", ["ven-f04"]),
                    ("q=north&group=g1", ["ven-f01", "ven-f02", "ven-f06"]),
                    ("program=prgA&group=g1", ["ven-f01", "ven-f04"]),
                    ("program=prgA&group=g2&state=online", ["ven-f04"]),
                    ("group=g1&state=provisioned", ["ven-f06"]),
                    ("q=tank&state=registered", ["ven-f05"]),
                    ("program=prgA&state=overdue", ["ven-f05"]),
                    ("group=g1&state=overdue", []),
                    ("q=pump&program=prgA&group=g1&state=push_undeliverable", ["ven-f04"]),
                ]
                for query, want in cases:
                    for limit in (1, 2, 100):
                        got, _ = list_all(api, query, limit)
                        eq(ours(got), want, "GET /vens?%s with limit=%d" % (query, limit))
                # what each VEN carries
                j = api.call("GET", API + "/vens?q=ven-f0&limit=100").json()
                by = {x["venID"]: x for x in j["vens"]}
                eq(by["ven-f05"]["reportsOverdue"], 1, "reportsOverdue of ven-f05")
                eq(by["ven-f01"]["reportsOverdue"], 0, "reportsOverdue of ven-f01")
                eq(by["ven-f04"]["queued"], 1, "queued of ven-f04")
                check(by["ven-f04"]["pushUndelivered"], "pushUndelivered of ven-f04")
                check(not by["ven-f01"]["pushUndelivered"], "pushUndelivered of ven-f01")
                eq(by["ven-f01"]["online"], True, "online of ven-f01")
                eq(by["ven-f05"]["online"], False, "online of ven-f05 (an hour ago)")
                eq(by["ven-f03"]["lastPoll"], None, "lastPoll of a VEN that never polled")
                check("ven-f00" not in by, "a dangling member is not listed")
                r = api.call("GET", API + "/vens/ven-f05").json()
                eq(r["reportsOverdue"], 1, "reportsOverdue in the VEN's own record")
                # the name filter keeps working, and goes with the others
                eq(ours(list_all(api, "name=Tank", 5)[0]), ["ven-f05"], "name=Tank")
                eq(ours(list_all(api, "name=Tank&state=provisioned", 5)[0]), [], "name with state")

            def short_pages():
                # a filter that matches one VEN in 3,000: pages stop at the scan
                # bound, short or empty, with a cursor until the end
                with st.redis() as rd:
                    rd.pipeline([["ZADD", "vtn:vens", 0, "ven-s%05d" % i] for i in range(3000)] +
                                [["HSET", "ven:{ven-s%05d}" % i, "n", "scan %d" % i, "ct", "1"]
                                 for i in range(3000)])
                    rd.cmd("HSET", "ven:{ven-s02999}", "n", "the needle")
                    rd.cmd("SADD", "vtn:group:gs:vens", "ven-s00001", "ven-s02999")
                    rd.cmd("SADD", "ventargets:{ven-s00001}", "g:gs")
                    rd.cmd("SADD", "ventargets:{ven-s02999}", "g:gs")
                got, pages = list_all(api, "q=needle", 100)
                eq(got, ["ven-s02999"], "q=needle over 3,000 VENs")
                check(pages >= 2, "the scan bound cut the walk into pages (%d)" % pages)
                for limit in (1, 100):
                    got, pages = list_all(api, "group=gs", limit)
                    eq(got, ["ven-s00001", "ven-s02999"], "group=gs over 3,000 VENs, limit=%d" % limit)
                    check(pages >= 2, "the scan bound cut the walk into pages (%d)" % pages)
                got, _ = list_all(api, "group=gs&q=needle", 100)
                eq(got, ["ven-s02999"], "group=gs&q=needle")
                # 600 overdue VENs read three commands each (record, membership, requests)
                now = int(time.time() * 1000)
                with st.redis() as rd:
                    rd.pipeline([["HSET", "venrr:{ven-s%05d}" % i, "rr-o", '{"state":"overdue"}']
                                 for i in range(1, 1200, 2)] +
                                [["ZADD", "vtn:reports:overdue", now, "ven-s%05d|rr-o" % i]
                                 for i in range(1, 1200, 2)])
                got, _ = list_all(api, "state=overdue&group=gs", 100)
                eq(got, ["ven-s00001"], "state=overdue&group=gs over 600 overdue VENs")
                got, _ = list_all(api, "state=overdue&q=scan+11", 1000)
                eq(got, ["ven-s00011"] + ["ven-s%05d" % i for i in range(111, 120, 2)] +
                   ["ven-s%05d" % i for i in range(1101, 1200, 2)], "state=overdue&q=scan 11")

            def bad_queries():
                for q, name in (("state=sleeping", "state"), ("group=a%20b", "group"),
                                ("program=", "program"), ("q=", "q"), ("q=a%01b", "q"), ("sort=x", "sort"),
                                ("limit=0", "limit"), ("cursor=zz", "cursor"), ("state=online&state=offline", "state"),
                                ("name=x&cursor=%s" % "76656e2d663031", "cursor")):
                    r = api.call("GET", API + "/vens?" + q)
                    eq(r.status, 400, "GET /vens?%s" % q)
                    e = r.json()["error"]
                    check(e.startswith(name + " ") or ("'%s'" % name) in e, "the error names %s: %r" % (name, e))
                r = api.call("GET", API + "/health?x=1")
                eq(r.status, 400, "a query on /health")
                r = api.call("POST", API + "/health")
                eq(r.status, 405, "POST /health")
                r = api.call("GET", API + "/health", token="Bearer wrong")
                eq(r.status, 401, "a wrong token on /health")

            def dead_worker():
                w = st.workers[-1]
                w.stop()
                st.workers.remove(w)

                def dead():
                    h = health(api)
                    mine = [p for p in procs_of(h, "worker") if p["id"] == w.name]
                    return h if mine and mine[0]["alive"] is False else None
                h = wait_for("the stopped worker reads alive: false", dead, timeout=20)
                others = [p for p in h["processes"] if p["id"] != w.name]
                check(all(p["alive"] for p in others), "the others stay alive: %r" % others)

            checks.run("health shows gateway, workers, scheduler leader", health_shows_processes)
            checks.run("lastPoll and online follow polls", last_poll_and_online)
            checks.run("list filters and their combinations", filters)
            checks.run("a filtered walk in short pages", short_pages)
            checks.run("bad query parameters: 400 naming them", bad_queries)
            checks.run("a stopped worker reads alive: false", dead_worker)
            api.close()
            del sched
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
