#!/usr/bin/env python3
"""Protocol tests as data: runs the case folders in tests/protocol/cases/
through a real gateway and worker against a real redis-server.

Each case folder holds request.xml, meta, redis-before and expect; the
format is described in docs/testing.md. Cases that need the same worker
settings share one process set (redis + gateway + worker); Redis is flushed
and loaded from redis-before before each case.

Exit status: 0 when every selected case passed, 1 when one failed, 77 when
every selected case was skipped.
"""

import os
import re
import shlex
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from vtntest import fixtures, oadr  # noqa: E402
from vtntest.httpc import Http  # noqa: E402
from vtntest.resp import RedisError  # noqa: E402
from vtntest.stack import Stack, install_signal_handlers, parse_args  # noqa: E402

CASES_DIR = os.path.join(HERE, "cases")
OPS = ("=", "!=", "contains", "!contains", "matches", "exists", "absent", "count")
OP_RE = re.compile(r"^(.*?)\s+(=|!=|!contains|contains|matches|exists|absent|count)(?:\s+(.*))?$")
# The gateway rewrites its discovery entry every second on its own timer, and
# every process its heartbeat (vtn:procs) every two; a poll records when it
# came (the record's lp, vtn:vens:online: docs/redis-keys.md). None of these
# is state a request changes for a VEN.
UNCHANGED_IGNORE = ("vtn:gateways", "vtn:procs", "vtn:vens:online")
UNCHANGED_IGNORE_FIELDS = {"ven:{": ("lp",)}
# A case's client certificate fingerprint (meta fingerprint=) reaches the
# worker the way a TLS-terminating proxy passes it: the case's gateway trusts
# 127.0.0.1 as a proxy and takes the fingerprint from this header (the
# certificates behind the cases' fingerprints have no private key to do a
# real handshake with; tests/e2e/test_tls.py covers real TLS).
PROXY_FP_HEADER = "X-Test-Client-Fingerprint"
PROXY_GATEWAY_ENV = {"VTN_TRUSTED_PROXIES": "127.0.0.1", "VTN_PROXY_FINGERPRINT_HEADER": PROXY_FP_HEADER}


class CaseError(Exception):
    """The case files themselves are wrong."""


# --- loading ----------------------------------------------------------------

class Case:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.meta = {}
        self.env = {}
        self.gateway_env = {}
        self.load_error = None
        try:
            self._load()
        except (OSError, CaseError) as e:
            self.load_error = str(e)

    def _read(self, fname, required=True):
        p = os.path.join(self.path, fname)
        if not os.path.exists(p):
            if required:
                raise CaseError("%s: missing %s" % (self.name, fname))
            return None
        with open(p, "rb") as f:
            return f.read()

    def _load(self):
        for line in self._read("meta").decode().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            k, sep, v = line.partition("=")
            if not sep:
                raise CaseError("%s/meta: %r is not key=value" % (self.name, line))
            k, v = k.strip(), v.strip()
            if k in ("env", "gateway-env"):
                ek, sep2, ev = v.partition("=")
                if not sep2:
                    raise CaseError("%s/meta: %s needs NAME=VALUE" % (self.name, k))
                (self.env if k == "env" else self.gateway_env)[ek.strip()] = ev.strip()
            elif k in ("service", "path", "method", "content-type", "request", "fingerprint",
                       "description", "listener"):
                self.meta[k] = v
            else:
                raise CaseError("%s/meta: unknown key %r" % (self.name, k))
        if "service" not in self.meta and "path" not in self.meta:
            raise CaseError("%s/meta: needs service= or path=" % self.name)
        if self.meta.get("listener", "oadr") not in ("oadr", "api"):
            raise CaseError("%s/meta: listener= must be oadr or api" % self.name)
        # A management API case sends request.json (none: an empty body)
        # with the API token.
        self.request = (self._read("request.json", required=False) or b"") if self.api() \
            else self._read("request.xml")
        self.redis_before = (self._read("redis-before", required=False) or b"").decode()
        self.expect = [parse_expect_line(self.name, i + 1, line)
                       for i, line in enumerate(self._read("expect").decode().splitlines())]
        self.expect = [e for e in self.expect if e is not None]
        if not any(e[0] == "http-status" for e in self.expect):
            raise CaseError("%s/expect: needs an http-status line" % self.name)

    def api(self):
        return self.meta.get("listener") == "api"

    def group_key(self):
        return (tuple(sorted(self.env.items())), tuple(sorted(self.gateway_env.items())))

    def url_path(self):
        return self.meta.get("path") or oadr.SERVICE_PATH + self.meta["service"]


