#!/usr/bin/env python3
"""Faults under load (deploy/pod/test.sh --failover on the local pod file,
deploy/pod/overlay-test.sh on the production overlay's objects): VENs keep
polling over mutual TLS, and now and then register again, on two or more
gateways while
  1. the last gateway is stopped with SIGTERM (it drains; podman restarts it),
  2. the scheduler leader is killed (SIGKILL; the standby takes the lease),
  3. with --sentinel: the Redis primary is killed (stopped with SIGKILL) and
     Sentinel promotes a replica; started again, the old primary must
     rejoin as a replica.
The containers are named by the caller (--gateways, --schedulers,
--sentinel, --redis-primary), so any layout of pods works.
For each step it prints how many requests were sent and how many failed
(HTTP status other than 200, or a broken answer). A VEN whose gateway is not
ready (/readyz) or refuses connections goes to another one, as a load
balancer following the readiness probes would send it, and a
request on a reused keep-alive connection that the server had closed is
sent again on a new one, as VEN HTTP clients do; both are counted apart, not
as failures. Checks: no failure while a gateway drains or while the
scheduler leader changes, every VEN polling again after each step, and at
the end every VEN's last acknowledged registration is the one the VTN has.
Ends with "failover: N passed, M failed"."""

import argparse
import http.client
import os
import re
import ssl
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

from vtntest import Checks, Validator, check, eq, metric_sum, wait_for  # noqa: E402
from vtntest.httpc import http_get  # noqa: E402
from vtntest.stack import parse_metrics  # noqa: E402
from vtntest.tls import Cert, TlsVen  # noqa: E402

WAIT = 60.0  # bound for any recovery


class DevPki:
    def __init__(self, directory):
        self.client_ca = os.path.join(directory, "client-ca.pem")


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.step = "start"
        self.n = {}

    def add(self, what):
        with self.lock:
            key = (self.step, what)
            self.n[key] = self.n.get(key, 0) + 1

    def get(self, step, what):
        with self.lock:
            return self.n.get((step, what), 0)


class Readiness:
    """What a load balancer does with the gateways' readiness probes: reads
    each gateway's /readyz every 100 ms (a gateway is not ready without a
    live worker, or while it drains)."""

    def __init__(self, ops_ports):
        self.ports = ops_ports
        self.ready = [True] * len(ops_ports)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.wait(0.1):
            self.ready = [ready(p) for p in self.ports]


class Driver:
    """One VEN: polls its home gateway while it is ready, the other one
    otherwise (as a load balancer would send it), registers again every
    25th request."""

    def __init__(self, name, cert, pki, validator, ports, home, counter, lb):
        self.vens = [TlsVen(p, validator, pki, cert, name=name, timeout=5.0) for p in ports]
        self.home = home
        self.lb = lb
        self.counter = counter
        self.stop = threading.Event()
        self.last_ok = 0.0
        self.acked_registration = None
        self.errors = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def share_ids(self, src):
        for v in self.vens:
            v.ven_id, v.registration_id = src.ven_id, src.registration_id

    def register(self):
        v = self.vens[self.home]
        v.register(reports=True)
        self.share_ids(v)
        self.acked_registration = v.registration_id

    def attempt(self, v, i):
        if i % 25 == 24:
            v.register(reports=True)
            self.share_ids(v)
            self.acked_registration = v.registration_id
        else:
            v.poll()

    def one(self, i):
        gateways = [self.home] + [g for g in range(len(self.vens)) if g != self.home]
        order = [g for g in gateways if self.lb.ready[g]] or gateways
        for g in order:
            v = self.vens[g]
            for retry in (False, True):
                reused = v.http.conn is not None
                try:
                    self.attempt(v, i)
                    self.counter.add("ok")
                    self.last_ok = time.monotonic()
                    return
                except ConnectionRefusedError:
                    self.counter.add("refused")
                    v.http.close()
                    break  # to the other gateway
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
                    v.http.close()
                    if reused and not retry:
                        self.counter.add("resent")
                        continue
                    self.fail(e)
                    return
                except Exception as e:  # a non-200 answer, a timeout, a bad reply
                    v.http.close()
                    self.fail(e)
                    return
        self.counter.add("no gateway")
        time.sleep(0.2)

    def fail(self, e):
        self.counter.add("failed")
        text = str(e)
        # A non-200 answer: its status says more than the start of its body.
        status = re.search(r"^HTTP status of (\S+) reply .*expected 200, got (\d+)$", text, re.S)
        if status:
            text = "HTTP %s to %s" % (status.group(2), status.group(1))
            if status.group(2) == "503":
                self.counter.add("503")
        if len(self.errors) < 20:
            self.errors.append("%s: %s: %s" % (self.counter.step, type(e).__name__, text[:200]))
        time.sleep(0.1)

    def run(self):
        i = 0
        while not self.stop.is_set() and i < 100000:
            self.one(i)
            i += 1
            time.sleep(0.05)

    def close(self):
        for v in self.vens:
            v.close()


