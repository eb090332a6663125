"""Starting and stopping the VTN's processes for tests.

Every process binds 127.0.0.1 on ports chosen at run time, writes stdout and
stderr to <tmpdir>/<name>.log, is stopped by its pid (SIGTERM, then SIGKILL
after a bound) and dies with the test (PR_SET_PDEATHSIG) if the test is
killed. Start processes from the main thread: the death signal follows the
thread that forked.
"""

import argparse
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from .httpc import http_get
from .resp import Redis

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
READY_TIMEOUT = float(os.environ.get("VTN_TEST_READY_TIMEOUT", "15"))

# Loaded here, not in the child: dlopen between fork and exec can deadlock
# when the parent has threads.
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def _die_with_parent():
    # Runs in the child between fork and exec: only async-signal-safe work.
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (bound together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# --- configuration --------------------------------------------------------

class Config:
    """Paths to the binaries and the official schema. From arguments, else
    the environment (VTN_GATEWAY_BIN, VTN_WORKER_BIN, VTN_SCHEDULER_BIN,
    VTN_REDIS_SERVER, VTN_OFFICIAL_SCHEMA), else found under --build-dir."""

    def __init__(self, gateway=None, worker=None, scheduler=None, redis_server=None, schema=None,
                 keep=False):
        self.gateway = gateway
        self.worker = worker
        self.scheduler = scheduler
        self.redis_server = redis_server
        self.schema = schema
        self.keep = keep

    @staticmethod
    def add_arguments(ap):
        ap.add_argument("--gateway", help="vtn-gateway binary (env VTN_GATEWAY_BIN)")
        ap.add_argument("--worker", help="vtn-worker binary (env VTN_WORKER_BIN)")
        ap.add_argument("--scheduler", help="vtn-scheduler binary (env VTN_SCHEDULER_BIN)")
        ap.add_argument("--redis-server", help="redis-server binary (env VTN_REDIS_SERVER)")
        ap.add_argument("--schema", help="official oadr_20b.xsd (env VTN_OFFICIAL_SCHEMA)")
        ap.add_argument("--build-dir", help="look for the binaries in this CMake build dir")
        ap.add_argument("--keep", action="store_true", help="keep the temp dir and logs")

    @classmethod
    def from_args(cls, a):
        env = os.environ

        def pick(arg, var, rel):
            v = arg or env.get(var)
            if not v and a.build_dir and rel:
                cand = os.path.join(a.build_dir, rel)
                v = cand if os.path.exists(cand) else None
            return v

        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        schema = a.schema or env.get("VTN_OFFICIAL_SCHEMA") or os.path.join(
            os.path.dirname(repo), "shared", "oadr20b-schema", "oadr_20b.xsd")
        return cls(gateway=pick(a.gateway, "VTN_GATEWAY_BIN", "gateway/vtn-gateway"),
                   worker=pick(a.worker, "VTN_WORKER_BIN", "workers/vtn-worker"),
                   scheduler=pick(a.scheduler, "VTN_SCHEDULER_BIN", "scheduler/vtn-scheduler"),
                   redis_server=a.redis_server or env.get("VTN_REDIS_SERVER") or shutil.which("redis-server"),
                   schema=schema, keep=a.keep or env.get("VTN_TEST_KEEP") == "1")

    def require(self, *what):
        missing = [w for w in what if not getattr(self, w) or not os.path.exists(getattr(self, w))]
        if missing:
            raise SystemExit("missing: %s (pass --%s or --build-dir)" % (", ".join(missing),
                                                                        missing[0].replace("_", "-")))


def parse_args(description, extra=None, argv=None):
    ap = argparse.ArgumentParser(description=description)
    Config.add_arguments(ap)
    if extra:
        extra(ap)
    a = ap.parse_args(argv)
    return Config.from_args(a), a


# --- processes --------------------------------------------------------------

class Proc:
    def __init__(self, name, argv, env, logpath, ports=None):
        self.name = name
        self.argv = argv
        self.env = env
        self.logpath = logpath
        self.ports = ports or {}
        self.killed = False  # stopped on purpose with SIGKILL by the test
        self.stopped = False
        self.exit_code = None
        self.log = open(logpath, "ab")
        self.p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
                                  close_fds=True)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def kill(self):
        """SIGKILL on purpose (fault tests); not reported as a failure."""
        self.killed = True
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.p.wait(timeout=10)
        self.exit_code = self.p.returncode
        self.stopped = True

    def stop(self, grace=STOP_GRACE):
        """SIGTERM, wait up to grace seconds, then SIGKILL. Returns a problem
        description or None: an unexpected early exit, a non-zero exit after
        SIGTERM, or a forced SIGKILL."""
        if self.stopped:
            return None
        self.stopped = True
        problem = None
        rc = self.p.poll()
        if rc is not None:
            self.exit_code = rc
            if not self.killed:
                problem = "%s (pid %d) had exited by itself with status %s" % (self.name, self.pid, rc)
        else:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.exit_code = self.p.wait(timeout=grace)
                if self.exit_code != 0:
                    problem = "%s (pid %d) exited with status %s after SIGTERM" % (
                        self.name, self.pid, self.exit_code)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.exit_code = self.p.wait(timeout=10)
                problem = "%s (pid %d) ignored SIGTERM for %.0f s; killed" % (self.name, self.pid, grace)
        self.log.close()
        return problem

    def log_text(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|"
                          r"SUMMARY: (Address|Undefined|Leak)")