def parse_expect_line(case, lineno, line):
    """Returns (kind, subject, op, value) or None for blank/comment lines."""
    s = line.strip()
    if not s or s.startswith("#"):
        return None
    where = "%s/expect:%d" % (case, lineno)
    if s == "redis-unchanged":
        return ("redis-unchanged", None, None, None)
    m = re.match(r"^set\s+(\w+)\s*=\s*(\S+)$", s)
    if m:
        return ("set", m.group(2), "=", m.group(1))
    if s.startswith("redis:"):
        kind, rest = "redis", s[len("redis:"):].strip()
    elif fixtures.is_check(s):
        kind, rest = "state", s
    elif s.startswith("header "):
        kind, rest = "header", s[len("header "):].strip()
    else:
        kind, rest = None, s
    m = OP_RE.match(rest)
    if not m:
        raise CaseError("%s: no operator (one of %s) in %r" % (where, ", ".join(OPS), line))
    subject, op, value = m.group(1).strip(), m.group(2), m.group(3)
    value = "" if value is None else value.strip()
    if op in ("exists", "absent") and value:
        raise CaseError("%s: %s takes no value" % (where, op))
    if op == "count" and not value.isdigit():
        raise CaseError("%s: count needs a number" % where)
    if kind is None:
        if subject in ("http-status", "payload", "body"):
            kind = subject
        elif re.fullmatch(r"[A-Za-z_*][\w.*-]*(\[\d+\])?(/[A-Za-z_*][\w.*-]*(\[\d+\])?)*", subject):
            kind = "xml"
        else:
            raise CaseError("%s: unknown check subject %r" % (where, subject))
    if kind == "redis" and not subject:
        raise CaseError("%s: redis: needs a command" % where)
    return (kind, subject, op, value)


# --- checking ---------------------------------------------------------------

def subst(s, vars_):
    def rep(m):
        if m.group(1) not in vars_:
            raise CaseError("${%s} is not set (use `set %s = <path>` earlier)" % (m.group(1), m.group(1)))
        return vars_[m.group(1)]
    return re.sub(r"\$\{(\w+)\}", rep, s)


def compare(what, got, op, want):
    """got: str, None (nothing there) or list of str (several values)."""
    if op == "exists":
        ok = got is not None and got != [] and got != ""
    elif op == "absent":
        ok = got is None or got == []
    elif op == "count":
        n = 0 if got is None else (len(got) if isinstance(got, list) else (int(got) if isinstance(got, int) else 1))
        ok = n == int(want)
        got = "%d (%r)" % (n, got)
    elif got is None:
        ok = False
    elif isinstance(got, list):
        if op == "contains":
            ok = want in got
        elif op == "!contains":
            ok = want not in got
        else:
            joined = getattr(got, "joiner", " ").join(got)
            ok = (joined == want) if op == "=" else (joined != want) if op == "!=" else bool(
                re.search(want, joined))
    else:
        got = str(got)
        if op == "=":
            ok = got == want
        elif op == "!=":
            ok = got != want
        elif op == "contains":
            ok = want in got
        elif op == "!contains":
            ok = want not in got
        elif op == "matches":
            ok = re.search(want, got) is not None
        else:
            raise CaseError("bad operator %r" % op)
    if not ok:
        shown = (" " + repr(want)) if want != "" or op in ("=", "!=") else ""
        raise AssertionError("%s %s%s: got %r" % (what, op, shown, got))


