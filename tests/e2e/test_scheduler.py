#!/usr/bin/env python3
"""The scheduler: of two instances exactly one leads (holds the Redis lease
with a fencing token); the leader prunes expired gateway adverts; a standby
takes over after a clean stop at once and after a crash within the lease,
always with a higher epoch, even when Redis has lost its data in between."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Checks, Stack, check, eq, install_signal_handlers, parse_args  # noqa: E402

LEASE_MS = 2000
TICK_MS = 200


def leader_gauge(st, p):
    return st.metrics(p).get("vtn_scheduler_leader")


def epoch_gauge(st, p):
    return st.metrics(p).get("vtn_scheduler_epoch")


def wait_leader(st, procs, timeout):
    """Returns the one process whose gauge says leader, once exactly one does."""
    deadline = time.monotonic() + timeout
    while True:
        leaders = [p for p in procs if p.alive() and leader_gauge(st, p) == 1]
        if len(leaders) == 1:
            return leaders[0]
        if time.monotonic() > deadline:
            raise AssertionError("%d leaders after %.1f s, expected exactly 1" % (len(leaders), timeout))
        time.sleep(0.05)


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("scheduler", "redis_server")
    install_signal_handlers()
    checks = Checks("e2e.scheduler")
    env = {"VTN_SCHEDULER_LEASE": "%dms" % LEASE_MS, "VTN_SCHEDULER_TICK": "%dms" % TICK_MS}
    with checks.processes():
        with Stack(cfg, name="e2e-scheduler") as st:
            st.start_redis()
            a = st.start_scheduler(env=env)
            b = st.start_scheduler(env=env)
            state = {}

            def one_leader():
                lead = wait_leader(st, [a, b], timeout=3 * LEASE_MS / 1000)
                other = b if lead is a else a
                # hold for a few ticks: the standby must not take over a live lease
                time.sleep(5 * TICK_MS / 1000)
                eq(leader_gauge(st, lead), 1, "leader still leads")
                eq(leader_gauge(st, other), 0, "standby stays standby")
                with st.redis() as r:
                    val = r.cmd("GET", "vtn:scheduler:leader")
                check(val is not None and val.split(" ")[0] == str(int(epoch_gauge(st, lead))),
                      "the lease names the leader's epoch: %r" % val)
                eq(st.ops_get(other, "/readyz").status, 200, "a standby is ready (it is what takes over)")
                state["lead"], state["other"] = lead, other
                state["epoch"] = epoch_gauge(st, lead)

            def prunes_expired_adverts():
                now = int(time.time() * 1000)
                with st.redis() as r:
                    r.cmd("ZADD", "vtn:gateways", now - 60000, "tcp://127.0.0.1:1")
                    r.cmd("ZADD", "vtn:gateways", now + 600000, "tcp://127.0.0.1:2")
                deadline = time.monotonic() + 10
                while True:
                    with st.redis() as r:
                        members = r.cmd("ZRANGE", "vtn:gateways", 0, -1)
                    if "tcp://127.0.0.1:1" not in members:
                        break
                    check(time.monotonic() < deadline, "expired advert still there: %r" % members)
                    time.sleep(0.1)
                check("tcp://127.0.0.1:2" in members, "a live advert was pruned: %r" % members)

            def clean_stop_hands_over():
                lead, other = state["lead"], state["other"]
                t0 = time.monotonic()
                lead.stop()
                eq(lead.exit_code, 0, "leader exit status on SIGTERM")
                new = wait_leader(st, [other], timeout=LEASE_MS / 1000)
                took = time.monotonic() - t0
                # released, so the standby does not wait out the lease
                check(took < LEASE_MS / 1000, "takeover after a clean stop took %.2f s" % took)
                check(epoch_gauge(st, new) > state["epoch"], "the new term has a higher epoch")
                state["lead"], state["epoch"] = new, epoch_gauge(st, new)

            def crash_hands_over_after_lease():
                c = st.start_scheduler(env=env)
                time.sleep(5 * TICK_MS / 1000)
                eq(leader_gauge(st, c), 0, "a newcomer does not steal a live lease")
                t0 = time.monotonic()
                state["lead"].kill()
                new = wait_leader(st, [c], timeout=3 * LEASE_MS / 1000)
                took = time.monotonic() - t0
                print("   takeover after SIGKILL: %.2f s (lease %.1f s)" % (took, LEASE_MS / 1000))
                check(epoch_gauge(st, new) > state["epoch"], "the new term has a higher epoch")
                state["lead"], state["epoch"] = new, epoch_gauge(st, new)

            def epoch_grows_after_redis_lost_its_data():
                lead, before = state["lead"], state["epoch"]
                with st.redis() as r:
                    r.cmd("FLUSHALL")  # the lease and the epoch counter are gone
                deadline = time.monotonic() + 3 * LEASE_MS / 1000
                while epoch_gauge(st, lead) == before:
                    check(time.monotonic() < deadline, "no new term after FLUSHALL")
                    time.sleep(0.05)
                new = wait_leader(st, [lead], timeout=3 * LEASE_MS / 1000)
                after = epoch_gauge(st, new)
                check(after > before, "the term after the data loss has a higher epoch: %s after %s"
                      % (after, before))
                with st.redis() as r:
                    val = r.cmd("GET", "vtn:scheduler:leader")
                check(val is not None and val.split(" ")[0] == str(int(after)),
                      "the new lease names the new epoch: %r" % val)

            checks.run("exactly one of two schedulers leads", one_leader)
            checks.run("the leader prunes expired gateway adverts only", prunes_expired_adverts)
            checks.run("a clean stop hands leadership over at once", clean_stop_hands_over)
            checks.run("a crash hands leadership over within the lease", crash_hands_over_after_lease)
            checks.run("fencing tokens grow even after Redis lost its data",
                       epoch_grows_after_redis_lost_its_data)
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