class Stack:
    """Redis, gateways, workers and a scheduler for one test.

    Use as a context manager; on exit every process is stopped; when the
    body raised or a process misbehaved, the logs are printed and the temp
    dir is kept."""

    def __init__(self, cfg, name="vtn", tmpdir=None, api_token="test-token-0123456789"):
        self.cfg = cfg
        self.name = name
        base = os.environ.get("VTN_TEST_TMPDIR") or None
        if base:
            os.makedirs(base, exist_ok=True)
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="vtn-%s-" % re.sub(r"[^\w.-]", "_", name), dir=base)
        self.procs = []
        self.redis_port = None
        self.gateways = []
        self.workers = []
        self.scheduler = None
        self.api_token = api_token
        self.failed = False
        self._n = {}

    # -- lifecycle

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        problems = self.stop_all()
        if et is not None or problems:
            self.failed = True
        if problems:
            print("process problems:\n  " + "\n  ".join(problems), file=sys.stderr)
        if self.failed:
            self.dump_logs()
            print("logs kept in %s" % self.tmpdir, file=sys.stderr)
        elif not self.cfg.keep:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if problems and et is None:
            raise AssertionError("process problems: " + "; ".join(problems))
        return False

    def stop_all(self):
        """Stops every process by pid, newest first; returns the problems."""
        problems = []
        for p in reversed(self.procs):
            try:
                pr = p.stop()
            except Exception as e:  # keep stopping the others
                pr = "%s: stop failed: %s" % (p.name, e)
            if pr:
                problems.append(pr)
        for p in self.procs:
            if p.name.startswith("redis"):
                continue
            m = SANITIZER_RE.search(p.log_text())
            if m:
                problems.append("%s: sanitizer report in its log (%s)" % (p.name, m.group(0)))
        return problems

    def dump_logs(self, tail=150):
        for p in self.procs:
            lines = p.log_text().splitlines()
            print("----- %s (pid %d) %s, last %d lines -----" % (p.name, p.pid, p.logpath,
                                                                 min(tail, len(lines))), file=sys.stderr)
            for line in lines[-tail:]:
                print(line, file=sys.stderr)
        sys.stderr.flush()

    def _next_name(self, kind):
        self._n[kind] = self._n.get(kind, 0) + 1
        return "%s%d" % (kind, self._n[kind])

    def _env(self, extra):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("VTN_") and k not in ("VTN_LOG_LEVEL",):
                del env[k]  # a developer's shell settings must not leak into a test
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        env.update({k: str(v) for k, v in (extra or {}).items()})
        return env

    # -- starting, with a retry when a port chosen at run time was taken

    def _launch(self, name, nports, build, started):
        """Picks nports free ports, build(ports) -> Proc, then waits until
        started(p) is true. Another process may take a port between our
        probe and the child's bind: then the child exits with "address
        already in use" and it is started again on new ports (3 tries)."""
        for attempt in range(3):
            p = build(free_ports(nports))
            self.procs.append(p)
            deadline = time.monotonic() + READY_TIMEOUT
            while p.alive() and time.monotonic() < deadline:
                if started(p):
                    return p
                time.sleep(0.02)
            if p.alive():
                raise RuntimeError("%s did not start within %.0f s" % (name, READY_TIMEOUT))
            p.stop()  # reaps it and closes its log
            if attempt < 2 and re.search(r"address already in use", p.log_text(), re.I):
                self.procs.remove(p)
                continue
            raise RuntimeError("%s exited with status %s while starting" % (name, p.exit_code))
        raise RuntimeError("%s: no free ports after 3 tries" % name)

    def _ops_answers(self, p):
        try:
            self.ops_get(p, "/healthz", timeout=1.0)
            return True
        except OSError:
            return False

    # -- redis

    def start_redis(self):
        self.cfg.require("redis_server")

        def build(ports):
            return Proc("redis", [self.cfg.redis_server, "--port", str(ports[0]), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", self.tmpdir,
                                  "--protected-mode", "yes", "--daemonize", "no", "--loglevel", "warning"],
                        self._env({}), os.path.join(self.tmpdir, "redis.log"), {"port": ports[0]})

        def pong(p):
            try:
                with Redis("127.0.0.1", p.ports["port"], timeout=1.0).connect() as r:
                    return r.ping()
            except OSError:
                return False

        p = self._launch("redis-server", 1, build, pong)
        self.redis_port = p.ports["port"]
        return self.redis_port

    @property
    def redis_url(self):
        return "redis://127.0.0.1:%d/0" % self.redis_port

    def redis(self):
        return Redis("127.0.0.1", self.redis_port).connect()

    # -- gateway

    def start_gateway(self, env=None, wait=True, need_worker=True):
        """Starts a gateway and waits until its ops listener answers (it
        starts last, after every listener is bound); with wait, also until
        /readyz says 200 (need_worker). Returns its Proc with .ports oadr,
        api, ops, zmq and .zmq_endpoint."""
        self.cfg.require("gateway")
        name = self._next_name("gateway")

        def build(ports):
            oadr, api, ops, zmq = ports
            e = {
                "VTN_OADR_LISTEN": "127.0.0.1:%d" % oadr,
                "VTN_API_LISTEN": "127.0.0.1:%d" % api,
                "VTN_OPS_LISTEN": "127.0.0.1:%d" % ops,
                "VTN_ZMQ_BIND": "tcp://127.0.0.1:%d" % zmq,
            }
            if self.redis_port:
                e["VTN_REDIS_URL"] = self.redis_url
            e.update(env or {})
            p = Proc(name, [self.cfg.gateway], self._env(e), os.path.join(self.tmpdir, name + ".log"),
                     {"oadr": oadr, "api": api, "ops": ops, "zmq": zmq})
            p.zmq_endpoint = "tcp://127.0.0.1:%d" % zmq
            return p

        p = self._launch(name, 4, build, self._ops_answers)
        self.gateways.append(p)
        if wait and need_worker:
            self.wait_ops(p, need_ready=True)
        return p

    # -- worker

    def start_worker(self, gateways=None, env=None, wait=True, discover=False):
        """Starts a worker connected to gateways (Procs; default: every
        gateway started so far) or, with discover, to what it finds in
        Redis, and waits until its ops listener answers. With wait, also
        until its own /readyz and that of every gateway it serves say 200."""
        self.cfg.require("worker")
        name = self._next_name("worker")
        gws = list(self.gateways if gateways is None else gateways)

        def build(ports):
            e = {
                "VTN_OPS_LISTEN": "127.0.0.1:%d" % ports[0],
                "VTN_API_TOKEN": self.api_token,
                "VTN_WORKER_NAME": name,
                "VTN_GATEWAYS": "" if discover else ",".join(g.zmq_endpoint for g in gws),
            }
            if self.redis_port:
                e["VTN_REDIS_URL"] = self.redis_url
            e.update(env or {})
            return Proc(name, [self.cfg.worker], self._env(e), os.path.join(self.tmpdir, name + ".log"),
                        {"ops": ports[0]})

        p = self._launch(name, 1, build, self._ops_answers)
        self.workers.append(p)
        if wait:
            self.wait_ops(p, need_ready=True)
            for g in gws:
                if g.alive():
                    self.wait_ops(g, need_ready=True)
        return p

    def start_scheduler(self, env=None, wait=True):
        self.cfg.require("scheduler")
        name = self._next_name("scheduler")

        def build(ports):
            e = {"VTN_OPS_LISTEN": "127.0.0.1:%d" % ports[0]}
            if self.redis_port:
                e["VTN_REDIS_URL"] = self.redis_url
            e.update(env or {})
            return Proc(name, [self.cfg.scheduler], self._env(e),
                        os.path.join(self.tmpdir, name + ".log"), {"ops": ports[0]})

        p = self._launch(name, 1, build, self._ops_answers)
        self.scheduler = p  # the last one started
        if wait:
            self.wait_ops(p, need_ready=False)
        return p

    def start_basic(self, workers=1, worker_env=None, gateway_env=None):
        """redis + one gateway + n workers (connected by the VTN_GATEWAYS
        list), all ready."""
        self.start_redis()
        gw = self.start_gateway(env=gateway_env, wait=False)
        for _ in range(workers):
            self.start_worker([gw], env=worker_env)
        return gw

    # -- readiness and ops

    def ops_get(self, p, path, timeout=2.0):
        return http_get("127.0.0.1", p.ports["ops"], path, timeout=timeout)

    def wait_ops(self, p, need_ready=True, timeout=READY_TIMEOUT):
        """Polls p's /readyz until it answers 200 (need_ready) or anything
        (not need_ready). Raises with the last answer on timeout or when p
        exits."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            if not p.alive():
                raise RuntimeError("%s exited with status %s while starting" % (p.name, p.p.returncode))
            try:
                r = self.ops_get(p, "/readyz", timeout=1.0)
                last = "%d %s" % (r.status, r.text().strip()[:200])
                if r.status == 200 or not need_ready:
                    return r
            except OSError as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise RuntimeError("%s not ready after %.0f s: %s" % (p.name, timeout, last))
            time.sleep(0.03)

    def metrics(self, p):
        """Parses p's /metrics into {"name{labels}": value}."""
        r = self.ops_get(p, "/metrics")
        if r.status != 200:
            raise AssertionError("%s /metrics answered %d" % (p.name, r.status))
        return parse_metrics(r.text())

    def live_workers(self, gw):
        """The gateway's vtn_gateway_live_workers gauge (None if absent)."""
        m = self.metrics(gw)
        return m.get("vtn_gateway_live_workers")

    def wait_live_workers(self, gw, n, timeout=READY_TIMEOUT):
        """Waits until the gateway counts n live workers (falls back to
        /readyz when it exports no such gauge)."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.live_workers(gw)
            if v is None:
                return self.wait_ops(gw, need_ready=True, timeout=max(0.1, deadline - time.monotonic()))
            if v >= n:
                return v
            if time.monotonic() > deadline:
                raise RuntimeError("%s counts %s live workers after %.0f s, expected %d"
                                   % (gw.name, v, timeout, n))
            time.sleep(0.05)


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(\S+?(?:\{.*\})?)\s+(\S+)", line)
        if m:
            try:
                out[m.group(1)] = float(m.group(2))
            except ValueError:
                pass
    return out


def metric_sum(metrics, name, **labels):
    """Sum of every sample of name whose labels include the given ones."""
    total = 0.0
    for k, v in metrics.items():
        base, _, rest = k.partition("{")
        if base != name:
            continue
        ok = all(('%s="%s"' % (lk, lv)) in rest for lk, lv in labels.items())
        if ok:
            total += v
    return total


def install_signal_handlers():
    """Turns SIGTERM/SIGINT/SIGHUP into SystemExit so `with Stack` cleans up."""
    def h(sig, frame):
        raise SystemExit(128 + sig)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, h)