def redis_value(v):
    if isinstance(v, RedisError):
        raise AssertionError("redis error: %s" % v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return [redis_value(x) if not isinstance(x, list) else str(x) for x in v]
    return v


def load_redis(r, text):
    """redis-before: one fixture verb (vtntest/fixtures.py) or raw Redis
    command a line."""
    cmds = []
    for i, line in enumerate(text.splitlines()):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        try:
            words = shlex.split(s)
            verb = fixtures.setup_commands(words)
        except (ValueError, fixtures.FixtureError) as e:
            raise CaseError("redis-before:%d: %s" % (i + 1, e))
        cmds += [(i + 1, c) for c in verb] if verb is not None else [(i + 1, words)]
    replies = r.pipeline([c for _, c in cmds]) if cmds else []
    for (lineno, c), rep in zip(cmds, replies):
        if isinstance(rep, RedisError):
            raise CaseError("redis-before:%d: %s -> %s" % (lineno, " ".join(c), rep))


def run_case(case, stack, gw, validator, verbose=False):
    if case.load_error:
        raise CaseError(case.load_error)
    r = stack.redis()
    try:
        r.cmd("FLUSHALL")
        load_redis(r, case.redis_before)
        if case.api():
            pass  # JSON: the API itself judges it
        elif case.meta.get("request", "valid") == "valid":
            try:
                validator.validate(case.request, "%s/request.xml" % case.name)
            except oadr.SchemaError as e:
                raise CaseError("request.xml is not valid OpenADR (mark it request=invalid in meta "
                                "if that is the point): %s" % e)
        elif case.meta["request"] != "invalid":
            raise CaseError("meta: request= must be valid or invalid")
        before = None
        if any(e[0] == "redis-unchanged" for e in case.expect):
            before = r.snapshot(ignore=UNCHANGED_IGNORE, ignore_fields=UNCHANGED_IGNORE_FIELDS)

        http = Http("127.0.0.1", gw.ports["api" if case.api() else "oadr"], timeout=15.0)
        try:
            headers = {}
            if case.api():
                headers["Authorization"] = "Bearer " + stack.api_token
            ct = case.meta.get("content-type", "application/json" if case.api() else "application/xml")
            if ct != "none":
                headers["Content-Type"] = ct
            if case.meta.get("fingerprint"):
                headers[PROXY_FP_HEADER] = case.meta["fingerprint"]
            resp = http.request(case.meta.get("method", "POST"), case.url_path(), case.request, headers)
        finally:
            http.close()

        if verbose:
            print("---- %s: HTTP %d %s\n%s" % (case.name, resp.status, resp.header("Content-Type"),
                                             resp.body.decode(errors="replace")[:4000]), flush=True)
        reply = None
        reply_err = None
        if oadr.is_xml_content_type(resp.header("Content-Type")):
            # Every OpenADR message the VTN emits must be valid.
            validator.validate(resp.body, "%s: reply" % case.name)
            try:
                reply = oadr.Reply(resp.body)
            except ValueError as e:
                reply_err = str(e)
        elif resp.status == 200 and not case.api():
            raise AssertionError("HTTP 200 without an XML Content-Type (%r): %r"
                                 % (resp.header("Content-Type"), resp.body[:300]))

        vars_ = {}
        for kind, subject, op, value in case.expect:
            value = subst(value, vars_) if value else value
            if kind == "http-status":
                compare("http-status", str(resp.status), op, value)
            elif kind == "header":
                compare("header %s" % subject, resp.header(subject), op, value)
            elif kind == "body":
                compare("body", resp.body.decode(errors="replace"), op, value)
            elif kind in ("payload", "xml", "set"):
                if reply is None:
                    raise AssertionError("%s check needs an OpenADR reply; got HTTP %d %s %r%s"
                                         % (subject, resp.status, resp.header("Content-Type"),
                                            resp.body[:300], " (%s)" % reply_err if reply_err else ""))
                if kind == "payload":
                    compare("payload", reply.name, op, value)
                elif kind == "set":
                    found = oadr.find_all(reply.payload, subject)
                    if not found or not (found[0].text or "").strip():
                        raise AssertionError("set %s: nothing at %s" % (value, subject))
                    vars_[value] = found[0].text.strip()
                else:
                    found = oadr.find_all(reply.payload, subject)
                    if op in ("exists",):
                        got = [(f.text or "").strip() or "<element>" for f in found if
                               (f.text or "").strip() or len(f)]
                    elif op in ("absent", "count"):
                        got = found
                    else:
                        got = (found[0].text or "").strip() if found else None
                    compare(subject, got, op, value)
            elif kind == "redis":
                try:
                    args = shlex.split(subst(subject, vars_))
                except ValueError as e:
                    raise CaseError("redis check %r: %s" % (subject, e))
                got = redis_value(r.pipeline([args])[0])
                compare("redis: " + " ".join(args), got, op, value)
            elif kind == "state":
                subject = subst(subject, vars_)
                try:
                    got = fixtures.check_value(r, subject)
                except fixtures.FixtureError as e:
                    raise CaseError(str(e))
                compare(subject, got, op, value)
            elif kind == "redis-unchanged":
                after = r.snapshot(ignore=UNCHANGED_IGNORE, ignore_fields=UNCHANGED_IGNORE_FIELDS)
                if after != before:
                    added = sorted(set(after) - set(before))
                    gone = sorted(set(before) - set(after))
                    changed = sorted(k for k in set(after) & set(before) if after[k] != before[k])
                    detail = [r.describe(k) for k in (added + changed)[:5]]
                    raise AssertionError("redis changed: added %s, removed %s, changed %s; %s"
                                         % (added, gone, changed, "; ".join(detail)))
        return resp
    finally:
        r.close()


# --- main -------------------------------------------------------------------

def main():
    def extra(ap):
        ap.add_argument("--cases", default=CASES_DIR, help="folder of case folders")
        ap.add_argument("--case", action="append", default=[],
                        help="run only this case (folder name; repeatable)")
        ap.add_argument("--list", action="store_true", help="list the cases and exit")
        ap.add_argument("-v", "--verbose", action="store_true", help="print every reply")
        ap.add_argument("names", nargs="*", help="case folder names (same as --case)")

    cfg, a = parse_args(__doc__.split("\n")[0], extra)
    install_signal_handlers()
    names = sorted(d for d in os.listdir(a.cases) if os.path.isfile(os.path.join(a.cases, d, "meta")))
    if a.list:
        width = max([len(n) for n in names] or [0])
        for n in names:
            c = Case(os.path.join(a.cases, n))
            print("%-*s  %s" % (width, n, c.meta.get("description", c.load_error or "")))
        return 0
    wanted = a.case + a.names
    if wanted:
        unknown = [w for w in wanted if w not in names]
        if unknown:
            print("unknown case(s): %s" % ", ".join(unknown))
            return 1
        names = [n for n in names if n in wanted]
    cfg.require("gateway", "worker", "redis_server", "schema")
    cases = [Case(os.path.join(a.cases, n)) for n in names]

    passed, failed, skipped = [], [], []
    groups = {}
    for c in cases:
        if not c.load_error and c.meta.get("fingerprint"):
            c.gateway_env.update(PROXY_GATEWAY_ENV)
        groups.setdefault(c.group_key(), []).append(c)

    t_all = time.monotonic()
    for key, group in groups.items():
        worker_env, gateway_env = dict(key[0]), dict(key[1])
        todo = list(group)
        while todo:
            label = "protocol" if not worker_env else "protocol-" + "-".join(
                "%s=%s" % kv for kv in sorted(worker_env.items()))
            stack = Stack(cfg, name=label)
            failed_here = False
            try:
                with stack:
                    validator = oadr.Validator(cfg.schema, workdir=stack.tmpdir)
                    gw = stack.start_basic(workers=1, worker_env=worker_env, gateway_env=gateway_env)
                    while todo:
                        c = todo.pop(0)
                        t0 = time.monotonic()
                        try:
                            run_case(c, stack, gw, validator, a.verbose)
                            dead = [p.name for p in stack.procs if not p.alive()]
                            if dead:
                                raise AssertionError("process(es) died during the case: %s" % ", ".join(dead))
                            passed.append(c.name)
                            print("ok   %s (%.2f s)" % (c.name, time.monotonic() - t0), flush=True)
                        except Exception as e:
                            failed.append(c.name)
                            failed_here = True
                            kind = "case files" if isinstance(e, CaseError) else "check"
                            print("FAIL %s (%.2f s) [%s]: %s" % (c.name, time.monotonic() - t0, kind, e),
                                  flush=True)
                            if c.meta.get("description"):
                                print("     (%s)" % c.meta["description"], flush=True)
                            if any(not p.alive() for p in stack.procs):
                                break  # restart the process set for the remaining cases
                    if failed_here:
                        stack.failed = True  # print the logs
            except AssertionError as e:
                # Process problems at stop (non-zero exit, sanitizer report):
                # blame the group's cases that passed.
                print("FAIL process set %s: %s" % (label, e), flush=True)
                for c in group:
                    if c.name in passed:
                        passed.remove(c.name)
                        failed.append(c.name)
            except Exception as e:
                traceback.print_exc(file=sys.stdout)
                print("FAIL process set %s could not run: %s" % (label, e), flush=True)
                for c in todo:
                    failed.append(c.name)
                todo = []

    print("protocol: %d passed, %d failed%s (%.1f s)" % (
        len(passed), len(failed), (", %d skipped" % len(skipped)) if skipped else "",
        time.monotonic() - t_all), flush=True)
    if failed:
        print("failed: %s" % " ".join(failed))
        return 1
    if skipped and not passed:
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
