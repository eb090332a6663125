#!/usr/bin/env python3
"""Every process follows a Redis Sentinel failover: a primary, a replica and
three sentinels on loopback; a gateway, a worker (which finds the gateway
through Redis) and a scheduler configured with VTN_REDIS_SENTINELS only. A
VEN registers and polls; once the replica has the registration (replication
offset), the primary is SIGKILLed. The sentinels promote the replica; polls
answer 200 again within a bound, the registration is on the new primary,
the gateway advertises there, the scheduler leads there, a new registration
is written there, and no process exited. Then a manual SENTINEL FAILOVER
(the old primary, restarted as a replica, promoted back; the demoted node
stays up): the same again. On the side: READONLY from a replica named by
VTN_REDIS_URL, and NOREPLICAS from a primary with min-replicas-to-write and
no replica, are 503 with Retry-After, not 500. The requests that failed
during each switch are counted and printed."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import (Checks, Redis, Stack, Validator, check, eq, free_ports, install_signal_handlers,  # noqa: E402
                     metric_sum, parse_args, wait_for)
from vtntest.stack import Proc  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

MASTER = "vtnprimary"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
SWITCH_BOUND_S = 30.0   # kill -> polls answer again: detection 1 s, election, promotion, reconnects
POLL_EVERY_S = 0.1


def info(r, section):
    return dict(line.split(":", 1) for line in r.cmd("INFO", section).split("\r\n") if ":" in line)


class Group:
    """The Redis nodes and sentinels, started through the Stack so they are
    stopped by pid with everything else."""

    def __init__(self, st):
        self.st = st
        self.nodes = {}  # port -> Proc
        self.sentinels = []

    def start_node(self, port, replica_of=None):
        args = [self.st.cfg.redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.st.tmpdir, "--dbfilename", "dump-%d.rdb" % port,
                "--protected-mode", "yes", "--daemonize", "no", "--loglevel", "warning"]
        if replica_of:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        p = Proc("redis-%d" % port, args, self.st._env({}), os.path.join(self.st.tmpdir, "redis-%d.log" % port),
                 {"port": port})
        self.st.procs.append(p)
        wait_for("redis on port %d" % port, lambda: self._pong(port), timeout=10)
        self.nodes[port] = p
        return p

    @staticmethod
    def _pong(port):
        try:
            with Redis("127.0.0.1", port, timeout=1.0).connect() as r:
                return r.ping()
        except OSError:
            return False

    def start_sentinel(self, port, primary):
        conf = os.path.join(self.st.tmpdir, "sentinel-%d.conf" % port)
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nloglevel notice\n"
                    "sentinel monitor %s 127.0.0.1 %d 2\n"
                    "sentinel down-after-milliseconds %s %d\n"
                    "sentinel failover-timeout %s %d\n"
                    "sentinel parallel-syncs %s 1\n"
                    % (port, self.st.tmpdir, MASTER, primary, MASTER, DOWN_AFTER_MS,
                       MASTER, FAILOVER_TIMEOUT_MS, MASTER))
        p = Proc("sentinel-%d" % port, [self.st.cfg.redis_server, conf, "--sentinel"], self.st._env({}),
                 os.path.join(self.st.tmpdir, "sentinel-%d.log" % port), {"port": port})
        self.st.procs.append(p)
        wait_for("sentinel on port %d" % port, lambda: self._pong(port), timeout=10)
        self.sentinels.append(p)
        return p

    def sentinel_cmd(self, *args):
        with Redis("127.0.0.1", self.sentinels[0].ports["port"], timeout=2.0).connect() as r:
            return r.cmd(*args)

    def primary_port(self):
        return int(self.sentinel_cmd("SENTINEL", "get-master-addr-by-name", MASTER)[1])

    def env(self):
        return {"VTN_REDIS_URL": "",  # the sentinels say where; nothing else may
                "VTN_REDIS_SENTINELS": ",".join("127.0.0.1:%d" % s.ports["port"] for s in self.sentinels),
                "VTN_REDIS_SENTINEL_MASTER": MASTER}

    def wait_settled(self, primary, replica):
        """Until every sentinel names primary, knows the replica and the two other sentinels."""
        def settled():
            for s in self.sentinels:
                try:
                    with Redis("127.0.0.1", s.ports["port"], timeout=1.0).connect() as r:
                        addr = r.cmd("SENTINEL", "get-master-addr-by-name", MASTER)
                        reps = r.cmd("SENTINEL", "replicas", MASTER)
                        others = r.cmd("SENTINEL", "sentinels", MASTER)
                except OSError:
                    return False
                if int(addr[1]) != primary or len(others) != len(self.sentinels) - 1:
                    return False
                ok = False
                for rep in reps:
                    d = dict(zip(rep[0::2], rep[1::2]))
                    if d.get("port") == str(replica) and "s_down" not in d.get("flags", "") \
                            and d.get("master-link-status") == "ok":
                        ok = True
                if not ok:
                    return False
            return True
        wait_for("the sentinels to agree on primary %d with replica %d" % (primary, replica),
                 settled, timeout=40, every=0.2)

    def wait_replicated(self, primary, replica):
        """Until the replica has everything the primary has written so far."""
        with Redis("127.0.0.1", primary).connect() as p:
            want = int(info(p, "replication")["master_repl_offset"])

        def caught_up():
            with Redis("127.0.0.1", replica).connect() as r:
                i = info(r, "replication")
                return i.get("master_link_status") == "up" and int(i.get("slave_repl_offset", -1)) >= want
        wait_for("the replica to reach offset %d" % want, caught_up, timeout=15)
        return want


class Poller:
    """A VEN polling every POLL_EVERY_S; records (time, ok, what) of each
    poll, what being the HTTP status and Retry-After of a failed one (None
    when no HTTP answer came)."""

    def __init__(self, ven):
        self.ven = ven
        self.log = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.ven.last = None
            try:
                self.ven.poll("oadrResponse", "200")
                self.log.append((t0, True, None))
            except Exception as e:  # counted: the test reports how many failed
                last = self.ven.last
                self.log.append((t0, False, (last.status, last.header("Retry-After")) if last else None))
                if last is None:
                    print("     a poll got no HTTP answer: %s" % e)
                self.ven.http.close()
            self._stop.wait(max(0.0, POLL_EVERY_S - (time.monotonic() - t0)))

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(timeout=20)
        self.ven.close()

    def since(self, t):
        return [x for x in self.log if x[0] >= t]


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "scheduler", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.sentinel_failover")
    with checks.processes():
        with Stack(cfg, name="e2e-sentinel") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            g = Group(st)
            a = st.start_redis()  # the first primary (Stack's own redis)
            g.nodes[a] = st.procs[-1]
            b = free_ports(1)[0]
            g.start_node(b, replica_of=a)
            for port in free_ports(3):
                g.start_sentinel(port, a)
            g.wait_settled(a, b)
            env = g.env()
            gw = st.start_gateway(env=env, wait=False)
            wk = st.start_worker(env=env, discover=True, wait=False)
            sc = st.start_scheduler(env=env)
            st.wait_ops(wk, need_ready=True)
            st.wait_ops(gw, need_ready=True)
            ven = Ven("127.0.0.1", gw.ports["oadr"], v, name="sentinel-ven")
            poller = Poller(Ven("127.0.0.1", gw.ports["oadr"], v, name="sentinel-poller"))
            state = {"primary": a, "replica": b, "vens": []}

            def register_and_replicate():
                ven.register()
                ven.poll("oadrResponse", "200")
                state["vens"].append(ven.ven_id)
                poller.ven.register()
                state["vens"].append(poller.ven.ven_id)
                off = g.wait_replicated(a, b)
                print("   registered %s and %s; the replica has offset %d" % (ven.ven_id, poller.ven.ven_id, off))
                poller.start()
                time.sleep(1.0)
                check(all(ok for _, ok, _ in poller.log), "polls failed before the kill: %r" % poller.log[:3])

            def follows(kill):
                old, new = state["primary"], state["replica"]
                t0 = time.monotonic()
                if kill:
                    g.nodes[old].kill()
                else:
                    g.sentinel_cmd("SENTINEL", "FAILOVER", MASTER)
                wait_for("the sentinels to promote %d" % new, lambda: g.primary_port() == new,
                         timeout=SWITCH_BOUND_S, every=0.1)
                promoted = time.monotonic()
                state["primary"], state["replica"] = new, old

                def answered_again():
                    recent = [x for x in poller.since(promoted)]
                    return len(recent) >= 5 and all(ok for _, ok, _ in recent[-5:])
                wait_for("5 polls in a row answered 200 after the failover", answered_again,
                         timeout=SWITCH_BOUND_S - (promoted - t0), every=0.1)
                polls = poller.since(t0)
                failed = [x for x in polls if not x[1]]
                first_ok_after = next((x[0] for x in polls if x[1] and x[0] >= promoted), None)
                print("   %s: promoted after %.1f s; %d of %d polls failed during the switch; "
                      "polls answer again %.1f s after the %s"
                      % ("SIGKILL" if kill else "SENTINEL FAILOVER", promoted - t0, len(failed), len(polls),
                         (first_ok_after or promoted) - t0, "kill" if kill else "command"))
                for _, _, what in failed:
                    check(what is not None and what[0] == 503 and what[1],
                          "a poll during the switch failed otherwise than 503 with Retry-After: %r" % (what,))

            def registrations_kept():
                with Redis("127.0.0.1", state["primary"]).connect() as r:
                    for vid in state["vens"]:
                        eq(r.cmd("EXISTS", "ven:{%s}" % vid), 1, "the record of %s on the new primary" % vid)
                ven.poll("oadrResponse", "200")  # 463 if the VTN had lost it

            def everyone_on_new_primary():
                newcomer = Ven("127.0.0.1", gw.ports["oadr"], v, name="sentinel-new-%d" % state["primary"])
                try:
                    newcomer.register()
                    state["vens"].append(newcomer.ven_id)
                finally:
                    newcomer.close()
                with Redis("127.0.0.1", state["primary"]).connect() as r:
                    eq(r.cmd("EXISTS", "ven:{%s}" % newcomer.ven_id), 1, "a new registration on the new primary")

                    def advertised():
                        return gw.zmq_endpoint in r.cmd("ZRANGEBYSCORE", "vtn:gateways",
                                                        int(time.time() * 1000), "+inf")
                    wait_for("the gateway's advert on the new primary", advertised, timeout=10)

                    def leads():
                        lease = r.cmd("GET", "vtn:scheduler:leader")
                        m = st.metrics(sc)
                        return lease and m.get("vtn_scheduler_leader") == 1
                    wait_for("the scheduler to lead on the new primary", leads, timeout=15)
                for p in (gw, wk, sc):
                    check(p.alive(), "%s exited" % p.name)
                eq(st.ops_get(wk, "/readyz").status, 200, "worker /readyz after the failover")
                eq(st.ops_get(gw, "/readyz").status, 200, "gateway /readyz after the failover")

            def switch_announced():
                for p in (gw, wk, sc):
                    check("event=sentinel_switch" in p.log_text(),
                          "%s did not log the sentinels' +switch-master" % p.name)
                m = st.metrics(wk)
                check(metric_sum(m, "vtn_worker_redis_reconnects_total") >= 1,
                      "vtn_worker_redis_reconnects_total did not move")

            def refused_registration(gateway, name):
                """A registration through gateway must get 503, Retry-After, "storage unavailable"."""
                late = Ven("127.0.0.1", gateway.ports["oadr"], v, name=name)
                try:
                    late.last = None
                    try:
                        late.register(reports=False)
                    except AssertionError:
                        pass
                    check(late.last is not None, "no HTTP answer to the registration of %s" % name)
                    eq(late.last.status, 503, "HTTP status of the registration of %s (%r)" % (name, late.last.body[:200]))
                    check(late.last.header("Retry-After"), "no Retry-After on the 503")
                    check(b"storage unavailable" in late.last.body, "reason: %r" % late.last.body[:300])
                finally:
                    late.close()

            def readonly_is_503():
                # A worker whose VTN_REDIS_URL names a replica (a managed Redis' endpoint that a
                # failover moved away): writes answer READONLY. The VEN gets 503 with
                # Retry-After, not 500, and the worker drops the connection each time.
                gw2 = st.start_gateway(env={"VTN_REDIS_URL": ""}, wait=False)
                wk2 = st.start_worker([gw2], env={"VTN_REDIS_URL": "redis://127.0.0.1:%d/0" % state["replica"]})
                for _ in range(2):
                    refused_registration(gw2, "sentinel-readonly")
                wait_for("the worker to connect again", lambda: "READONLY" in wk2.log_text(), timeout=5)
                check("event=internal_error" not in wk2.log_text(), "READONLY answered as an internal error")
                for p in (wk2, gw2):
                    check(p.stop() is None, "%s did not stop cleanly" % p.name)
                st.workers.remove(wk2)
                st.gateways.remove(gw2)

            def min_replicas_refuses():
                # docs/deploy.md: with min-replicas-to-write the primary refuses a write no
                # replica takes; the VEN gets 503 with Retry-After (nothing was acknowledged),
                # and reads go on.
                with Redis("127.0.0.1", state["primary"]).connect() as r:
                    r.cmd("CONFIG", "SET", "min-replicas-to-write", "1")
                    r.cmd("CONFIG", "SET", "min-replicas-max-lag", "2")
                    g.nodes[state["replica"]].kill()
                    wait_for("the primary to see no replica",
                             lambda: info(r, "replication").get("connected_slaves") == "0", timeout=10)
                    refused_registration(gw, "sentinel-noreplica")
                    eq(r.cmd("EXISTS", "vtn:venname:sentinel-noreplica"), 0, "an index of the refused VEN")
                    ven.poll("oadrResponse", "200")
                    check("event=redis_noreplicas" in wk.log_text(), "no event=redis_noreplicas in the worker log")
                    check("event=internal_error" not in wk.log_text(), "NOREPLICAS answered as an internal error")
                    r.cmd("CONFIG", "SET", "min-replicas-to-write", "0")

            def restart_old_as_replica():
                old = state["replica"]
                st.procs.remove(g.nodes[old])
                g.start_node(old, replica_of=state["primary"])  # as an operator would
                g.wait_settled(state["primary"], old)
                g.wait_replicated(state["primary"], old)

            checks.run("register two VENs, the replica has them, polls flow", register_and_replicate)
            if state["vens"]:
                checks.run("SIGKILL of the primary: polls answer again", follows, True)
                checks.run("the registrations survived the failover", registrations_kept)
                checks.run("gateway, worker and scheduler work on the new primary", everyone_on_new_primary)
                checks.run("each process heard +switch-master", switch_announced)
                checks.run("the killed primary comes back as a replica", restart_old_as_replica)
                checks.run("READONLY from a replica named by URL: 503, not 500", readonly_is_503)
                checks.run("SENTINEL FAILOVER (the old primary demoted, still up): polls answer again",
                           follows, False)
                checks.run("the registrations survived the second failover", registrations_kept)
                checks.run("everyone on the second new primary", everyone_on_new_primary)
                checks.run("min-replicas-to-write without a replica: 503, reads go on", min_replicas_refuses)
            poller.stop()
            ven.close()
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
