#!/usr/bin/env python3
"""Trusted-proxy mode with Debian's nginx in front of the gateway, running
deploy/nginx/openvtn.conf (paths and ports replaced): a VEN with a client
certificate registers through nginx and its fingerprint is bound (checked
through the management API); a VEN cannot claim another VEN's certificate by
sending the headers itself (nginx replaces them); nginx refuses clients
without a valid certificate; and the gateway refuses the identity headers,
or any OpenADR request, from an address that is not a trusted proxy (403,
connection closed), and answers a proxy that sends no or a bad identity.
Every OpenADR reply is validated against the official schema."""

import os
import pwd
import re
import shutil
import socket
import ssl
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Api, Checks, Stack, Validator, check, eq, install_signal_handlers, metric_sum  # noqa: E402
from vtntest import oadr, parse_args  # noqa: E402
from vtntest.httpc import http_request_bytes, parse_responses  # noqa: E402
from vtntest.stack import Proc, free_ports  # noqa: E402
from vtntest.tls import RSA_SUITE, Pki, TlsVen, attempt, client_context, find_vtnctl, tls12_context  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NGINX_CONF = os.path.join(REPO, "deploy", "nginx", "openvtn.conf")
API = "/api/v1"
CERT_HDR = "X-Client-Cert"
FP_HDR = "X-Client-Fingerprint"
UNTRUSTED_SRC = "127.0.0.2"  # loopback, but not in VTN_TRUSTED_PROXIES
WAIT = 15.0


def nginx_conf(pki, tmp, listen_port, gw_port):
    """deploy/nginx/openvtn.conf with the test's paths and ports, inside a
    minimal main configuration that keeps every file in tmp."""
    with open(NGINX_CONF) as f:
        site = f.read()
    reps = [
        (r"/etc/openvtn/pki/", pki.dir + "/"),
        (r"listen 8443 ssl;", "listen 127.0.0.1:%d ssl;" % listen_port),
        (r"server 127\.0\.0\.1:8080;", "server 127.0.0.1:%d;" % gw_port),
    ]
    for pat, rep in reps:
        site, n = re.subn(pat, lambda _m: rep, site)
        check(n >= 1, "deploy/nginx/openvtn.conf: %r not found (the test edits it)" % pat)
    site_path = os.path.join(tmp, "openvtn.conf")
    with open(site_path, "w") as f:
        f.write(site)
    user = ""
    if os.geteuid() == 0:  # nginx would switch its workers to nobody:nobody
        user = "user %s;\n" % pwd.getpwuid(0).pw_name
    main = ("%sworker_processes 1;\nevents { worker_connections 512; }\nhttp {\n"
            "    access_log %s/access.log;\n"
            "    client_body_temp_path %s/body;\n    proxy_temp_path %s/proxy;\n"
            "    fastcgi_temp_path %s/fastcgi;\n    uwsgi_temp_path %s/uwsgi;\n    scgi_temp_path %s/scgi;\n"
            "    include %s;\n}\n" % ((user, tmp) + (tmp,) * 5 + (site_path,)))
    path = os.path.join(tmp, "nginx.conf")
    with open(path, "w") as f:
        f.write(main)
    return path


def start_nginx(st, pki, gw_port, nginx_bin):
    tmp = os.path.join(st.tmpdir, "nginx")
    os.makedirs(tmp, exist_ok=True)
    for attempt_no in range(3):
        port = free_ports(1)[0]
        conf = nginx_conf(pki, tmp, port, gw_port)
        argv = [nginx_bin, "-c", conf, "-p", tmp, "-g",
                "daemon off; pid %s/nginx.pid; error_log stderr;" % tmp]
        p = Proc("nginx", argv, st._env({}), os.path.join(st.tmpdir, "nginx.log"), {"port": port})
        st.procs.append(p)
        deadline = time.monotonic() + WAIT
        while p.alive() and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return p
            except OSError:
                time.sleep(0.05)
        if p.alive():
            raise RuntimeError("nginx did not listen within %.0f s" % WAIT)
        p.stop()
        if attempt_no < 2 and re.search(r"address already in use", p.log_text(), re.I):
            st.procs.remove(p)
            continue
        raise RuntimeError("nginx exited with status %s: %s" % (p.exit_code, p.log_text()[-1500:]))
    raise RuntimeError("nginx: no free port after 3 tries")