def podman(*args, check_rc=True):
    p = subprocess.run(["podman"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    if check_rc and p.returncode != 0:
        raise AssertionError("podman %s: %s" % (" ".join(args), p.stdout.decode(errors="replace")))
    return p.stdout.decode(errors="replace").strip()


def metrics(port):
    return parse_metrics(http_get("127.0.0.1", port, "/metrics").text())


def ready(port):
    try:
        return http_get("127.0.0.1", port, "/readyz").status == 200
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pki", required=True)
    ap.add_argument("--vens", type=int, default=6, help="VENs (certificates ven1..venN in --pki)")
    ap.add_argument("--oadr", type=int, nargs="+", required=True, metavar="PORT",
                    help="the gateways' OpenADR host ports")
    ap.add_argument("--ops", type=int, nargs="+", required=True, metavar="PORT",
                    help="the gateways' ops host ports, in the same order")
    ap.add_argument("--gateways", nargs="+", required=True, metavar="CONTAINER",
                    help="the gateways' containers, in the same order (the last one gets SIGTERM)")
    ap.add_argument("--scheduler-ops", type=int, nargs=2, required=True, metavar="PORT")
    ap.add_argument("--schedulers", nargs=2, required=True, metavar="CONTAINER",
                    help="the schedulers' containers, in the order of --scheduler-ops")
    ap.add_argument("--sentinel", metavar="CONTAINER",
                    help="a Sentinel's container (port 26379): with it, the Redis primary is killed")
    ap.add_argument("--redis-primary", metavar="CONTAINER",
                    help="the container of the Redis that is primary at the start (with --sentinel)")
    ap.add_argument("--schema", required=True)
    a = ap.parse_args()
    if not len(a.oadr) == len(a.ops) == len(a.gateways) >= 2:
        ap.error("--oadr, --ops and --gateways: the same number, at least 2")
    if bool(a.sentinel) != bool(a.redis_primary):
        ap.error("--sentinel and --redis-primary go together")

    pki = DevPki(a.pki)
    validator = Validator(a.schema)
    checks = Checks("failover")
    counter = Counter()
    lb = Readiness(a.ops)
    drivers = []
    for n in range(1, a.vens + 1):
        name = "ven%d" % n
        cert = Cert(name, os.path.join(a.pki, name + ".pem"), os.path.join(a.pki, name + ".key"),
                    None, os.path.join(a.pki, "ca-ecc"))
        drivers.append(Driver("failover-" + name, cert, pki, validator, a.oadr, n % len(a.oadr), counter, lb))

    def register_all():
        for d in drivers:
            d.register()

    if not checks.run("%d VENs register" % a.vens, register_all):
        return checks.summary()
    for d in drivers:
        d.thread.start()

    def all_polling_again(since):
        wait_for("every VEN answered after the step", lambda: all(d.last_ok > since for d in drivers), WAIT)

    def step(name, action, recovered, must_not_fail):
        counter.step = name
        t0 = time.monotonic()
        try:
            action()
            recovered()
            all_polling_again(time.monotonic())
            time.sleep(2)  # more polls after recovery, in the same step
        finally:
            sent = sum(counter.get(name, k) for k in ("ok", "failed"))
            print("step %-28s %5d requests, %3d failed (%d of them 503), %3d re-sent on a new connection, "
                  "%3d refused connections, %.1f s" % (name + ":", sent, counter.get(name, "failed"),
                                                       counter.get(name, "503"), counter.get(name, "resent"),
                                                       counter.get(name, "refused"), time.monotonic() - t0),
                  flush=True)
        errors = [e for d in drivers for e in d.errors if e.startswith(name)][:5]
        if must_not_fail:
            eq(counter.get(name, "failed"), 0, "failed requests in step %s (%s)" % (name, errors))
        else:
            # While Redis has no primary the VTN says "retry later", never 500 or silence.
            eq(counter.get(name, "failed"), counter.get(name, "503"),
               "failed requests in step %s that were not 503 (%s)" % (name, errors))

    # 0. steady state
    checks.run("steady polling", step, "steady", lambda: time.sleep(3), lambda: None, True)

    # 1. SIGTERM to the last gateway: it drains, exits 0; podman starts it again.
    gw = a.gateways[-1]

    def term_gateway():
        before = podman("inspect", "--format", "{{.State.StartedAt}}", gw)
        podman("kill", "--signal", "TERM", gw)
        state["gw_started"] = before

    def gateway_back():
        wait_for("gateway %d restarted" % len(a.gateways), lambda: podman(
            "inspect", "--format", "{{.State.StartedAt}}", gw) != state["gw_started"], WAIT)
        wait_for("gateway %d ready again" % len(a.gateways), lambda: ready(a.ops[-1]), WAIT)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", gw)
        eq(code, "0", "gateway %d's exit status after SIGTERM (a drained exit is 0)" % len(a.gateways))

    state = {}
    checks.run("gateway SIGTERM: drained, no failed request", step, "gateway-%d SIGTERM" % len(a.gateways),
               term_gateway, gateway_back, True)

    # 2. SIGKILL to the scheduler leader.
    def leader_index():
        for i, p in enumerate(a.scheduler_ops):
            try:
                if metric_sum(metrics(p), "vtn_scheduler_leader") == 1:
                    return i
            except OSError:
                pass
        return None

    def kill_leader():
        wait_for("a scheduler leads", lambda: leader_index() is not None, WAIT)
        state["leader"] = leader_index()
        podman("kill", "--signal", "KILL", a.schedulers[state["leader"]])

    def other_leads():
        other = 1 - state["leader"]
        wait_for("the standby scheduler leads", lambda: leader_index() == other, WAIT)

    checks.run("scheduler leader killed: standby leads, no failed request", step,
               "scheduler leader SIGKILL", kill_leader, other_leads, True)

    # 3. the Redis primary killed, Sentinel fails over.
    def master():
        out = podman("exec", a.sentinel, "redis-cli", "-p", "26379", "sentinel",
                     "get-master-addr-by-name", "vtn", check_rc=False)
        return out.split()

    if a.sentinel:
        def replica_known():
            out = podman("exec", a.sentinel, "redis-cli", "-p", "26379", "sentinel",
                         "replicas", "vtn", check_rc=False).split()
            return "slave" in out  # flags exactly "slave": up, no s_down

        def kill_primary():
            # A replica still in its first sync cannot be promoted.
            wait_for("Sentinel knows a synced replica", replica_known, WAIT)
            state["primary"] = master()
            check(len(state["primary"]) == 2, "Sentinel names a primary: %r" % state["primary"])
            print("Redis primary %s (container %s) stopped" % (":".join(state["primary"]), a.redis_primary),
                  flush=True)
            podman("stop", "--time", "0", a.redis_primary)

        def promoted():
            wait_for("Sentinel promotes a replica",
                     lambda: len(master()) == 2 and master() != state["primary"], WAIT)
            print("Sentinel promoted %s" % ":".join(master()), flush=True)

        checks.run("Redis primary killed: Sentinel fails over, VENs poll again", step,
                   "redis primary killed", kill_primary, promoted, False)

        def rejoins():
            podman("start", a.redis_primary)
            wait_for("the old primary is a replica again", lambda: podman(
                "exec", a.redis_primary, "redis-cli", "-p", "6379", "role", check_rc=False).startswith("slave"), WAIT)

        checks.run("the old primary, started again, rejoins as a replica", rejoins)
    else:
        print("SKIPPED step redis primary killed: the processes in this image do not read "
              "VTN_REDIS_SENTINELS (no Sentinel support yet)", flush=True)

    for d in drivers:
        d.stop.set()
    for d in drivers:
        d.thread.join(10)
    lb.stop.set()

    def registrations_kept():
        for d in drivers:
            v = d.vens[0]
            v.http.close()
            rep = v.query()
            eq(rep.get("registrationID"), d.acked_registration,
               "%s's registrationID after the steps (last acknowledged)" % d.vens[0].name)

    checks.run("no acknowledged registration lost", registrations_kept)
    total = sum(v for (s, k), v in counter.n.items() if k in ("ok", "failed"))
    print("requests in all: %d, failed: %d" % (total, sum(v for (s, k), v in counter.n.items() if k == "failed")))
    # The first failures of each step (all VENs), to say what they were.
    shown = {}
    for d in drivers:
        for e in d.errors:
            step_name = e.split(":", 1)[0]
            if shown.get(step_name, 0) < 3:
                shown[step_name] = shown.get(step_name, 0) + 1
                print("  %s %s" % (d.vens[0].name, e))
        d.close()
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
