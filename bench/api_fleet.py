#!/usr/bin/env python3
"""The fleet list at scale (docs/bench.md, "The fleet list"): starts
redis-server, one vtn-gateway and one vtn-worker on free loopback ports,
writes N VENs straight into Redis (records as registrations leave them,
with lastPoll, groups, programs, a few overdue report requests and push
give-ups), then times GET /api/v1/vens pages of 100 with and without
filters: wall time per request (median and worst of R requests), and the
worker's and Redis' CPU time per request read from /proc. Stops everything
it started.

    bench/api_fleet.py [--vens N] [--requests R] [--build-dir DIR]
"""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))

from vtntest import Api, Stack, parse_args  # noqa: E402

PAGE = 100


def cpu_s(pid):
    """utime + stime of a process, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def fill(st, n):
    now = int(time.time() * 1000)
    batch = []
    with st.redis() as r:
        def flush():
            r.pipeline(batch)
            batch.clear()
        for i in range(n):
            vid = "ven-%020x" % (0xbe0000 + i)
            fields = ["n", "site-%06d meter" % i, "ct", str(now), "r", "reg-%020x" % i, "rt", str(now),
                      "pl", "1", "ro", "0", "xs", "0", "ev", "7", "eh", "0123456789abcdef",
                      "en", "0"]
            if i % 10 != 0:  # one VEN in ten offline: polled an hour ago
                fields += ["lp", "%d 600000" % (now - (i % 5) * 1000)]
            else:
                fields += ["lp", "%d 600000" % (now - 3600000)]
            if i % 1000 == 1:
                fields += ["pu", "%d 5 connect refused" % now]
            batch.append(["HSET", "ven:{%s}" % vid] + fields)
            batch.append(["ZADD", "vtn:vens", "0", vid])
            g = "g%d" % (i % 20)  # 20 groups of 5,000
            p = "prg%d" % (i % 4)  # 4 programs of 25,000
            batch.append(["SADD", "ventargets:{%s}" % vid, "g:" + g, "p:" + p])
            batch.append(["SADD", "vtn:group:%s:vens" % g, vid])
            batch.append(["ZADD", "vtn:program:%s:vens" % p, "0", vid])
            batch.append(["HSET", "venrr:{%s}" % vid, "rr-%d" % i,
                          '{"state":"%s","reportName":"TELEMETRY_USAGE","granularity":"PT1M"}'
                          % ("overdue" if i % 500 == 3 else "active")])
            if i % 500 == 3:
                batch.append(["ZADD", "vtn:reports:overdue", str(now - 1000), "%s|rr-%d" % (vid, i)])
            if len(batch) >= 6000:
                flush()
        flush()
        return r.cmd("DBSIZE")


def main():
    def extra(ap):
        ap.add_argument("--vens", type=int, default=100000)
        ap.add_argument("--requests", type=int, default=20)
    cfg, a = parse_args(__doc__.split("\n")[0], extra=extra)
    cfg.require("gateway", "worker", "redis_server")
    with Stack(cfg, name="bench-api-fleet") as st:
        gw = st.start_basic(workers=1)
        t0 = time.monotonic()
        keys = fill(st, a.vens)
        print("filled %d VENs (%d keys) in %.1f s" % (a.vens, keys, time.monotonic() - t0))
        api = Api("127.0.0.1", gw.ports["api"], st.api_token)
        wpid = st.workers[0].pid
        rpid = next(p.pid for p in st.procs if "redis" in p.name)
        queries = ["", "q=site-0500", "q=meter", "group=g3", "program=prg1", "state=online",
                   "state=offline", "state=overdue", "state=push_undeliverable",
                   "program=prg1&group=g5&state=online", "q=nothing-matches"]
        print("%-40s %8s %8s %10s %10s %6s" % ("query (limit=100)", "p50 ms", "max ms", "worker ms",
                                               "redis ms", "VENs"))
        for qs in queries:
            path = "/api/v1/vens?limit=%d%s" % (PAGE, "&" + qs if qs else "")
            api.call("GET", path)  # warm
            times, n = [], 0
            w0, r0 = cpu_s(wpid), cpu_s(rpid)
            for _ in range(a.requests):
                t = time.monotonic()
                r = api.call("GET", path)
                times.append((time.monotonic() - t) * 1000)
                assert r.status == 200, r
                n = len(r.json()["vens"])
            w1, r1 = cpu_s(wpid), cpu_s(rpid)
            print("%-40s %8.1f %8.1f %10.2f %10.2f %6d" % (
                qs or "(none)", statistics.median(times), max(times),
                (w1 - w0) * 1000 / a.requests, (r1 - r0) * 1000 / a.requests, n))
        api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
