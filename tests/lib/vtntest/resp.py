"""A tiny Redis client (RESP2 over a blocking socket) for fixtures and checks.

Replies map to Python values: simple string -> str, bulk string -> str
(UTF-8, undecodable bytes escaped), integer -> int, nil -> None, array ->
list. An error reply raises RedisError.
"""

import socket


class RedisError(Exception):
    pass


class Redis:
    def __init__(self, host="127.0.0.1", port=6379, timeout=5.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = None
        self.buf = b""

    def connect(self):
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        return self

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def _encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, bytes):
                b = a
            else:
                b = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _read(self, raw=False):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode(errors="backslashreplace")
        if kind == b"-":
            # Errors inside arrays (EXEC) are returned, top-level ones raised.
            return RedisError(rest.decode(errors="backslashreplace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n)
            return data if raw else data.decode(errors="backslashreplace")
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read(raw) for _ in range(n)]
        raise RedisError("unexpected RESP type byte %r" % kind)

    def cmd(self, *args, raw=False):
        """Sends one command and returns its reply; raises RedisError on error."""
        if self.sock is None:
            self.connect()
        self.sock.sendall(self._encode(args))
        r = self._read(raw)
        if isinstance(r, RedisError):
            raise r
        return r

    def pipeline(self, commands, raw=False):
        """Sends every command in one write; returns the replies in order.
        Error replies are returned as RedisError objects, not raised."""
        if self.sock is None:
            self.connect()
        self.sock.sendall(b"".join(self._encode(c) for c in commands))
        return [self._read(raw) for _ in commands]

    def ping(self):
        return self.cmd("PING") == "PONG"

    def snapshot(self, ignore=(), ignore_fields=None):
        """Every key with its type and DUMP payload, to compare state before and
        after a request. Keys in ignore are left out; ignore_fields maps a key
        prefix to hash fields left out of the hashes whose name starts with it
        (those are compared as their other fields)."""
        keys = sorted(self.cmd("KEYS", "*"))
        keys = [k for k in keys if k not in ignore]
        if not keys:
            return {}
        replies = self.pipeline([("DUMP", k) for k in keys], raw=True)
        out = dict(zip(keys, replies))
        for prefix, fields in (ignore_fields or {}).items():
            for k in keys:
                if k.startswith(prefix) and self.cmd("TYPE", k) == "hash":
                    h = self.cmd("HGETALL", k)
                    out[k] = sorted((f, v) for f, v in zip(h[::2], h[1::2]) if f not in fields)
        return out

    def describe(self, key):
        """A readable rendering of one key's value, for failure messages."""
        t = self.cmd("TYPE", key)
        if t == "string":
            return "%s (string) %r" % (key, self.cmd("GET", key))
        if t == "hash":
            return "%s (hash) %r" % (key, self.cmd("HGETALL", key))
        if t == "list":
            return "%s (list) %r" % (key, self.cmd("LRANGE", key, 0, 20))
        if t == "set":
            return "%s (set) %r" % (key, self.cmd("SMEMBERS", key))
        if t == "zset":
            return "%s (zset) %r" % (key, self.cmd("ZRANGE", key, 0, 20, "WITHSCORES"))
        return "%s (%s)" % (key, t)
