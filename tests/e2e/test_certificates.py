#!/usr/bin/env python3
"""The management API's certificates through redis + one gateway + two
workers signing with a client CA that vtnctl creates at test time: issue from
a CSR made with `openssl req` and with a generated key (ECC and RSA), check
each certificate with the openssl CLI (fingerprint, chain, key, subject), the
VEN's fingerprint binding and its index in Redis, list/get, revoke -> the CRL
from /api/v1/crl lists the serial and `openssl verify -crl_check` refuses the
certificate, the binding is gone; request validation errors; 503 on a worker
without VTN_CA_DIR; the private key is in no log and nowhere in Redis. Then
the whole flow over mutual TLS with a TLS gateway trusting that CA: a VEN
with an API-issued certificate registers and polls, a second certificate
replaces the first, revoking refuses the VEN at once (463, also a new
registration), and the CRL from /api/v1/crl written to VTN_TLS_CRL + SIGHUP
refuses it in the handshake."""

import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Api, Checks, Stack, Validator, check, eq, install_signal_handlers, metric_sum  # noqa: E402
from vtntest import oadr, parse_args  # noqa: E402
from vtntest.tls import Cert, TlsVen, attempt, tls12_context  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

API = "/api/v1"
OPENSSL_TIMEOUT = 60


def openssl(*args, stdin=None, ok=True):
    """Runs the openssl CLI; returns (exit status, stdout + stderr as text)."""
    p = subprocess.run(["openssl"] + list(args), input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=OPENSSL_TIMEOUT)
    out = p.stdout.decode(errors="replace")
    if ok and p.returncode != 0:
        raise AssertionError("openssl %s failed (%d): %s" % (" ".join(args), p.returncode, out))
    return p.returncode, out


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def openadr_fingerprint(cert_path):
    """Last 10 bytes of `openssl x509 -fingerprint -sha256`, colon form."""
    _, out = openssl("x509", "-in", cert_path, "-noout", "-fingerprint", "-sha256")
    full = out.strip().split("=", 1)[1]
    return ":".join(full.split(":")[-10:]).upper()


def cert_field(cert_path, what):
    _, out = openssl("x509", "-in", cert_path, "-noout", "-" + what)
    return out.strip().split("=", 1)[1].strip() if "=" in out else out.strip()


def pubkey_of(path, kind):
    if kind == "cert":
        return openssl("x509", "-in", path, "-noout", "-pubkey")[1]
    if kind == "csr":
        return openssl("req", "-in", path, "-noout", "-pubkey")[1]
    return openssl("pkey", "-in", path, "-pubout")[1]


def days_valid(cert_path):
    """Validity of the certificate in days (notAfter - now), rounded."""
    na = cert_field(cert_path, "enddate")
    t = datetime.datetime.strptime(na, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.timezone.utc)
    return round((t - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400)


def make_csr(tmp, name, newkey, cn="from-the-csr"):
    key = os.path.join(tmp, name + ".key")
    csr = os.path.join(tmp, name + ".csr")
    args = ["req", "-new", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn]
    args += newkey
    openssl(*args)
    with open(csr) as f:
        return f.read(), key, csr


def find_vtnctl(explicit, gateway):
    """--vtnctl, $VTNCTL, next to the gateway in its CMake build tree
    (<build>/gateway/vtn-gateway -> <build>/tools/vtnctl), or the PATH."""
    cands = [explicit, os.environ.get("VTNCTL")]
    if gateway:
        cands.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(gateway))), "tools", "vtnctl"))
    cands.append(shutil.which("vtnctl"))
    return next((c for c in cands if c and os.access(c, os.X_OK)), None)