def direct(port, headers, src=UNTRUSTED_SRC, ven_id="ven-00000000000000000000"):
    """One OadrPoll straight to the gateway's OpenADR listener from src.
    Returns (response, closed_by_server)."""
    body = oadr.poll(ven_id)
    data = http_request_bytes("POST", oadr.SERVICE_PATH + "OadrPoll", body,
                              [("Content-Type", "application/xml")] + list(headers))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(WAIT)
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(data)
        out, closed = b"", False
        deadline = time.monotonic() + WAIT
        resps = []
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            out += chunk
            resps, _ = parse_responses(out)
            if resps and resps[0].header("Connection", "").lower() != "close":
                break  # keep-alive answer: the server will not close
        check(resps, "no response from the gateway: %r" % out[:200])
        return resps[0], closed
    finally:
        s.close()


def escaped_pem(path):
    with open(path) as f:
        return urllib.parse.quote(f.read(), safe="")


def main():
    def extra(ap):
        ap.add_argument("--vtnctl", help="vtnctl binary (env VTNCTL; default: next to the gateway)")
        ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx", help="nginx binary")

    cfg, a = parse_args(__doc__.split("\n")[0], extra)
    cfg.require("gateway", "worker", "redis_server", "schema")
    if not os.access(a.nginx, os.X_OK):
        print("nginx not found (%s): deploy/setup.sh installs nginx-light" % a.nginx)
        return 1
    vtnctl = find_vtnctl(a.vtnctl, cfg.gateway)
    install_signal_handlers()
    checks = Checks("e2e.tls_proxy")
    with checks.processes():
        with Stack(cfg, name="e2e-tls-proxy") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            pki = Pki(vtnctl, os.path.join(st.tmpdir, "pki"))
            ven_a = pki.issue("ven-a")
            ven_b = pki.issue("ven-b")
            ven_rsa = pki.issue("ven-rsa", pki.ca_rsa, "rsa")
            revoked = pki.issue("ven-revoked")
            pki.revoke(revoked)
            with open(os.path.join(pki.dir, "crl.pem"), "wb") as out:
                for p in (pki.crl_ecc, pki.crl_rsa):
                    with open(p, "rb") as f:
                        out.write(f.read())

            st.start_redis()
            gw = st.start_gateway(env={"VTN_TRUSTED_PROXIES": "127.0.0.1/32, ::1",
                                       "VTN_PROXY_CERT_HEADER": CERT_HDR,
                                       "VTN_PROXY_FINGERPRINT_HEADER": FP_HDR}, wait=False)
            st.start_worker([gw])
            ngx = start_nginx(st, pki, gw.ports["oadr"], a.nginx)
            nport, gport = ngx.ports["port"], gw.ports["oadr"]
            api = Api("127.0.0.1", gw.ports["api"], st.api_token)
            state = {}

            def refused_count():
                return metric_sum(st.metrics(gw), "vtn_gateway_proxy_refused_total")

            def registers_through_nginx():
                ven = TlsVen(nport, v, pki, ven_a)
                ven.register()
                ven.poll("oadrResponse", "200")
                state["a_id"] = ven.ven_id
                r = api.call("GET", "%s/vens/%s" % (API, ven.ven_id))
                eq(r.status, 200, "GET the VEN (%r)" % r)
                eq(r.json().get("fingerprint"), ven_a.fingerprint, "fingerprint bound through the proxy")
                ven.poll("oadrResponse", "200")
                eq(ven.http.connects, 1, "connections to nginx (keep-alive)")
                ven.close()

            def rsa_suite_through_nginx():
                ctx = client_context(pki, ven_rsa, RSA_SUITE, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
                ven = TlsVen(nport, v, pki, ven_rsa, ctx=ctx)
                ven.register()
                r = api.call("GET", "%s/vens/%s" % (API, ven.ven_id))
                eq(r.json().get("fingerprint"), ven_rsa.fingerprint, "fingerprint of the RSA VEN")
                ven.close()

            def client_headers_replaced_by_nginx():
                b = TlsVen(nport, v, pki, ven_b)
                b.register()
                # B's connection, A's certificate and fingerprint in headers of its own:
                # nginx replaces them with B's, so A's venID is refused ...
                forged = {CERT_HDR: escaped_pem(ven_a.pem), FP_HDR: ven_a.fingerprint}
                r = b.http.request("POST", oadr.SERVICE_PATH + "OadrPoll", oadr.poll(state["a_id"]),
                                   dict(forged, **{"Content-Type": "application/xml"}))
                eq(r.status, 200, "HTTP status (%r)" % r)
                v.validate(r.body, "poll reply with forged headers")
                eq(oadr.Reply(r.body).code(), "463", "responseCode for A's venID on B's certificate")
                # ... and B's own works (the cleared fingerprint header did not reach the gateway)
                r = b.http.request("POST", oadr.SERVICE_PATH + "OadrPoll", oadr.poll(b.ven_id),
                                   dict(forged, **{"Content-Type": "application/xml"}))
                eq(r.status, 200, "HTTP status (%r)" % r)
                v.validate(r.body, "poll reply of B with forged headers")
                eq(oadr.Reply(r.body).code(), "200", "responseCode for B's own venID")
                b.close()

            def nginx_refuses_bad_clients():
                o = attempt(nport, tls12_context(pki, None))
                eq(o.status, 400, "nginx's answer without a client certificate (%r)" % o)
                o = attempt(nport, tls12_context(pki, revoked))
                check(o.status == 400 or not o.handshake, "revoked certificate through nginx: %r" % o)

            def direct_with_headers_refused():
                n0 = refused_count()
                for hdrs, what in (([(CERT_HDR, escaped_pem(ven_a.pem))], "certificate header"),
                                   ([(FP_HDR, ven_a.fingerprint)], "fingerprint header"),
                                   ([(CERT_HDR.lower(), "")], "empty certificate header"),
                                   ([], "no header")):
                    r, closed = direct(gport, hdrs)
                    eq(r.status, 403, "direct request from %s with %s (%r)" % (UNTRUSTED_SRC, what, r))
                    eq((r.header("Connection") or "").lower(), "close", "Connection header of the 403")
                    check(closed, "connection left open after the 403 (%s)" % what)
                eq(refused_count(), n0 + 4, "vtn_gateway_proxy_refused_total")
                # and nothing reached a worker: the VEN's record is unchanged
                r = api.call("GET", "%s/vens/%s" % (API, state["a_id"]))
                eq(r.json().get("fingerprint"), ven_a.fingerprint, "A's fingerprint")

            def proxy_without_identity():
                # from the trusted address (as if we were the proxy)
                r, closed = direct(gport, [], src="127.0.0.1")
                eq(r.status, 403, "trusted proxy without an identity header (%r)" % r)
                check(closed, "connection left open after the 403")
                r, closed = direct(gport, [(CERT_HDR, "not%20a%20certificate")], src="127.0.0.1")
                eq(r.status, 400, "trusted proxy with a bad certificate header (%r)" % r)
                r, closed = direct(gport, [(CERT_HDR, escaped_pem(ven_a.pem)), (FP_HDR, ven_b.fingerprint)],
                                   src="127.0.0.1")
                eq(r.status, 400, "certificate and fingerprint headers that disagree (%r)" % r)
                r, closed = direct(gport, [(CERT_HDR, escaped_pem(ven_a.pem)), (CERT_HDR, escaped_pem(ven_b.pem))],
                                   src="127.0.0.1")
                eq(r.status, 400, "two certificate headers (%r)" % r)
                # a verified fingerprint alone is an identity too (lower case, no colons)
                r, closed = direct(gport, [(FP_HDR, ven_a.fingerprint.replace(":", "").lower())],
                                   src="127.0.0.1", ven_id=state["a_id"])
                eq(r.status, 200, "fingerprint header from the proxy (%r)" % r)
                v.validate(r.body, "poll reply for a fingerprint header")
                eq(oadr.Reply(r.body).code(), "200", "responseCode of A's poll by fingerprint header")

            if checks.run("a VEN registers through nginx and its fingerprint is bound", registers_through_nginx):
                checks.run("RSA-only client through nginx", rsa_suite_through_nginx)
                checks.run("identity headers a client sends are replaced by nginx", client_headers_replaced_by_nginx)
                checks.run("direct requests from an untrusted address are refused (403, closed)",
                           direct_with_headers_refused)
                checks.run("a proxy must send one valid identity", proxy_without_identity)
            checks.run("nginx refuses a missing or revoked client certificate", nginx_refuses_bad_clients)
            api.close()
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
