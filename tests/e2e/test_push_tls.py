#!/usr/bin/env python3
"""The TLS client the gateway uses for pushes to VENs, through
`vtn-gateway --push-check URL` against a push VEN's HTTPS endpoint played by
a Python ssl server on 127.0.0.1 (server certificate from a "VEN server" CA,
client certificate required from the VTN's CA): success (both sides see the
other's certificate, nothing but the handshake is sent), TLS 1.3 when
enabled, and the reasons a push fails (VEN certificate from an untrusted CA,
for another name, expired; the VEN refusing the VTN's certificate; nothing
listening), usage and configuration errors (exit 2), and the gateway loading
the push files at start and on SIGHUP. Certificates are made at test time
with vtnctl (the expired one with the openssl CLI)."""

import hashlib
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Checks, Stack, check, eq, free_ports, install_signal_handlers, parse_args  # noqa: E402
from vtntest.tls import ECC_SUITE, Pki, find_vtnctl, ven_server_context  # noqa: E402

PATH = "/OpenADR2/Simple/2.0b"
WAIT = 15.0


def fingerprint(der):
    """The OpenADR fingerprint: last 10 bytes of SHA-256 over the DER."""
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest()[-10:])


def logfmt(line):
    """key=value pairs of one logfmt line (values may be quoted)."""
    out = {}
    for k, v in re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        if v.startswith('"'):
            v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[k] = v
    return out