def main():
    def extra(ap):
        ap.add_argument("--vtnctl", help="vtnctl binary (env VTNCTL)")

    cfg, a = parse_args(__doc__.split("\n")[0], extra)
    cfg.require("gateway", "worker", "redis_server", "schema")
    vtnctl = find_vtnctl(a.vtnctl, cfg.gateway)
    if vtnctl is None:
        print("FAIL setup: vtnctl not found (pass --vtnctl, set VTNCTL, or build the vtnctl target)")
        return 1
    if not shutil.which("openssl"):
        print("FAIL setup: the openssl CLI is not on PATH")
        return 1
    install_signal_handlers()
    checks = Checks("e2e.certificates")
    with checks.processes():
        with Stack(cfg, name="e2e-certificates") as st:
            tmp = st.tmpdir
            ca_dir = os.path.join(tmp, "ca")
            subprocess.run([vtnctl, "ca", "create", "--dir", ca_dir, "--cn", "e2e client CA"],
                           check=True, stdout=subprocess.DEVNULL, timeout=60)
            ca_pem = os.path.join(ca_dir, "ca.pem")
            v = Validator(cfg.schema, workdir=tmp)
            gw = st.start_basic(workers=2, worker_env={"VTN_CA_DIR": ca_dir})
            st.wait_live_workers(gw, 2)
            api = Api("127.0.0.1", gw.ports["api"], st.api_token)
            red = st.redis()
            state = {}

            def provision(name):
                r = api.call("POST", API + "/vens", {"venName": name})
                eq(r.status, 201, "provision %s (%r)" % (name, r))
                return r.json()["venID"]

            def check_issued(r, ven_id, cn, what):
                """Common checks of a 201: the certificate against the openssl CLI,
                and the VEN's binding through the API and in Redis."""
                eq(r.status, 201, "%s (%r)" % (what, r))
                j = r.json()
                serial = j.get("serial")
                check(serial and re.fullmatch(r"[0-9A-F]+", serial), "serial %r" % serial)
                eq(r.header("Location"), "%s/certificates/%s" % (API, serial), "Location of %s" % what)
                path = write(os.path.join(tmp, "%s.pem" % serial), j["certificate"])
                eq(j.get("fingerprint"), openadr_fingerprint(path), "fingerprint of %s vs openssl" % what)
                eq(cert_field(path, "serial").upper(), serial, "serial of %s vs openssl" % what)
                rc, out = openssl("verify", "-CAfile", ca_pem, path, ok=False)
                eq(rc, 0, "openssl verify -CAfile ca.pem of %s: %s" % (what, out))
                subj = cert_field(path, "subject")
                check(subj.replace(" ", "") == "CN=" + cn.replace(" ", ""),
                      "subject of %s is %r, expected CN=%s" % (what, subj, cn))
                eq(j.get("venID"), ven_id, "venID of %s" % what)
                eq(j.get("status"), "valid", "status of %s" % what)
                eq(j.get("commonName"), cn, "commonName of %s" % what)
                # the VEN is bound to it: record and index
                rv = api.call("GET", "%s/vens/%s" % (API, ven_id))
                eq(rv.status, 200, "GET the VEN after %s" % what)
                eq(rv.json().get("fingerprint"), j["fingerprint"], "VEN fingerprint after %s" % what)
                norm = j["fingerprint"].replace(":", "")
                eq(red.cmd("GET", "vtn:venfp:" + norm), ven_id, "vtn:venfp index after %s" % what)
                return j, path

            def issue_from_csr():
                ven_id = provision("cert-ven-1")
                state["ven1"] = ven_id
                pem, key, csr = make_csr(tmp, "ven1-ec", ["-newkey", "ec", "-pkeyopt",
                                                          "ec_paramgen_curve:P-256"])
                r = api.call("POST", API + "/certificates", {"venID": ven_id, "csr": pem})
                j, path = check_issued(r, ven_id, "cert-ven-1", "issue from an ECC CSR")
                check("privateKey" not in j, "a CSR issue answered with a private key")
                eq(j.get("keyType"), "ec", "keyType of the ECC CSR certificate")
                eq(j.get("generatedKey"), False, "generatedKey of a CSR certificate")
                eq(j.get("previousFingerprint"), None, "previousFingerprint of a first certificate")
                eq(pubkey_of(path, "cert"), pubkey_of(csr, "csr"), "certificate key = CSR key")
                d = days_valid(path)
                check(824 <= d <= 825, "default validity is %d days, expected 825" % d)
                state["csr_cert"] = (j, path)
                # An RSA CSR for the same VEN, with a commonName and a validity
                pem, key, csr = make_csr(tmp, "ven1-rsa", ["-newkey", "rsa:2048"])
                r = api.call("POST", API + "/certificates",
                             {"venID": ven_id, "csr": pem, "commonName": "site 7 meter", "days": 90})
                j2, path2 = check_issued(r, ven_id, "site 7 meter", "issue from an RSA CSR")
                eq(j2.get("keyType"), "rsa", "keyType of the RSA CSR certificate")
                eq(j2.get("previousFingerprint"), j["fingerprint"], "previousFingerprint")
                d = days_valid(path2)
                check(89 <= d <= 90, "validity is %d days, expected 90" % d)
                # the earlier binding's index entry is gone
                eq(red.cmd("GET", "vtn:venfp:" + j["fingerprint"].replace(":", "")), None,
                   "index of the replaced fingerprint")
                state["rsa_csr_cert"] = (j2, path2)

            def issue_generated():
                # a VEN that registered over OpenADR (not provisioned)
                ven = Ven("127.0.0.1", gw.ports["oadr"], v, name="cert-ven-2")
                ven.register()
                ven.close()
                ven_id = ven.ven_id
                state["ven2"] = ven_id
                for kt in ("ec", "rsa"):
                    r = api.call("POST", API + "/certificates", {"venID": ven_id, "keyType": kt})
                    j, path = check_issued(r, ven_id, "cert-ven-2", "issue with a generated %s key" % kt)
                    eq(j.get("keyType"), kt, "keyType of the generated certificate")
                    eq(j.get("generatedKey"), True, "generatedKey")
                    key = j.get("privateKey") or ""
                    check("PRIVATE KEY-----" in key, "no private key PEM in the reply")
                    kpath = write(os.path.join(tmp, "gen-%s.key" % kt), key)
                    eq(pubkey_of(path, "cert"), pubkey_of(kpath, "key"), "generated key matches its certificate")
                    _, txt = openssl("x509", "-in", path, "-noout", "-text")
                    if kt == "ec":
                        check("prime256v1" in txt or "P-256" in txt, "generated ECC key is not P-256")
                    else:
                        check("2048 bit" in txt, "generated RSA key is not 2048 bits")
                    check("TLS Web Client Authentication" in txt, "no clientAuth in the certificate")
                    state["gen_" + kt] = (j, path, kpath)

            def listing():
                ven1, ven2 = state["ven1"], state["ven2"]
                all_serials = [state[k][0]["serial"] for k in ("csr_cert", "rsa_csr_cert", "gen_ec", "gen_rsa")]
                r = api.call("GET", API + "/certificates")
                eq(r.status, 200, "list (%r)" % r)
                got = [c["serial"] for c in r.json()["certificates"]]
                eq(sorted(got), sorted(all_serials), "every issued certificate listed")
                eq(r.json().get("next_cursor"), None, "next_cursor of a single page")
                r = api.call("GET", API + "/certificates?venID=" + ven1)
                eq(r.status, 200, "list by venID")
                eq(sorted(c["serial"] for c in r.json()["certificates"]), sorted(all_serials[:2]),
                   "certificates of %s" % ven1)
                check(all(c["venID"] == ven1 for c in r.json()["certificates"]), "venID filter")
                r = api.call("GET", API + "/certificates?venID=ven-00000000000000000404")
                eq(r.json().get("certificates"), [], "certificates of an unknown VEN")
                seen, url = [], API + "/certificates?limit=1"
                for _ in range(10):  # bounded
                    r = api.call("GET", url)
                    eq(r.status, 200, "list page %s" % url)
                    page = r.json()
                    check(len(page["certificates"]) <= 1, "page longer than limit=1")
                    seen += [c["serial"] for c in page["certificates"]]
                    if not page.get("next_cursor"):
                        break
                    url = API + "/certificates?limit=1&cursor=" + page["next_cursor"]
                eq(sorted(seen), sorted(all_serials), "pagination covers every certificate once")
                j = state["gen_ec"][0]
                for s in (j["serial"], j["serial"].lower()):
                    r = api.call("GET", API + "/certificates/" + s)
                    eq(r.status, 200, "GET one certificate by %s" % s)
                    g = r.json()
                    for k in ("serial", "venID", "fingerprint", "notBefore", "notAfter", "keyType", "commonName"):
                        eq(g.get(k), j.get(k), "%s of GET /certificates/{serial}" % k)
                    check("privateKey" not in g and "certificate" not in g, "GET returns PEM material")
                eq(api.call("GET", API + "/certificates/ABCDEF0123").status, 404, "GET an unknown serial")
                eq(api.call("GET", API + "/certificates/not-hex").status, 404, "GET a non-hex serial")
                eq(api.call("GET", API + "/certificates?limit=0").status, 400, "limit=0")
                eq(api.call("GET", API + "/certificates?color=red").status, 400, "unknown parameter")

            def revoke():
                ven2 = state["ven2"]
                j, path, _ = state["gen_rsa"]  # the VEN's current binding
                keep, keep_path = state["csr_cert"]  # replaced, not revoked
                crl0 = api.call("GET", API + "/crl")
                eq(crl0.status, 200, "CRL before revoking (%r)" % crl0)
                r = api.call("POST", "%s/certificates/%s/revoke" % (API, j["serial"]), {"reason": "keyCompromise"})
                eq(r.status, 200, "revoke (%r)" % r)
                rj = r.json()
                eq(rj.get("status"), "revoked", "status after revoke")
                eq(rj.get("revocationReason"), "keyCompromise", "revocationReason")
                eq(rj.get("unbound"), True, "revoking the bound certificate unbinds it")
                check(rj.get("revokedAt"), "no revokedAt")
                # the binding is gone: record and index
                eq(api.call("GET", "%s/vens/%s" % (API, ven2)).json().get("fingerprint"), None,
                   "VEN fingerprint after revoke")
                eq(red.cmd("GET", "vtn:venfp:" + j["fingerprint"].replace(":", "")), None,
                   "vtn:venfp index after revoke")
                # again: same answer, nothing more to unbind
                r = api.call("POST", "%s/certificates/%s/revoke" % (API, j["serial"]))
                eq(r.status, 200, "revoke again (%r)" % r)
                eq(r.json().get("revokedAt"), rj["revokedAt"], "revokedAt after a second revoke")
                eq(r.json().get("unbound"), False, "second revoke unbinds nothing")
                eq(api.call("GET", API + "/certificates/" + j["serial"]).json().get("status"), "revoked",
                   "GET after revoke")
                # the CRL
                r = api.call("GET", API + "/crl")
                eq(r.status, 200, "GET /crl (%r)" % r)
                check(r.header("Content-Type", "").startswith("application/x-pem-file"),
                      "CRL Content-Type %r" % r.header("Content-Type"))
                crl = write(os.path.join(tmp, "crl.pem"), r.text())
                _, txt = openssl("crl", "-in", crl, "-noout", "-text")
                check(re.search(r"Serial Number: 0*%s\b" % j["serial"], txt, re.I),
                      "revoked serial %s not in the CRL:\n%s" % (j["serial"], txt))
                check("Key Compromise" in txt, "reason not in the CRL:\n%s" % txt)
                check(keep["serial"] not in txt.upper(), "an unrevoked serial is in the CRL")
                rc, out = openssl("crl", "-in", crl, "-noout", "-CAfile", ca_pem, ok=False)
                check(rc == 0 and "verify OK" in out, "CRL signature does not verify with ca.pem: %s" % out)
                n0 = int(re.search(r"X509v3 CRL Number:\s*(\d+)", openssl("crl", "-in", write(
                    os.path.join(tmp, "crl0.pem"), crl0.text()), "-noout", "-text")[1]).group(1))
                n1 = int(re.search(r"X509v3 CRL Number:\s*(\d+)", txt).group(1))
                check(n1 > n0, "CRL number did not grow: %d then %d" % (n0, n1))
                rc, out = openssl("verify", "-crl_check", "-CAfile", ca_pem, "-CRLfile", crl, path, ok=False)
                check(rc != 0 and "revoked" in out, "openssl verify -crl_check accepted the revoked "
                      "certificate: %s" % out)
                rc, out = openssl("verify", "-crl_check", "-CAfile", ca_pem, "-CRLfile", crl, keep_path, ok=False)
                eq(rc, 0, "openssl verify -crl_check of a valid certificate: %s" % out)
                # CRL validity from ?days=
                r = api.call("GET", API + "/crl?days=2")
                eq(r.status, 200, "GET /crl?days=2")
                _, txt = openssl("crl", "-in", write(os.path.join(tmp, "crl2.pem"), r.text()), "-noout", "-nextupdate")
                nu = datetime.datetime.strptime(txt.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
                left = (nu.replace(tzinfo=datetime.timezone.utc) - datetime.datetime.now(datetime.timezone.utc))
                check(1.9 < left.total_seconds() / 86400 < 2.1, "nextUpdate of ?days=2 is %s away" % left)
                eq(api.call("GET", API + "/crl?days=0").status, 400, "CRL days=0")
                # a revoked certificate cannot be provisioned again
                r = api.call("POST", API + "/vens", {"venName": "cert-ven-3", "fingerprint": j["fingerprint"]})
                eq(r.status, 409, "provisioning with a revoked certificate's fingerprint (%r)" % r)
                # revoking a certificate that is no longer bound leaves the binding alone
                r = api.call("POST", "%s/certificates/%s/revoke" % (API, keep["serial"]), {"reason": "superseded"})
                eq(r.status, 200, "revoke a replaced certificate")
                eq(r.json().get("unbound"), False, "revoking an unbound certificate unbinds nothing")
                eq(api.call("GET", "%s/vens/%s" % (API, state["ven1"])).json().get("fingerprint"),
                   state["rsa_csr_cert"][0]["fingerprint"], "the VEN keeps its current binding")
                eq(api.call("POST", API + "/certificates/ABCDEF0123/revoke").status, 404, "revoke an unknown serial")

            def errors():
                ven1 = state["ven1"]
                pem_ec, _, _ = make_csr(tmp, "ok-ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
                cases = [
                    ({"venID": "ven-00000000000000000404", "keyType": "ec"}, 404, "no VEN"),
                    ({"venID": ven1}, 400, "either csr"),
                    ({"venID": ven1, "keyType": "ec", "csr": pem_ec}, 400, "not both"),
                    ({"venID": ven1, "keyType": "dsa"}, 400, "keyType"),
                    ({"venID": ven1, "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                                            "-----END CERTIFICATE REQUEST-----\n"}, 400, "PEM"),
                    ({"venID": ven1, "keyType": "ec", "days": 0}, 400, "days"),
                    ({"venID": ven1, "keyType": "ec", "days": 3651}, 400, "days"),
                    ({"venID": ven1, "keyType": "ec", "days": "30"}, 400, "days"),
                    ({"venID": ven1, "keyType": "ec", "commonName": "x" * 65}, 400, "commonName"),
                    ({"venID": ven1, "keyType": "ec", "color": "red"}, 400, "unknown field"),
                    ({"keyType": "ec"}, 400, "venID"),
                ]
                for body, status, word in cases:
                    r = api.call("POST", API + "/certificates", body)
                    eq(r.status, status, "POST %r" % {k: (v[:20] if isinstance(v, str) else v) for k, v in body.items()})
                    err = r.json().get("error")
                    check(isinstance(err, str) and word.lower() in err.lower(),
                          "error for %s does not mention %r: %r" % (word, word, err))
                for name, newkey, word in (("rsa1024", ["-newkey", "rsa:1024"], "2048"),
                                           ("p384", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], "P-256"),
                                           ("ed25519", ["-newkey", "ed25519"], "ED25519")):
                    pem, _, _ = make_csr(tmp, name, newkey)
                    r = api.call("POST", API + "/certificates", {"venID": ven1, "csr": pem})
                    eq(r.status, 400, "CSR with a %s key (%r)" % (name, r))
                    check(word.lower() in r.json()["error"].lower(), "reason for %s: %r" % (name, r.json()))
                # a CSR whose signature does not verify
                _, _, csr_a = make_csr(tmp, "sig-a", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
                forged = forge_csr(tmp, csr_a)
                check(forged, "could not build a CSR with a broken signature")
                if forged:
                    r = api.call("POST", API + "/certificates", {"venID": ven1, "csr": forged})
                    eq(r.status, 400, "CSR with a bad signature (%r)" % r)
                    check("signature" in r.json()["error"], "reason for a bad signature: %r" % r.json())
                r = api.http.request("POST", API + "/certificates", b'{"venID": "x", "keyType": "ec"}',
                                     {"Authorization": "Bearer " + st.api_token, "Content-Type": "text/plain"})
                eq(r.status, 415, "POST /certificates with text/plain")
                for tok in (False, "Bearer wrong"):
                    for m, p in (("GET", "/certificates"), ("POST", "/certificates"), ("GET", "/crl")):
                        r = api.call(m, API + p, token=tok)
                        eq(r.status, 401, "%s %s with Authorization %r" % (m, p, tok))
                        check(isinstance(r.json().get("error"), str), "401 without a JSON error")
                for m, p in (("DELETE", "/certificates"), ("DELETE", "/certificates/ABCDEF"),
                             ("GET", "/certificates/ABCDEF/revoke"), ("POST", "/crl")):
                    r = api.call(m, API + p)
                    eq(r.status, 405, "%s %s" % (m, p))
                    check(r.header("Allow"), "405 without Allow")
                    check(isinstance(r.json().get("error"), str), "405 without a JSON error")

            def no_ca():
                gw2 = st.start_gateway(wait=False)
                st.start_worker([gw2])
                api2 = Api("127.0.0.1", gw2.ports["api"], st.api_token)
                try:
                    for m, p, body in (("POST", "/certificates", {"venID": state["ven1"], "keyType": "ec"}),
                                       ("GET", "/certificates", None), ("GET", "/crl", None)):
                        r = api2.call(m, API + p, body)
                        eq(r.status, 503, "%s %s without VTN_CA_DIR" % (m, p))
                        eq(r.json().get("error"), "certificate issuing disabled: set VTN_CA_DIR", "503 message")
                    eq(api2.call("GET", API + "/certificates", token=False).status, 401,
                       "401 comes before 503")
                finally:
                    api2.close()

            def no_key_kept():
                for w in st.workers:
                    check("PRIVATE KEY" not in w.log_text(), "%s logged a private key" % w.name)
                for k in red.cmd("KEYS", "*"):
                    t = red.cmd("TYPE", k)
                    vals = []
                    if t == "string":
                        vals = [red.cmd("GET", k)]
                    elif t == "hash":
                        vals = red.cmd("HGETALL", k)
                    elif t == "zset":
                        vals = red.cmd("ZRANGE", k, 0, -1)
                    check(not any("PRIVATE KEY" in (x or "") for x in vals), "a private key in Redis key %s" % k)
                eq(red.cmd("EXISTS", "vtn:certs"), 1, "vtn:certs exists")

            def tls_flow():
                # The gateway's server certificate (from the same CA, as the dev PKI does)
                srv = os.path.join(tmp, "srv")
                subprocess.run([vtnctl, "cert", "issue", "--ca-dir", ca_dir, "--cn", "localhost",
                                "--out-dir", srv, "--server", "--san", "DNS:localhost,IP:127.0.0.1"],
                               check=True, stdout=subprocess.DEVNULL, timeout=60)
                crl_path = os.path.join(tmp, "vtn-crl.pem")

                def publish_crl():
                    # what an operator's job or a sidecar does: fetch, replace atomically
                    r = api.call("GET", API + "/crl")
                    eq(r.status, 200, "GET /crl (%r)" % r)
                    write(crl_path + ".tmp", r.text())
                    os.replace(crl_path + ".tmp", crl_path)

                publish_crl()
                gw_tls = st.start_gateway(env={
                    "VTN_TLS_CERTS": "%s:%s" % (os.path.join(srv, "localhost.pem"), os.path.join(srv, "localhost.key")),
                    "VTN_TLS_CLIENT_CA": ca_pem, "VTN_TLS_CRL": crl_path}, wait=False)
                st.start_worker([gw_tls], env={"VTN_CA_DIR": ca_dir})
                port = gw_tls.ports["oadr"]
                trust = types.SimpleNamespace(client_ca=ca_pem)  # what the VEN trusts for the VTN

                def issue_files(ven_id, label):
                    r = api.call("POST", API + "/certificates", {"venID": ven_id, "keyType": "ec"})
                    eq(r.status, 201, "issue %s (%r)" % (label, r))
                    j = r.json()
                    pem = write(os.path.join(tmp, label + ".pem"), j["certificate"])
                    key = write(os.path.join(tmp, label + ".key"), j["privateKey"])
                    os.chmod(key, 0o600)
                    return j, Cert("tls-ven", pem, key, j["fingerprint"], ca_dir)

                ven_id = provision("tls-ven")
                j1, c1 = issue_files(ven_id, "tls-1")
                v1 = TlsVen(port, v, trust, c1)
                v1.register()
                eq(v1.ven_id, ven_id, "venID a VEN with an API-issued certificate registers as")
                v1.poll("oadrResponse", "200")
                # a second certificate replaces the first: the old one is no longer this VEN's
                j2, c2 = issue_files(ven_id, "tls-2")
                eq(j2.get("previousFingerprint"), j1["fingerprint"], "previousFingerprint")
                v1.poll("oadrResponse", "463")
                v2 = TlsVen(port, v, trust, c2)
                v2.ven_id = ven_id
                v2.poll("oadrResponse", "200")
                # revoke: refused at once by the workers, before any CRL reload ...
                r = api.call("POST", "%s/certificates/%s/revoke" % (API, j2["serial"]), {"reason": "keyCompromise"})
                eq(r.status, 200, "revoke (%r)" % r)
                eq(r.json().get("unbound"), True, "unbound")
                v2.poll("oadrResponse", "463")
                rep = v2.send("EiRegisterParty", oadr.create_party_registration("tls-ven"),
                              "oadrCreatedPartyRegistration", "463")
                check("revoked" in (rep.get("eiResponse/responseDescription") or ""),
                      "a registration with the revoked certificate is refused as revoked: %s" % rep)
                eq(api.call("GET", "%s/vens/%s" % (API, ven_id)).json().get("fingerprint"), None,
                   "the registration did not bind the revoked certificate again")
                check(attempt(port, tls12_context(trust, c2)).handshake, "handshake before the CRL reload")
                # ... and in the handshake once the gateway has the new CRL
                publish_crl()
                os.kill(gw_tls.pid, signal.SIGHUP)
                deadline = time.monotonic() + 15
                while metric_sum(st.metrics(gw_tls), "vtn_gateway_tls_config_generation") < 2:
                    check(time.monotonic() < deadline, "the gateway did not reload after SIGHUP")
                    time.sleep(0.05)
                o = attempt(port, tls12_context(trust, c2))
                check(not o.ok and not o.handshake, "revoked certificate after the reload: %r" % o)
                # an unrevoked certificate of the same CA still connects
                check(attempt(port, tls12_context(trust, c1)).ok, "the first (replaced, not revoked) certificate")
                v1.close()
                v2.close()

            checks.run("issue from CSRs (ECC, RSA), bound to the VEN", issue_from_csr)
            if "ven1" in state:
                checks.run("issue with generated keys (ECC, RSA) for a registered VEN", issue_generated)
            if "gen_rsa" in state:
                checks.run("list, pagination, get", listing)
                checks.run("revoke, CRL, openssl verify -crl_check, binding gone", revoke)
                checks.run("request validation errors, 401, 405, 415", errors)
                checks.run("503 without VTN_CA_DIR", no_ca)
                checks.run("mutual TLS: API certificates, rotation, revoke, CRL + SIGHUP", tls_flow)
                checks.run("private keys in no log and not in Redis", no_key_kept)
            api.close()
            red.close()
            checks.keep_logs_on_failure(st)
    return checks.summary()


def forge_csr(tmp, csr_path):
    """The CSR with one bit of its signature flipped (the DER ends with the
    signature's last byte): a request whose signature does not verify. None
    if openssl cannot re-encode it."""
    der_path = os.path.join(tmp, "forged.der")
    openssl("req", "-in", csr_path, "-outform", "DER", "-out", der_path)
    with open(der_path, "rb") as f:
        der = bytearray(f.read())
    der[-1] ^= 0x01
    with open(der_path, "wb") as f:
        f.write(bytes(der))
    rc, out = openssl("req", "-inform", "DER", "-in", der_path, "-outform", "PEM", ok=False)
    if rc != 0 or "-----BEGIN CERTIFICATE REQUEST-----" not in out:
        return None
    return out[out.index("-----BEGIN CERTIFICATE REQUEST-----"):]


if __name__ == "__main__":
    sys.exit(main())
