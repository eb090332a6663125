#!/usr/bin/env python3
"""Mutual TLS through the real gateway process: the OpenADR handshake matrix
(ECC-only, RSA-only, TLS 1.3 on and off, no certificate, wrong CA, expired,
revoked), registration binding the certificate fingerprint, 463 for a venID
that is not the certificate's, resumption, the handshake timeout, rate-limited
failure logs, SIGHUP reload with a new CRL while a keep-alive connection stays
open, a failed reload keeping the old configuration, and start-up errors that
name the file. The PKI is made at test time with vtnctl (the expired
certificate with the openssl CLI). Every OpenADR reply is validated against
the official schema."""

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Api, Checks, Stack, Validator, check, eq, install_signal_handlers, metric_sum  # noqa: E402
from vtntest import oadr, parse_args, wait_for  # noqa: E402
from vtntest.tls import (ECC_SUITE, RSA_SUITE, Pki, TlsVen, attempt, client_context, find_vtnctl,  # noqa: E402
                         tls12_context, tls13_context)

API = "/api/v1"
WAIT = 15.0  # bound for anything we wait for


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def log_lines(proc, event):
    return [ln for ln in proc.log_text().splitlines() if (" event=%s " % event) in ln + " "]


def main():
    def extra(ap):
        ap.add_argument("--vtnctl", help="vtnctl binary (env VTNCTL; default: next to the gateway)")

    cfg, a = parse_args(__doc__.split("\n")[0], extra)
    cfg.require("gateway", "worker", "redis_server", "schema")
    vtnctl = find_vtnctl(a.vtnctl, cfg.gateway)
    install_signal_handlers()
    checks = Checks("e2e.tls")
    with checks.processes():
        with Stack(cfg, name="e2e-tls") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            pki = Pki(vtnctl, os.path.join(st.tmpdir, "pki"))
            ven_a = pki.issue("ven-a")                        # ECC, ECC CA
            ven_rsa = pki.issue("ven-rsa", pki.ca_rsa, "rsa")  # RSA, RSA CA
            ven_b = pki.issue("ven-b")                        # revoked later, by SIGHUP
            revoked = pki.issue("ven-revoked")
            pki.revoke(revoked)
            foreign = pki.issue("ven-foreign", pki.ca_other)
            expired = pki.expired("ven-expired")

            st.start_redis()
            env = pki.gateway_env(handshake_timeout="1s")
            env["VTN_LOG_LEVEL"] = "debug"
            gw = st.start_gateway(env=env, wait=False)
            gw13 = st.start_gateway(env=pki.gateway_env(protocols="TLSv1.2,TLSv1.3"), wait=False)
            st.start_worker([gw, gw13])
            port, port13 = gw.ports["oadr"], gw13.ports["oadr"]
            api = Api("127.0.0.1", gw.ports["api"], st.api_token)

            def m(name, **labels):
                return metric_sum(st.metrics(gw), name, **labels)

            def refused(o, what):
                check(not o.ok, "%s: expected the connection to be refused, got %r" % (what, o))

            def refused_in_handshake(o, what):
                refused(o, what)
                check(not o.handshake, "%s: TLS 1.2 should fail in the handshake, got %r" % (what, o))

            def reason_logged(pattern, proc=gw):
                wait_for("a tls_handshake_failed line matching %r" % pattern,
                         lambda: any(re.search(pattern, ln) for ln in log_lines(proc, "tls_handshake_failed")))

            def ecc_only():
                o = attempt(port, client_context(pki, ven_a, ECC_SUITE, ssl.TLSVersion.TLSv1_2,
                                                 ssl.TLSVersion.TLSv1_2))
                check(o.ok, "ECC-only client: %r" % o)
                eq(o.version, "TLSv1.2", "version")
                eq(o.cipher, ECC_SUITE, "suite")
                eq(o.server_cert_der, der_of(pki.server_ecc.pem), "server certificate (the ECC one)")
                eq(o.status, 404, "the probe's answer")

            def rsa_only():
                o = attempt(port, client_context(pki, ven_rsa, RSA_SUITE, ssl.TLSVersion.TLSv1_2,
                                                 ssl.TLSVersion.TLSv1_2))
                check(o.ok, "RSA-only client: %r" % o)
                eq(o.cipher, RSA_SUITE, "suite")
                eq(o.server_cert_der, der_of(pki.server_rsa.pem), "server certificate (the RSA one)")

            def both_suites_prefers_ecc():
                o = attempt(port, tls12_context(pki, ven_a, RSA_SUITE + ":" + ECC_SUITE))
                check(o.ok, "%r" % o)
                eq(o.cipher, ECC_SUITE, "suite chosen by the server's preference")

            def other_suites_refused():
                for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "AES256-SHA256"):
                    o = attempt(port, tls12_context(pki, ven_a, suite))
                    refused_in_handshake(o, "TLS 1.2 with only %s" % suite)

            def tls13():
                o = attempt(port, tls13_context(pki, ven_a))
                refused_in_handshake(o, "TLS 1.3 client, VTN_TLS_PROTOCOLS default (TLSv1.2)")
                o = attempt(port13, tls13_context(pki, ven_a))
                check(o.ok, "TLS 1.3 client with VTN_TLS_PROTOCOLS=TLSv1.2,TLSv1.3: %r" % o)
                eq(o.version, "TLSv1.3", "version")
                # and OpenADR works over it, reply validated
                ven = TlsVen(port13, v, pki, ven_a, ctx=tls13_context(pki, ven_a))
                ven.query()
                ven.close()
                # TLS 1.2 still works next to it
                o = attempt(port13, client_context(pki, ven_rsa, RSA_SUITE, ssl.TLSVersion.TLSv1_2,
                                                   ssl.TLSVersion.TLSv1_2))
                check(o.ok, "TLS 1.2 RSA client on the 1.2+1.3 gateway: %r" % o)
                # a TLS 1.3 client without a certificate is refused (after its side of the handshake)
                refused(attempt(port13, tls13_context(pki, None)), "TLS 1.3 without a certificate")
                reason_logged(r"certificate", gw13)

            def no_certificate():
                refused_in_handshake(attempt(port, tls12_context(pki, None)), "no client certificate")
                reason_logged(r"peer did not return a certificate")

            def wrong_ca():
                refused_in_handshake(attempt(port, tls12_context(pki, foreign)), "certificate from another CA")
                reason_logged(r"client certificate rejected: .*subject /CN=ven-foreign")

            def expired_cert():
                refused_in_handshake(attempt(port, tls12_context(pki, expired)), "expired certificate")
                reason_logged(r"certificate has expired .*CN=ven-expired")

            def revoked_cert():
                refused_in_handshake(attempt(port, tls12_context(pki, revoked)), "revoked certificate")
                reason_logged(r"certificate revoked .*CN=ven-revoked")

            def plain_http_on_tls_port():
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                try:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    data = s.recv(4096)
                    check(not data.startswith(b"HTTP/"), "plain HTTP answered on the TLS port: %r" % data[:80])
                finally:
                    s.close()

            state = {}

            def registration_binds_fingerprint():
                ven = TlsVen(port, v, pki, ven_a)
                rep = ven.query()
                check(rep.get("venID") is None, "query before registration carries a venID: %s" % rep)
                ven.register()
                ven.poll("oadrResponse", "200")
                state["a_id"] = ven.ven_id
                r = api.call("GET", "%s/vens/%s" % (API, ven.ven_id))
                eq(r.status, 200, "GET the VEN (%r)" % r)
                eq(r.json().get("fingerprint"), ven_a.fingerprint, "fingerprint bound at registration")
                # a query over the same certificate now finds the registration
                rep = ven.query()
                eq(rep.get("venID"), ven.ven_id, "venID in a query from the bound certificate")
                ven.close()
                rsa = TlsVen(port, v, pki, ven_rsa, ctx=client_context(
                    pki, ven_rsa, RSA_SUITE, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2))
                rsa.register()
                r = api.call("GET", "%s/vens/%s" % (API, rsa.ven_id))
                eq(r.json().get("fingerprint"), ven_rsa.fingerprint, "fingerprint of the RSA VEN")
                rsa.close()

            def wrong_ven_id_is_463():
                b = TlsVen(port, v, pki, ven_b)
                b.register()
                state["b"] = b  # stays open: the keep-alive connection of the reload check
                state["b_id"] = b.ven_id
                check(b.ven_id != state["a_id"], "two certificates, one venID")
                # B's certificate, A's venID
                b.send("OadrPoll", oadr.poll(state["a_id"]), "oadrResponse", "463")
                b.send("EiRegisterParty", oadr.create_party_registration(ven_name="ven-a", ven_id=state["a_id"]),
                       "oadrCreatedPartyRegistration", "463")
                # and its own venID still works on the same connection
                b.poll("oadrResponse", "200")
                eq(b.http.connects, 1, "connections B opened")

            def identity_headers_refused_over_tls():
                # a VEN cannot claim another certificate by writing the proxy header
                b = state["b"]
                r = b.http.request("POST", oadr.SERVICE_PATH + "OadrPoll", oadr.poll(state["a_id"]),
                                   {"Content-Type": "application/xml",
                                    "X-Client-Cert": "-----BEGIN%20CERTIFICATE-----"})
                eq(r.status, 403, "identity header over direct TLS (%r)" % r)
                eq((r.header("Connection") or "").lower(), "close", "Connection of the 403")
                check(b.http.conn is None, "connection kept after the 403")
                eq(m("vtn_gateway_proxy_refused_total"), 1.0, "vtn_gateway_proxy_refused_total")

            def resumption_keeps_identity():
                ctx = tls12_context(pki, ven_a)
                first = attempt(port, ctx)
                check(first.ok and first.session is not None, "first connection: %r" % first)
                before = m("vtn_gateway_tls_resumed_total")
                # resumed, and the fingerprint is still A's: B's venID is refused
                o = attempt(port, ctx, session=first.session,
                            request=poll_request(state["b_id"]))
                check(o.session_reused, "session not resumed: %r" % o)
                eq(o.status, 200, "HTTP status of the poll over the resumed session")
                eq(m("vtn_gateway_tls_resumed_total"), before + 1, "vtn_gateway_tls_resumed_total")
                v.validate(o.body, "poll reply over a resumed session")
                eq(oadr.Reply(o.body).code(), "463", "responseCode for B's venID with A's resumed session")

            def handshake_timeout():
                before = m("vtn_gateway_tls_handshakes_total", result="timeout")
                s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
                try:
                    s.sendall(b"\x16\x03\x01")  # the start of a record, then nothing
                    eq(s.recv(100), b"", "connection closed by the gateway")
                finally:
                    s.close()
                eq(m("vtn_gateway_tls_handshakes_total", result="timeout"), before + 1, "timeouts counted")
                reason_logged(r"handshake timeout")

            def failure_logs_rate_limited():
                lines0 = len(log_lines(gw, "tls_handshake_failed"))
                failed0 = m("vtn_gateway_tls_handshakes_total", result="failed")
                n = 60
                t0 = time.monotonic()
                ctx = tls12_context(pki, None)
                for _ in range(n):
                    attempt(port, ctx)
                elapsed = time.monotonic() - t0
                eq(m("vtn_gateway_tls_handshakes_total", result="failed"), failed0 + n, "failed handshakes counted")
                logged = len(log_lines(gw, "tls_handshake_failed")) - lines0
                # 10 at once, then one a second (a one-second refill at each end)
                check(logged <= 10 + int(elapsed) + 2,
                      "%d failures in %.1f s gave %d log lines" % (n, elapsed, logged))
                wait_for("a line saying how many were left out",
                         lambda: any("suppressed=" in ln for ln in log_lines(gw, "tls_handshake_failed")))

            def debug_log_and_metrics():
                fp = ven_a.fingerprint
                lines = [ln for ln in log_lines(gw, "tls_handshake") if "fingerprint=" + fp in ln]
                check(lines, "no debug tls_handshake line for %s" % fp)
                check(any("version=TLSv1.2" in ln and "cipher=" + ECC_SUITE in ln and "resumed=0" in ln
                          for ln in lines), "debug line lacks version/cipher/resumed: %s" % lines[0])
                check(any("resumed=1" in ln for ln in lines), "no debug line of a resumed session")
                check(m("vtn_gateway_tls_handshakes_total", result="ok") >= 5, "ok handshakes counted")
                check(m("vtn_gateway_tls_handshakes_total", result="failed") >= 5, "failed handshakes counted")
                eq(m("vtn_gateway_tls_config_generation"), 1.0, "generation before any reload")

            def sighup_reload_with_crl():
                b = state["b"]
                b.poll("oadrResponse", "200")  # the keep-alive connection is open and works
                conns = b.http.connects
                ctx_b = tls12_context(pki, ven_b)
                old = attempt(port, ctx_b)
                check(old.ok, "B connects before the reload: %r" % old)
                pki.revoke(ven_b)  # new CRL files, written atomically
                os.kill(gw.pid, signal.SIGHUP)
                wait_for("generation 2", lambda: m("vtn_gateway_tls_config_generation") == 2.0)
                check(log_lines(gw, "tls_reloaded"), "no tls_reloaded line")
                # new connections with B's certificate are refused ...
                refused_in_handshake(attempt(port, tls12_context(pki, ven_b)), "revoked after the reload")
                reason_logged(r"certificate revoked .*CN=ven-b")
                # ... also through an old session ticket (new ticket keys) ...
                o = attempt(port, ctx_b, session=old.session)
                refused(o, "B resuming a session from before the reload")
                # ... while B's open connection keeps working, and A still connects
                b.poll("oadrResponse", "200")
                eq(b.http.connects, conns, "B's connections (the keep-alive one survived the reload)")
                check(attempt(port, tls12_context(pki, ven_a)).ok, "A after the reload")

            def shared_ticket_keys():
                keys = os.path.join(st.tmpdir, "ticket-keys")
                subprocess.run([vtnctl, "ticket-keys", "rotate", "--file", keys], check=True,
                               stdout=subprocess.DEVNULL, timeout=WAIT)
                env = dict(pki.gateway_env(), VTN_TLS_TICKET_KEYS=keys)
                g1 = st.start_gateway(env=env, wait=False)
                g2 = st.start_gateway(env=env, wait=False)
                g3 = st.start_gateway(env=pki.gateway_env(), wait=False)  # a key of its own
                for g in (g1, g2, g3):
                    st.wait_ops(g, need_ready=False)
                check(any("ticket_keys=file" in ln for ln in log_lines(g1, "tls")),
                      "start-up line lacks ticket_keys=file")
                ven = pki.issue("ven-tickets")
                ctx = tls12_context(pki, ven)
                first = attempt(g1.ports["oadr"], ctx)
                check(first.ok and first.session is not None, "first connection: %r" % first)
                o = attempt(g2.ports["oadr"], ctx, session=first.session)
                check(o.ok and o.session_reused, "g1's ticket not resumed on g2: %r" % o)
                eq(metric_sum(st.metrics(g2), "vtn_gateway_tls_resumed_total"), 1.0,
                   "resumed handshakes on g2")
                o = attempt(g3.ports["oadr"], ctx, session=first.session)
                check(o.ok and not o.session_reused, "g1's ticket resumed on g3 (own key): %r" % o)
                # keys survive a reload, so revocation is checked on resumption
                pki.revoke(ven)
                os.kill(g2.pid, signal.SIGHUP)
                wait_for("g2 generation 2",
                         lambda: metric_sum(st.metrics(g2), "vtn_gateway_tls_config_generation") == 2.0)
                o = attempt(g2.ports["oadr"], ctx, session=first.session)
                refused(o, "a revoked VEN's ticket after the reload")
                check(not o.session_reused, "a revoked VEN's session resumed: %r" % o)
                reason_logged(r"certificate revoked .*CN=ven-tickets", proc=g2)

            def failed_reload_keeps_config():
                good = open(pki.crl_ecc, "rb").read()
                tmp = pki.crl_ecc + ".tmp"
                with open(tmp, "w") as f:
                    f.write("not a CRL\n")
                os.rename(tmp, pki.crl_ecc)
                try:
                    os.kill(gw.pid, signal.SIGHUP)
                    wait_for("a failed reload", lambda: m("vtn_gateway_tls_reloads_total", result="failed") == 1.0)
                    lines = log_lines(gw, "tls_reload_failed")
                    check(lines and pki.crl_ecc in lines[-1], "reload error does not name the file: %s" % lines)
                    eq(m("vtn_gateway_tls_config_generation"), 2.0, "generation after a failed reload")
                    check(attempt(port, tls12_context(pki, ven_a)).ok, "A after a failed reload")
                    refused(attempt(port, tls12_context(pki, ven_b)), "B after a failed reload (old config kept)")
                finally:
                    with open(tmp, "wb") as f:
                        f.write(good)
                    os.rename(tmp, pki.crl_ecc)

            def startup_errors_name_the_file():
                missing = os.path.join(pki.dir, "no-such-server.pem")
                base = {"VTN_OADR_LISTEN": "127.0.0.1:0", "VTN_API_LISTEN": "127.0.0.1:0",
                        "VTN_OPS_LISTEN": "127.0.0.1:0", "VTN_ZMQ_BIND": "tcp://127.0.0.1:0",
                        "VTN_REDIS_URL": ""}
                cases = [
                    (dict(pki.gateway_env(), VTN_TLS_CERTS="%s:%s" % (missing, pki.server_ecc.key)), 1, missing),
                    (dict(pki.gateway_env(), VTN_TLS_CLIENT_CA=os.path.join(pki.dir, "nope-ca.pem")), 1,
                     "nope-ca.pem"),
                    (dict(pki.gateway_env(), VTN_TLS_CRL=pki.client_ca), 1, "VTN_TLS_CRL: %s" % pki.client_ca),
                    (dict(pki.gateway_env(), VTN_TLS_CERTS="%s:%s" % (pki.server_ecc.pem, pki.server_rsa.key)), 1,
                     "does not match"),
                    (dict(pki.gateway_env(), VTN_TLS_PROTOCOLS="TLSv1.1"), 1, "TLSv1.1"),
                    ({"VTN_TLS_CLIENT_CA": pki.client_ca}, 2, "VTN_TLS_CERTS is empty"),
                    (dict(pki.gateway_env(), VTN_TRUSTED_PROXIES="127.0.0.1"), 2, "exclude each other"),
                ]
                for extra_env, want_rc, want_text in cases:
                    e = st._env(dict(base, **extra_env))
                    r = subprocess.run([cfg.gateway], env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       timeout=30)
                    out = r.stdout.decode(errors="replace")
                    eq(r.returncode, want_rc, "exit status with %s (output %s)" % (extra_env, out[-400:]))
                    check(want_text in out, "%r not in the start-up error: %s" % (want_text, out[-400:]))

            checks.run("ECC-only client (TLS 1.2, ECDHE-ECDSA-AES128-SHA256) gets the ECC certificate", ecc_only)
            checks.run("RSA-only client (TLS 1.2, AES128-SHA256) gets the RSA certificate", rsa_only)
            checks.run("a client offering both suites gets ECDHE", both_suites_prefers_ecc)
            checks.run("other TLS 1.2 suites are refused", other_suites_refused)
            checks.run("TLS 1.3 refused by default, works when enabled", tls13)
            checks.run("no client certificate: refused", no_certificate)
            checks.run("certificate from another CA: refused", wrong_ca)
            checks.run("expired certificate: refused", expired_cert)
            checks.run("revoked certificate (CRL): refused", revoked_cert)
            checks.run("plain HTTP on the TLS listener gets no HTTP answer", plain_http_on_tls_port)
            if checks.run("registration over TLS binds the fingerprint", registration_binds_fingerprint):
                if checks.run("a venID that is not the certificate's gets 463", wrong_ven_id_is_463):
                    checks.run("a resumed session keeps the client identity", resumption_keeps_identity)
                    checks.run("a proxy identity header over TLS is refused (403, closed)",
                               identity_headers_refused_over_tls)
            checks.run("handshake timeout closes and counts", handshake_timeout)
            checks.run("debug log and metrics of handshakes", debug_log_and_metrics)
            if "b" in state:
                checks.run("SIGHUP with a new CRL: revoked for new connections, open one keeps working",
                           sighup_reload_with_crl)
                checks.run("a failed reload keeps the old configuration", failed_reload_keeps_config)
                state["b"].close()
            checks.run("ticket keys from a file: any gateway resumes, revoked VENs do not",
                       shared_ticket_keys)
            # last: it spends the log budget the checks above read reasons from
            checks.run("failed handshake logs are rate-limited", failure_logs_rate_limited)
            checks.run("start-up errors name the setting and file", startup_errors_name_the_file)
            api.close()
            checks.keep_logs_on_failure(st)
    return checks.summary()


def poll_request(ven_id):
    body = oadr.poll(ven_id).encode()
    return (b"POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/xml\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


if __name__ == "__main__":
    sys.exit(main())
