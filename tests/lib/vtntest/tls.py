"""TLS helpers for the tests: a PKI made at test time with vtnctl (and the
openssl CLI for the one thing vtnctl refuses to make, an expired
certificate), TLS clients built on the ssl module, and a VEN speaking
OpenADR over mutual TLS.

Nothing here starts a server; the gateway gets its settings from
Pki.gateway_env()."""

import http.client
import os
import socket
import ssl
import subprocess

from .httpc import Http, parse_responses
from .ven import Ven

# OpenSSL names of the two OpenADR 2.0b suites
ECC_SUITE = "ECDHE-ECDSA-AES128-SHA256"
RSA_SUITE = "AES128-SHA256"


def find_vtnctl(explicit=None, gateway=None):
    """vtnctl from an argument, $VTNCTL, next to the gateway in its CMake
    build tree (<build>/gateway/vtn-gateway -> <build>/tools/vtnctl), or
    the PATH."""
    cands = [explicit, os.environ.get("VTNCTL")]
    if gateway:
        cands.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(gateway))),
                                  "tools", "vtnctl"))
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    for d in os.environ.get("PATH", "").split(os.pathsep):
        c = os.path.join(d, "vtnctl")
        if os.access(c, os.X_OK):
            return c
    raise SystemExit("vtnctl not found: pass --vtnctl, set VTNCTL, or build the vtnctl target")


class Cert:
    def __init__(self, name, pem, key, fingerprint, ca):
        self.name = name
        self.pem = pem
        self.key = key
        self.fingerprint = fingerprint  # OpenADR colon form
        self.ca = ca  # CA directory that issued it

    def __repr__(self):
        return "<Cert %s %s>" % (self.name, self.fingerprint)


