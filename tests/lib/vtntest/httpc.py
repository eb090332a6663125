"""HTTP clients for the tests: a keep-alive client over http.client, and raw
socket helpers for framing checks (pipelining, limits, Connection: close)."""

import http.client
import json
import socket
import time


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body  # bytes

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def json(self):
        return json.loads(self.body.decode())

    def text(self):
        return self.body.decode(errors="replace")

    def __repr__(self):
        b = self.body[:600].decode(errors="replace")
        return "<HTTP %d %s: %s>" % (self.status, self.reason, b)


class Http:
    """One keep-alive connection. request() reconnects when the server closed
    the previous one (after Connection: close), as a VEN library would."""

    def __init__(self, host, port, timeout=10.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None
        self.connects = 0  # how many TCP connections this client opened

    def _ensure(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connects += 1

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, method, path, body=None, headers=None):
        self._ensure()
        hdrs = dict(headers or {})
        if body is not None and isinstance(body, str):
            body = body.encode()
        try:
            self.conn.request(method, path, body=body, headers=hdrs)
            r = self.conn.getresponse()
            data = r.read()
        except Exception:
            self.close()
            raise
        resp = Response(r.status, r.reason, r.getheaders(), data)
        if r.will_close:
            self.close()
        return resp

    def post_xml(self, path, body, content_type="application/xml"):
        return self.request("POST", path, body, {"Content-Type": content_type})

    def get(self, path, headers=None):
        return self.request("GET", path, None, headers)


class Api:
    """The JSON management API with a bearer token."""

    def __init__(self, host, port, token, timeout=10.0):
        self.http = Http(host, port, timeout)
        self.token = token

    def close(self):
        self.http.close()

    def call(self, method, path, obj=None, token=True):
        headers = {}
        if token is True and self.token:
            headers["Authorization"] = "Bearer " + self.token
        elif isinstance(token, str):
            headers["Authorization"] = token
        body = None
        if obj is not None:
            body = json.dumps(obj).encode()
            headers["Content-Type"] = "application/json"
        return self.http.request(method, path, body, headers)


def http_get(host, port, path, timeout=2.0):
    """One GET on a fresh connection; returns a Response or raises OSError."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return Response(r.status, r.reason, r.getheaders(), r.read())
    finally:
        c.close()


# --- raw framing ---------------------------------------------------------

def raw_exchange(host, port, data, timeout=5.0, read_until_close=True, expect=None):
    """Writes data in one sendall and reads what comes back.

    Stops when the server closes (read_until_close), or when `expect`
    complete responses were parsed, or at the timeout. Returns (bytes,
    closed): closed is True when the server closed the connection."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = b""
    closed = False
    deadline = time.monotonic() + timeout
    try:
        s.sendall(data)
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            out += chunk
            if expect is not None and not read_until_close:
                try:
                    if len(parse_responses(out)[0]) >= expect:
                        break
                except ValueError:
                    pass
    finally:
        s.close()
    return out, closed


def parse_responses(data):
    """Splits a byte stream into complete HTTP/1.1 responses.

    Returns (responses, rest): a list of Response and the unparsed tail.
    Handles Content-Length and chunked bodies; raises ValueError on garbage."""
    out = []
    while data:
        i = data.find(b"\r\n\r\n")
        if i < 0:
            break
        head = data[:i].decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError("not an HTTP response: %r" % head[0])
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        r = Response(status, reason, headers, b"")
        pos = i + 4
        te = (r.header("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            body = b""
            while True:
                j = data.find(b"\r\n", pos)
                if j < 0:
                    return out, data
                size = int(data[pos:j].split(b";")[0], 16)
                if size == 0:
                    k = data.find(b"\r\n\r\n", j)
                    if k < 0:
                        return out, data
                    pos = k + 4
                    break
                if len(data) < j + 2 + size + 2:
                    return out, data
                body += data[j + 2:j + 2 + size]
                pos = j + 2 + size + 2
            r.body = body
        else:
            n = int(r.header("Content-Length") or "0")
            if len(data) < pos + n:
                break
            r.body = data[pos:pos + n]
            pos += n
        out.append(r)
        data = data[pos:]
    return out, data


def http_request_bytes(method, path, body=b"", headers=(), host="127.0.0.1"):
    """Builds one request as bytes; headers is a list of (name, value)."""
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host]
    names = {k.lower() for k, _ in headers}
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
