"""Helpers for tests that attack the VTN while a legitimate VEN works:
a VEN polling in a background thread that records every failure, and raw
client connections from a chosen loopback source address (127.0.0.0/8 is
all loopback on Linux, so one test can be several "addresses")."""

import socket
import threading
import time

from .httpc import parse_responses


class PollingVen:
    """A VEN (a vtntest Ven or TlsVen) polling every `interval` seconds on
    its keep-alive connection until stop(). Every poll must answer HTTP 200
    with a schema-valid OpenADR reply; anything else is kept in .failures."""

    def __init__(self, ven, interval=0.1):
        self.ven = ven
        self.interval = interval
        self.ok = 0
        self.failures = []
        self._stop = threading.Event()
        self._thread = None

    def register(self):
        self.ven.query()
        self.ven.register()
        self.ven.poll("oadrResponse", "200")
        return self

    def _run(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                self.ven.poll()
                self.ok += 1
            except Exception as e:  # recorded and reported by the test
                self.failures.append("%.2f s: %s" % (t0, e))
                self.ven.http.close()  # a fresh connection for the next poll
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def start(self):
        self._thread = threading.Thread(target=self._run, name="polling-ven", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops polling (bounded) and returns (polls that passed, failures)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=15.0)
        self.ven.close()
        return self.ok, list(self.failures)

    def stop_and_check(self, min_polls):
        """Stops polling; fails unless every poll passed and there were at
        least min_polls."""
        ok, failures = self.stop()
        if failures:
            raise AssertionError("the legitimate VEN failed %d times: %s"
                                 % (len(failures), failures[:3]))
        if ok < min_polls:
            raise AssertionError("the legitimate VEN polled only %d times" % ok)
        print("   legitimate VEN: %d polls, no failure" % ok)


class RawConn:
    """One TCP connection from source address `src` (port chosen by the
    kernel) for hand-made requests."""

    def __init__(self, host, port, src="127.0.0.1", timeout=10.0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.settimeout(timeout)
        self.s.bind((src, 0))
        self.s.connect((host, port))
        self.buf = b""
        self.closed = False

    def send(self, data):
        self.s.sendall(data)

    def response(self, timeout=10.0):
        """The next complete response, or None when the server closed first
        or nothing complete came within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            resps, _ = parse_responses(self.buf)
            if resps:
                r = resps[0]
                raw = self.buf
                self.buf = raw[raw.find(b"\r\n\r\n") + 4 + len(r.body):]
                return r
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return None
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
                return None
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk

    def wait_closed(self, timeout=10.0):
        """True when the server closes the connection within timeout (what
        it sent first is kept)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
                break
            if not chunk:
                self.closed = True
                break
            self.buf += chunk
        return self.closed

    def close(self):
        self.s.close()


def raw_poll(ven_id):
    """A complete HTTP/1.1 oadrPoll request from ven_id: (bytes, body length)."""
    from . import oadr
    body = oadr.poll(ven_id).encode()
    head = ("POST %sOadrPoll HTTP/1.1\r\nHost: vtn\r\nContent-Type: application/xml\r\n"
            "Content-Length: %d\r\n\r\n" % (oadr.SERVICE_PATH, len(body))).encode()
    return head + body, len(body)


def held_request(port, req, timeout=0.5, tries=2):
    """Sends req on new connections until one gets no answer within timeout
    and returns that connection, still open (None if every one was answered).
    With two workers, one of them SIGSTOPped, the gateway's LRU queue
    alternates: within two requests one reaches the stopped worker, and the
    unanswered one is the one it holds. The answers that do come must be
    200 (AssertionError otherwise)."""
    for _ in range(tries):
        c = RawConn("127.0.0.1", port)
        c.send(req)
        r = c.response(timeout=timeout)
        if r is None:
            return c
        c.close()
        if r.status != 200:
            raise AssertionError("a request the running worker answered: status %d" % r.status)
    return None
