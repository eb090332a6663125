#!/usr/bin/env python3
"""A full Redis does not take the VTN down: with Redis at maxmemory
(noeviction), a registered VEN's polls keep answering 200, the workers keep
the gateway (its advert can no longer be written) and stay ready, a new
registration gets 503 with Retry-After and a description, the management
API still reads and can delete VENs to free space, and once space is free
registration works again."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import (Api, Checks, RedisError, Stack, Validator, check, eq, free_ports,  # noqa: E402
                     install_signal_handlers, metric_sum, parse_args)
from vtntest import oadr  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

ADVERT_GONE_S = 7.0    # the gateway's advert lives 5 s; workers re-read vtn:gateways every second
RECOVER_BOUND_S = 10.0  # after space is freed: the next advert and discovery pass
FILL_VALUE = "x" * 8192
FILL_MAX_KEYS = 20000  # bounds the fill loop: 160 MB at most, far above the margin below
HEADROOM = 2 * 1024 * 1024


def used_memory(r):
    info = dict(line.split(":", 1) for line in r.cmd("INFO", "memory").split("\r\n") if ":" in line)
    return int(info["used_memory"])


def fill(r):
    """Writes filler keys until Redis refuses a write with OOM; returns how
    many were written. Client buffers come and go by tens of KB, which
    would leave room for a small write now and then: maxmemory then goes
    below what is in use, so every write is refused until keys are
    deleted, as on a server that has been full for a while."""
    n = 0
    while n < FILL_MAX_KEYS:
        reps = r.pipeline([("SET", "filler:%d" % (n + i), FILL_VALUE) for i in range(64)])
        errs = [rep for rep in reps if isinstance(rep, RedisError)]
        n += len(reps) - len(errs)
        if errs:
            check(str(errs[0]).startswith("OOM"), "filler write failed with %s" % errs[0])
            break
    check(n < FILL_MAX_KEYS, "Redis never refused a write after %d filler keys" % n)
    r.cmd("CONFIG", "SET", "maxmemory", str(used_memory(r) - HEADROOM // 2))
    try:
        r.cmd("SET", "filler:probe", "x")
    except RedisError as e:
        check(str(e).startswith("OOM"), "a write to the full Redis failed with %s" % e)
    else:
        raise AssertionError("a write succeeded after Redis was filled")
    return n


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.redis_full")
    with checks.processes():
        with Stack(cfg, name="e2e-redis-full") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            st.start_redis()
            gw = st.start_gateway(wait=False)
            st.start_worker(discover=True, wait=False)
            st.start_worker(discover=True, wait=False)
            st.wait_ops(gw, need_ready=True)
            st.wait_live_workers(gw, 2)
            for w in st.workers:
                st.wait_ops(w, need_ready=True)

            ven = Ven("127.0.0.1", gw.ports["oadr"], v, name="full-poller")
            victim = Ven("127.0.0.1", gw.ports["oadr"], v, name="full-victim")
            api = Api("127.0.0.1", gw.ports["api"], st.api_token)
            r = st.redis()
            state = {}

            def fill_redis():
                ven.register()
                ven.poll("oadrResponse", "200")
                victim.register()
                rep = api.call("POST", "/api/v1/vens", {"venName": "full-provisioned"})
                eq(rep.status, 201, "provisioning a VEN (%s)" % rep.text())
                state["provisioned"] = rep.json()["venID"]
                used = used_memory(r)
                r.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction")
                r.cmd("CONFIG", "SET", "maxmemory", str(used + HEADROOM))
                n = fill(r)
                print("   Redis full after %d filler keys" % n)
                state["filled"] = n

            def polls_answer_while_full():
                # Long enough for the gateway's advert to expire: the workers must keep it.
                end = time.monotonic() + ADVERT_GONE_S
                polls = 0
                while time.monotonic() < end:
                    ven.poll("oadrResponse", "200")
                    polls += 1
                    time.sleep(0.1)
                print("   %d polls answered 200 while Redis was full" % polls)
                live = r.cmd("ZRANGEBYSCORE", "vtn:gateways", int(time.time() * 1000), "+inf")
                check(gw.zmq_endpoint not in live,
                      "the gateway's advert was renewed although Redis is full: %r" % live)
                eq(st.live_workers(gw), 2, "live workers of the gateway while Redis is full")

            def workers_stay_ready():
                for w in st.workers:
                    rep = st.ops_get(w, "/readyz")
                    eq(rep.status, 200, "%s /readyz while Redis is full (%s)" % (w.name, rep.text()))
                eq(st.ops_get(gw, "/readyz").status, 200, "gateway /readyz while Redis is full")

            def registration_refused():
                newcomer = Ven("127.0.0.1", gw.ports["oadr"], v, name="full-newcomer")
                try:
                    rep = newcomer.http.post_xml(oadr.SERVICE_PATH + "EiRegisterParty",
                                                 oadr.create_party_registration(ven_name="full-newcomer"))
                finally:
                    newcomer.close()
                eq(rep.status, 503, "HTTP status of a registration while Redis is full (%r)" % rep.body[:300])
                check(rep.header("Retry-After"), "no Retry-After on the 503: %r" % rep.headers)
                v.validate(rep.body, "503 reply to a registration")
                reply = oadr.Reply(rep.body)
                eq(reply.name, "oadrCreatedPartyRegistration", "payload of the 503 reply")
                eq(reply.code(), "503", "responseCode of the 503 reply")
                desc = reply.get("eiResponse/responseDescription") or ""
                check("storage full" in desc, "description of the 503 reply: %r" % desc)

            def api_reads():
                rep = api.call("GET", "/api/v1/vens/" + ven.ven_id)
                eq(rep.status, 200, "GET of a VEN while Redis is full (%s)" % rep.text())
                eq(rep.json().get("venName"), "full-poller", "venName read while Redis is full")
                rep = api.call("GET", "/api/v1/vens")
                eq(rep.status, 200, "VEN list while Redis is full (%s)" % rep.text())

            def api_deletes():
                # A registered VEN: the cancel is queued for its next poll (a write).
                rep = api.call("DELETE", "/api/v1/vens/" + victim.ven_id)
                eq(rep.status, 202, "DELETE of a registered VEN while Redis is full (%s)" % rep.text())
                # A queued message is still delivered: the pop only removes.
                victim.poll("oadrCancelPartyRegistration", None)
                rep = api.call("DELETE", "/api/v1/vens/" + victim.ven_id + "?force=true")
                eq(rep.status, 200, "forced DELETE while Redis is full (%s)" % rep.text())
                eq(r.cmd("EXISTS", "vtn:ven:" + victim.ven_id), 0, "the deleted VEN's record")
                rep = api.call("DELETE", "/api/v1/vens/" + state["provisioned"])
                eq(rep.status, 200, "DELETE of a provisioned VEN while Redis is full (%s)" % rep.text())

            def cause_is_named():
                total = 0
                for w in st.workers:
                    total += metric_sum(st.metrics(w), "vtn_worker_redis_oom_total")
                check(total >= 1, "vtn_worker_redis_oom_total is %r" % total)
                logs = "".join(w.log_text() for w in st.workers)
                check("event=redis_full" in logs, "no event=redis_full in the worker logs")
                check("event=gateway_drop" not in logs, "a worker dropped the gateway while Redis was full")
                glog = gw.log_text()
                check("event=advertise_failed" in glog and "OOM" in glog,
                      "the gateway did not log its refused advert")

            def recovers():
                for i in range(0, state["filled"] + 64, 512):
                    r.cmd("DEL", *["filler:%d" % k for k in range(i, i + 512)])
                deadline = time.monotonic() + RECOVER_BOUND_S
                late = Ven("127.0.0.1", gw.ports["oadr"], v, name="full-late")
                try:
                    late.register()
                finally:
                    late.close()
                check(time.monotonic() < deadline, "registration took too long to recover")
                ven.poll("oadrResponse", "200")
                end = time.monotonic() + RECOVER_BOUND_S
                while True:
                    live = r.cmd("ZRANGEBYSCORE", "vtn:gateways", int(time.time() * 1000), "+inf")
                    if gw.zmq_endpoint in live:
                        break
                    check(time.monotonic() < end, "the gateway did not advertise again: %r" % live)
                    time.sleep(0.2)

            def no_gateway_not_ready():
                # A worker whose only gateway never answers must not claim to be ready.
                lonely = st.start_worker(env={"VTN_GATEWAYS": "tcp://127.0.0.1:%d" % free_ports(1)[0]},
                                         wait=False)
                try:
                    end = time.monotonic() + 10.0
                    while True:  # past "redis not connected" at start
                        rep = st.wait_ops(lonely, need_ready=False)
                        if "redis" not in rep.text() or time.monotonic() > end:
                            break
                        time.sleep(0.05)
                    eq(rep.status, 503, "/readyz of a worker without a live gateway")
                    check("no gateway" in rep.text(), "/readyz reason: %r" % rep.text())
                finally:
                    problem = lonely.stop()
                    st.workers.remove(lonely)
                check(problem is None, problem)

            checks.run("a worker without a live gateway is not ready", no_gateway_not_ready)
            checks.run("fill Redis until writes fail with OOM", fill_redis)
            if "filled" in state:
                checks.run("polls answer 200 while Redis is full, the gateway is kept",
                           polls_answer_while_full)
                checks.run("workers and gateway stay ready", workers_stay_ready)
                checks.run("a new registration gets 503 with Retry-After and a reason",
                           registration_refused)
                checks.run("the management API reads while Redis is full", api_reads)
                checks.run("the management API deletes VENs while Redis is full", api_deletes)
                checks.run("a metric and a log line name the cause", cause_is_named)
                checks.run("after space is freed, registration works again", recovers)
            ven.close()
            victim.close()
            api.close()
            r.close()
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