class VenEndpoint:
    """A push-mode VEN's HTTPS endpoint: TLS server thread on 127.0.0.1 with
    cert, requiring a client certificate from client_ca. Each connection's
    outcome goes to .conns: peer certificate (DER) or handshake error, and
    the bytes the client sent after the handshake."""

    def __init__(self, cert, client_ca, tls13=False):
        self.ctx = ven_server_context(cert, client_ca, tls13)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.conns = queue.Queue()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                raw, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            raw.settimeout(WAIT)
            rec = {"peer_der": None, "error": None, "data": b"", "version": None}
            s = None
            try:
                s = self.ctx.wrap_socket(raw, server_side=True)
                rec["peer_der"] = s.getpeercert(binary_form=True)
                rec["version"] = s.version()
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    rec["data"] += chunk
            except (ssl.SSLError, OSError) as e:
                rec["error"] = "%s: %s" % (type(e).__name__, e)
            finally:
                (s or raw).close()
            self.conns.put(rec)

    def next_conn(self):
        try:
            return self.conns.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError("the VEN endpoint saw no connection within %.0f s" % WAIT)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def main():
    def extra(ap):
        ap.add_argument("--vtnctl", help="vtnctl binary (env VTNCTL; default: next to the gateway)")

    cfg, a = parse_args(__doc__.split("\n")[0], extra)
    cfg.require("gateway")
    vtnctl = find_vtnctl(a.vtnctl, cfg.gateway)
    install_signal_handlers()
    checks = Checks("e2e.push_tls")
    with checks.processes():
        with Stack(cfg, name="e2e-push-tls") as st:
            pki = Pki(vtnctl, os.path.join(st.tmpdir, "pki"))
            vtn_ca = os.path.join(pki.ca_ecc, "ca.pem")  # the VTN's CA: issues its push certificate
            vtn = pki.issue("vtn-push")
            ven_ca_dir = os.path.join(pki.dir, "ca-ven")
            pki.run("ca", "create", "--dir", ven_ca_dir, "--key", "ec", "--cn", "VEN server CA")
            ven_ca = os.path.join(ven_ca_dir, "ca.pem")
            ven = pki.issue("ven-srv", ven_ca_dir, "ec", server="DNS:localhost")
            ven_elsewhere = pki.issue("ven-elsewhere", ven_ca_dir, "ec", server="DNS:ven.example")
            ven_untrusted = pki.issue("ven-untrusted", pki.ca_other, "ec", server="DNS:localhost")
            # CN=localhost without subjectAltName: the name matches, only the dates are wrong
            ven_expired = pki.expired("localhost", ven_ca_dir)
            other_ca = os.path.join(pki.ca_other, "ca.pem")
            push_env = {"VTN_PUSH_CERT": "%s:%s" % (vtn.pem, vtn.key), "VTN_PUSH_CA": ven_ca,
                        "VTN_PUSH_TIMEOUT": "5s"}

            def push_check(url, env=None):
                r = subprocess.run([cfg.gateway, "--push-check", url], env=st._env(push_env if env is None else env),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
                out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
                for what in (out, err):
                    check(not re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", what),
                          "sanitizer report: %s" % what[-2000:])
                lines = [ln for ln in out.splitlines() if ln.startswith("push_check ")]
                return r.returncode, (logfmt(lines[0]) if lines else {}), out, err

            def url(port, host="localhost"):
                return "https://%s:%d%s" % (host, port, PATH)

            def expect_failure(ep, u, reason, env=None):
                rc, res, out, err = push_check(u, env)
                eq(rc, 1, "exit status (stdout %r, stderr %r)" % (out, err))
                check(reason in err, "%r not in stderr: %r" % (reason, err))
                eq(res.get("result"), "failed", "result field in %r" % out)
                check(reason in res.get("error", ""), "%r not in the error field: %r" % (reason, out))
                return ep.next_conn() if ep else None, res

            def success():
                with VenEndpoint(ven, vtn_ca) as ep:
                    rc, res, out, err = push_check(url(ep.port))
                    eq(rc, 0, "exit status (stdout %r, stderr %r)" % (out, err))
                    eq(res.get("result"), "ok", "result")
                    eq(res.get("protocol"), "TLSv1.2", "protocol (the default)")
                    eq(res.get("cipher"), ECC_SUITE, "cipher")
                    eq(res.get("verify"), "ok", "verify")
                    eq(res.get("client_cert"), "accepted", "client_cert")
                    eq(res.get("ven_fingerprint"), ven.fingerprint, "the VEN certificate's fingerprint")
                    check("CN=ven-srv" in res.get("ven_subject", ""), "subject in %r" % out)
                    conn = ep.next_conn()
                    eq(conn["error"], None, "the VEN's side of the handshake")
                    check(conn["peer_der"], "the VEN got no client certificate")
                    eq(fingerprint(conn["peer_der"]), vtn.fingerprint, "the VTN certificate the VEN saw")
                    eq(conn["data"], b"", "bytes sent after the handshake (a check sends no payload)")
                    # IPv4 literal of the same endpoint: the certificate names localhost only
                    expect_failure(ep, url(ep.port, "127.0.0.1"), "IP address mismatch for 127.0.0.1")

            def tls13():
                with VenEndpoint(ven, vtn_ca, tls13=True) as ep:
                    rc, res, out, err = push_check(url(ep.port), dict(push_env, VTN_PUSH_PROTOCOLS="TLSv1.2,TLSv1.3"))
                    eq(rc, 0, "exit status (stdout %r, stderr %r)" % (out, err))
                    eq(res.get("protocol"), "TLSv1.3", "protocol")
                    eq(res.get("client_cert"), "accepted", "client_cert (the VEN's session ticket)")
                    eq(fingerprint(ep.next_conn()["peer_der"]), vtn.fingerprint, "the VTN certificate the VEN saw")
                    # by default only TLS 1.2 is offered, even to a VEN that speaks 1.3
                    rc, res, out, err = push_check(url(ep.port))
                    eq(rc, 0, "exit status (stdout %r, stderr %r)" % (out, err))
                    eq(res.get("protocol"), "TLSv1.2", "protocol by default")
                    ep.next_conn()

            def untrusted_ven_ca():
                with VenEndpoint(ven_untrusted, vtn_ca) as ep:
                    conn, res = expect_failure(ep, url(ep.port), "VEN server certificate rejected: unable to get "
                                               "local issuer certificate (depth 0, subject CN=ven-untrusted)")
                    eq(res.get("verify"), "failed", "verify")
                    eq(res.get("ven_fingerprint"), ven_untrusted.fingerprint, "the rejected certificate is named")
                    check(conn["peer_der"] is None, "the VEN completed a handshake: %r" % conn)

            def hostname_mismatch():
                with VenEndpoint(ven_elsewhere, vtn_ca) as ep:
                    expect_failure(ep, url(ep.port, "localhost"),
                                   "VEN server certificate rejected: hostname mismatch for localhost "
                                   "(depth 0, subject CN=ven-elsewhere)")
                    expect_failure(ep, url(ep.port, "127.0.0.1"),
                                   "VEN server certificate rejected: IP address mismatch for 127.0.0.1")

            def expired():
                with VenEndpoint(ven_expired, vtn_ca) as ep:
                    expect_failure(ep, url(ep.port), "VEN server certificate rejected: certificate has expired "
                                   "(depth 0, subject CN=localhost)")

            def ven_refuses_our_certificate():
                for tls13, env in ((False, push_env), (True, dict(push_env, VTN_PUSH_PROTOCOLS="TLSv1.3"))):
                    with VenEndpoint(ven, other_ca, tls13=tls13) as ep:
                        conn, res = expect_failure(ep, url(ep.port),
                                                   "the VEN refused our client certificate: TLS alert unknown CA",
                                                   env)
                        eq(res.get("verify"), "ok", "verify (we accepted the VEN)")
                        eq(res.get("client_cert"), "refused", "client_cert")
                        check(conn["error"] and "certificate" in conn["error"],
                              "the VEN's side should have failed on our certificate: %r" % conn)

            def nothing_listening():
                port = free_ports(1)[0]
                expect_failure(None, url(port, "127.0.0.1"), "connect to 127.0.0.1:%d: Connection refused" % port)

            def usage_and_config_errors():
                missing = os.path.join(pki.dir, "no-such-ca.pem")
                cases = [
                    ({"VTN_PUSH_CERT": push_env["VTN_PUSH_CERT"]}, url(1), "VTN_PUSH_CA is required with VTN_PUSH_CERT"),
                    ({"VTN_PUSH_CA": ven_ca}, url(1), "VTN_PUSH_CERT is required with VTN_PUSH_CA"),
                    ({}, url(1), "--push-check needs VTN_PUSH_CERT and VTN_PUSH_CA"),
                    (push_env, "http://localhost:1" + PATH, "is not an https:// URL"),
                    (push_env, "https://localhost:99999/", "port out of range"),
                    (dict(push_env, VTN_PUSH_CA=missing), url(1), "VTN_PUSH_CA: %s: No such file" % missing),
                    (dict(push_env, VTN_PUSH_PROTOCOLS="TLSv1.1"), url(1), "VTN_PUSH_PROTOCOLS"),
                ]
                for env, u, want in cases:
                    rc, res, out, err = push_check(u, env)
                    eq(rc, 2, "exit status for %s %s (stderr %r)" % (env, u, err))
                    check(want in err, "%r not in stderr %r" % (want, err))
                r = subprocess.run([cfg.gateway, "--help"], stdout=subprocess.PIPE, timeout=30)
                help_text = r.stdout.decode()
                for word in ("--push-check", "VTN_PUSH_CERT", "VTN_PUSH_CA", "VTN_PUSH_PROTOCOLS", "VTN_PUSH_TIMEOUT"):
                    check(word in help_text, "%s not in --help" % word)

            def gateway_loads_and_reloads_push_files():
                base = {"VTN_OADR_LISTEN": "127.0.0.1:0", "VTN_API_LISTEN": "127.0.0.1:0",
                        "VTN_OPS_LISTEN": "127.0.0.1:0", "VTN_ZMQ_BIND": "tcp://127.0.0.1:0", "VTN_REDIS_URL": ""}
                missing = os.path.join(pki.dir, "no-such-push.pem")
                r = subprocess.run([cfg.gateway], env=st._env(dict(base, **dict(push_env, VTN_PUSH_CERT=missing))),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
                out = r.stdout.decode(errors="replace")
                eq(r.returncode, 1, "exit status with a missing VTN_PUSH_CERT file (%s)" % out[-400:])
                check("VTN_PUSH_CERT: %s" % missing in out, "the file is not named: %s" % out[-400:])

                ca_copy = os.path.join(pki.dir, "push-ca.pem")
                with open(ven_ca, "rb") as f:
                    good = f.read()
                with open(ca_copy, "wb") as f:
                    f.write(good)
                gw = st.start_gateway(env=dict(push_env, VTN_PUSH_CA=ca_copy, VTN_REDIS_URL=""), wait=False)

                def wait_log(pattern):
                    deadline = time.monotonic() + WAIT
                    while not re.search(pattern, gw.log_text()):
                        if time.monotonic() > deadline:
                            raise AssertionError("no log line matching %r:\n%s" % (pattern, gw.log_text()[-2000:]))
                        time.sleep(0.05)

                wait_log(r"event=push_tls generation=1 protocols=TLSv1\.2 timeout_ms=5000")
                os.kill(gw.pid, signal.SIGHUP)
                wait_log(r"event=push_tls_reloaded generation=2")
                with open(ca_copy + ".tmp", "wb") as f:
                    f.write(b"not a certificate\n")
                os.rename(ca_copy + ".tmp", ca_copy)
                os.kill(gw.pid, signal.SIGHUP)
                wait_log(r"event=push_tls_reload_failed generation=2 kept=1 error=\"VTN_PUSH_CA: %s: no PEM "
                         r"certificate\"" % re.escape(ca_copy))
                check(gw.alive(), "the gateway died after a failed reload")

            checks.run("push check succeeds; the VEN sees the VTN's certificate, nothing else is sent", success)
            checks.run("TLS 1.3 when enabled, TLS 1.2 by default", tls13)
            checks.run("VEN certificate from an untrusted CA: exit 1, reason", untrusted_ven_ca)
            checks.run("VEN certificate for another name: exit 1, hostname / IP mismatch", hostname_mismatch)
            checks.run("expired VEN certificate: exit 1, reason", expired)
            checks.run("the VEN refuses the VTN's certificate (TLS 1.2 and 1.3): exit 1, reason",
                       ven_refuses_our_certificate)
            checks.run("nothing listening: exit 1, reason", nothing_listening)
            checks.run("usage and configuration errors: exit 2", usage_and_config_errors)
            checks.run("the gateway loads the push files at start and on SIGHUP", gateway_loads_and_reloads_push_files)
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