class Pki:
    """Two trusted client CAs (ECC P-256 and RSA 2048, like the OpenADR
    PKI's two roots) that also issue the gateway's localhost certificates,
    one untrusted CA, a CRL per trusted CA, and VEN certificates on demand."""

    def __init__(self, vtnctl, directory):
        self.vtnctl = vtnctl
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_ecc = os.path.join(directory, "ca-ecc")
        self.ca_rsa = os.path.join(directory, "ca-rsa")
        self.ca_other = os.path.join(directory, "ca-other")
        self.run("ca", "create", "--dir", self.ca_ecc, "--key", "ec", "--cn", "test client CA (ECC)")
        self.run("ca", "create", "--dir", self.ca_rsa, "--key", "rsa", "--cn", "test client CA (RSA)")
        self.run("ca", "create", "--dir", self.ca_other, "--key", "ec", "--cn", "some other CA")
        san = "DNS:localhost,IP:127.0.0.1"
        self.server_ecc = self.issue("server-ecc", self.ca_ecc, "ec", server=san)
        self.server_rsa = self.issue("server-rsa", self.ca_rsa, "rsa", server=san)
        self.client_ca = os.path.join(directory, "client-ca.pem")
        with open(self.client_ca, "wb") as out:
            for ca in (self.ca_ecc, self.ca_rsa):
                with open(os.path.join(ca, "ca.pem"), "rb") as f:
                    out.write(f.read())
        self.crl_ecc = os.path.join(directory, "crl-ecc.pem")
        self.crl_rsa = os.path.join(directory, "crl-rsa.pem")
        self.publish_crls()

    def run(self, *args):
        r = subprocess.run([self.vtnctl] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        if r.returncode != 0:
            raise RuntimeError("vtnctl %s failed: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
        return r.stdout.decode()

    def issue(self, name, ca=None, key="ec", server=None):
        """A certificate and key signed by ca (default: the ECC CA)."""
        ca = ca or self.ca_ecc
        args = ["cert", "issue", "--ca-dir", ca, "--cn", name, "--out-dir", self.dir, "--key", key]
        if server:
            args += ["--server", "--san", server]
        out = self.run(*args)
        fp = None
        for line in out.splitlines():
            if line.startswith("fingerprint"):
                fp = line.split()[1]
        return Cert(name, os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key"), fp, ca)

    def expired(self, name, ca=None):
        """A certificate valid in January 2020 only, signed by a trusted CA
        (vtnctl refuses to make one; the openssl CLI's `ca` command can)."""
        ca = ca or self.ca_ecc
        work = os.path.join(self.dir, "openssl-ca")
        os.makedirs(work, exist_ok=True)
        index, serial = os.path.join(work, "index.txt"), os.path.join(work, "serial")
        if not os.path.exists(index):
            open(index, "w").close()
            with open(serial, "w") as f:
                f.write("1000\n")
        cnf = os.path.join(work, "ca.cnf")
        with open(cnf, "w") as f:
            f.write("[ca]\ndefault_ca = tca\n[tca]\ndatabase = %s\nnew_certs_dir = %s\nserial = %s\n"
                    "default_md = sha256\npolicy = pol\nx509_extensions = ext\nunique_subject = no\n"
                    "[pol]\ncommonName = supplied\n[ext]\nbasicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth,serverAuth\n"
                    % (index, work, serial))
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(work, name + ".csr")
        pem = os.path.join(self.dir, name + ".pem")
        for argv in (["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key],
                     ["openssl", "req", "-new", "-key", key, "-subj", "/CN=" + name, "-out", csr],
                     ["openssl", "ca", "-batch", "-config", cnf, "-startdate", "20200101000000Z",
                      "-enddate", "20200201000000Z", "-cert", os.path.join(ca, "ca.pem"),
                      "-keyfile", os.path.join(ca, "ca.key"), "-notext", "-in", csr, "-out", pem]):
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            if r.returncode != 0:
                raise RuntimeError("%s failed: %s" % (" ".join(argv[:2]), r.stderr.decode(errors="replace")))
        fp = self.run("fingerprint", pem).split()[0]
        return Cert(name, pem, key, fp, ca)

    def revoke(self, cert, publish=True):
        self.run("cert", "revoke", "--ca-dir", cert.ca, "--cert", cert.pem, "--reason", "keyCompromise")
        if publish:
            self.publish_crls()

    def publish_crls(self):
        """Writes both CRLs (vtnctl replaces the files atomically)."""
        self.run("crl", "publish", "--ca-dir", self.ca_ecc, "--out", self.crl_ecc)
        self.run("crl", "publish", "--ca-dir", self.ca_rsa, "--out", self.crl_rsa)

    def gateway_env(self, protocols=None, crl=True, handshake_timeout=None):
        e = {
            "VTN_TLS_CERTS": "%s:%s,%s:%s" % (self.server_ecc.pem, self.server_ecc.key,
                                              self.server_rsa.pem, self.server_rsa.key),
            "VTN_TLS_CLIENT_CA": self.client_ca,
        }
        if crl:
            e["VTN_TLS_CRL"] = "%s,%s" % (self.crl_ecc, self.crl_rsa)
        if protocols:
            e["VTN_TLS_PROTOCOLS"] = protocols
        if handshake_timeout:
            e["VTN_TLS_HANDSHAKE_TIMEOUT"] = handshake_timeout
        return e


# --- clients ------------------------------------------------------------------

def client_context(pki, cert=None, ciphers=None, min_version=None, max_version=None):
    """An SSL context that verifies the gateway's certificate against the
    test CAs (name localhost) and presents cert (a Cert, or None)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.client_ca)
    ctx.check_hostname = True
    if cert is not None:
        ctx.load_cert_chain(cert.pem, cert.key)
    if ciphers:
        ctx.set_ciphers(ciphers)
    ctx.minimum_version = min_version or ssl.TLSVersion.TLSv1_2
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def ven_server_context(cert, client_ca, tls13=False):
    """A push-mode VEN's HTTPS endpoint: its server certificate (a Cert), the
    VTN's client certificate required from client_ca, the 2.0b suites (TLS
    1.2; 1.3 too with tls13)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert.pem, cert.key)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_ciphers(ECC_SUITE + ":" + RSA_SUITE)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3 if tls13 else ssl.TLSVersion.TLSv1_2
    return ctx


def tls12_context(pki, cert=None, ciphers=ECC_SUITE + ":" + RSA_SUITE):
    return client_context(pki, cert, ciphers, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)


def tls13_context(pki, cert=None):
    return client_context(pki, cert, None, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)


class Outcome:
    """What a connection attempt came to."""

    def __init__(self):
        self.handshake = False  # the client's side of the handshake completed
        self.status = None  # HTTP status of the request sent after it, if any
        self.error = None  # why it failed
        self.version = None
        self.cipher = None
        self.server_cert_der = None
        self.session = None
        self.session_reused = None
        self.body = None  # body of the response

    @property
    def ok(self):
        return self.status is not None

    def __repr__(self):
        return "<Outcome handshake=%s status=%s version=%s cipher=%s error=%s>" % (
            self.handshake, self.status, self.version, self.cipher, self.error)


def attempt(port, ctx, request=None, session=None, timeout=10.0):
    """Connects to 127.0.0.1:port with ctx, completes the handshake and
    sends request (bytes; default a GET the gateway answers 404), reading
    one response (status and body). Under TLS 1.3 the server refuses a client certificate
    after the client thinks the handshake is done, so a failure may show
    only at the read: Outcome.ok is the end-to-end answer."""
    o = Outcome()
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s = None
    try:
        s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        o.handshake = True
        o.version = s.version()
        o.cipher = s.cipher()[0] if s.cipher() else None
        o.server_cert_der = s.getpeercert(binary_form=True)
        o.session_reused = s.session_reused
        s.sendall(request or b"GET /probe HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        resps = []
        while not resps:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            resps, _ = parse_responses(data)
        if resps:
            o.status = resps[0].status
            o.body = resps[0].body
        else:
            o.error = "no HTTP response (%r)" % data[:60]
        o.session = s.session
    except (ssl.SSLError, OSError) as e:
        o.error = "%s: %s" % (type(e).__name__, e)
    finally:
        (s or raw).close()
    return o


class _LoopbackHTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 for a certificate issued to localhost."""

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(raw, server_hostname="localhost")


class TlsHttp(Http):
    """Http over TLS with a client certificate; reconnects like Http."""

    def __init__(self, host, port, ctx, timeout=10.0):
        super().__init__(host, port, timeout)
        self.ctx = ctx

    def _ensure(self):
        if self.conn is None:
            self.conn = _LoopbackHTTPS("localhost", self.port, timeout=self.timeout, context=self.ctx)
            self.conn.connect()
            self.connects += 1

    @property
    def sock(self):
        return self.conn.sock if self.conn is not None else None


class TlsVen(Ven):
    """A VEN over mutual TLS: the same OpenADR checks as Ven (HTTP 200, XML,
    every reply validated against the official schema)."""

    def __init__(self, port, validator, pki, cert, name=None, ctx=None, timeout=10.0):
        super().__init__("127.0.0.1", port, validator, name=name or cert.name, timeout=timeout)
        self.cert = cert
        self.http = TlsHttp("127.0.0.1", port, ctx or tls12_context(pki, cert), timeout=timeout)
