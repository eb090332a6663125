#!/usr/bin/env python3
"""HTTP-level behaviour of the real gateway (with one worker behind it):
status codes for bad requests, limits, keep-alive, pipelining order,
Connection: close, and the ops endpoints."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import (Checks, Http, Reply, Stack, Validator, check, eq, http_request_bytes,  # noqa: E402
                     install_signal_handlers, parse_args, parse_responses, raw_exchange)
from vtntest import oadr  # noqa: E402

MAX_BODY = 65536
MAX_HEADER = 8192
HEADER_TIMEOUT_MS = 1500
IDLE_TIMEOUT_MS = 2500
POLL = oadr.SERVICE_PATH + "OadrPoll"
REG = oadr.SERVICE_PATH + "EiRegisterParty"


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server", "schema")
    install_signal_handlers()
    checks = Checks("e2e.http")
    with checks.processes():
        with Stack(cfg, name="e2e-http") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            gw = st.start_basic(workers=1, gateway_env={"VTN_MAX_BODY_BYTES": str(MAX_BODY),
                                                        "VTN_MAX_HEADER_BYTES": str(MAX_HEADER),
                                                        "VTN_HEADER_TIMEOUT": "%dms" % HEADER_TIMEOUT_MS,
                                                        "VTN_IDLE_TIMEOUT": "%dms" % IDLE_TIMEOUT_MS})
            port = gw.ports["oadr"]

            def one(req, **kw):
                data, closed = raw_exchange("127.0.0.1", port, req, **kw)
                resps, rest = parse_responses(data)
                return resps, rest, closed

            def not_found():
                for path in ("/nope", "/OpenADR2/Simple/2.0b/EiFrobnicate", "/OpenADR2/Simple/2.0b/"):
                    with Http("127.0.0.1", port) as h:
                        r = h.post_xml(path, oadr.query_registration())
                        eq(r.status, 404, "POST %s" % path)

            def method_not_allowed():
                for m in ("GET", "PUT", "DELETE"):
                    with Http("127.0.0.1", port) as h:
                        r = h.request(m, POLL)
                        eq(r.status, 405, "%s %s" % (m, POLL))
                        check("POST" in (r.header("Allow") or ""), "405 without Allow: POST (%r)" % r.headers)

            def unsupported_media_type():
                for ct in ("text/plain", "application/json", None):
                    with Http("127.0.0.1", port) as h:
                        hdrs = {"Content-Type": ct} if ct else {}
                        r = h.request("POST", POLL, oadr.poll("ven-x"), hdrs)
                        eq(r.status, 415, "POST with Content-Type %r" % ct)
                # parameters and text/xml are fine
                for ct in ("application/xml; charset=utf-8", "text/xml", "Application/XML"):
                    with Http("127.0.0.1", port) as h:
                        r = h.post_xml(REG, oadr.query_registration(), content_type=ct)
                        eq(r.status, 200, "POST with Content-Type %r" % ct)
                        v.validate(r.body, "query registration reply")

            def body_too_large():
                body = b"<a>" + b"x" * (MAX_BODY + 100) + b"</a>"
                req = http_request_bytes("POST", POLL, body, [("Content-Type", "application/xml")])
                resps, _, closed = one(req, timeout=5.0)
                check(resps, "no response to a %d-byte body" % len(body))
                eq(resps[0].status, 413, "status for a body over VTN_MAX_BODY_BYTES")
                check(closed, "connection left open after 413")
                # a body of exactly the limit is read (and then refused as XML, not as too large)
                body = b"x" * MAX_BODY
                req = http_request_bytes("POST", POLL, body, [("Content-Type", "application/xml")])
                resps, _, _ = one(req, timeout=5.0, read_until_close=False, expect=1)
                check(resps and resps[0].status != 413, "a body of exactly the limit got %r" % resps[:1])

            def chunked_body_too_large():
                chunk = b"x" * 16384
                body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY // len(chunk) + 2))
                req = http_request_bytes("POST", POLL, body + b"0\r\n\r\n",
                                         [("Content-Type", "application/xml"), ("Transfer-Encoding", "chunked")])
                resps, _, closed = one(req, timeout=5.0)
                check(resps, "no response to an oversized chunked body")
                eq(resps[0].status, 413, "status for a chunked body over the limit")
                check(closed, "connection left open after 413")

            def header_too_large():
                req = http_request_bytes("POST", POLL, oadr.poll("ven-x"),
                                         [("Content-Type", "application/xml"), ("X-Filler", "a" * (MAX_HEADER + 10))])
                resps, _, closed = one(req, timeout=5.0)
                check(resps, "no response to an oversized header")
                eq(resps[0].status, 431, "status for headers over VTN_MAX_HEADER_BYTES")
                check(closed, "connection left open after 431")

            def bad_request():
                for raw in (b"GARBAGE\r\n\r\n", b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
                            # CVE-2023-30589 style: CR inside a header value
                            b"POST " + POLL.encode()
                            + b" HTTP/1.1\r\nHost: a\r\nX-Abc: \rxTransfer-Encoding: chunked\r\n\r\n",
                            # bare LF line ends
                            b"POST " + POLL.encode() + b" HTTP/1.1\nHost: a\nContent-Length: 0\n\n"):
                    resps, _, closed = one(raw, timeout=5.0)
                    check(resps, "no response to %r" % raw[:60])
                    eq(resps[0].status, 400, "status for %r" % raw[:60])
                    check(closed, "connection left open after 400 for %r" % raw[:60])

            def header_timeout():
                never_finished = b"POST " + POLL.encode() + b" HTTP/1.1\r\nHost: a\r\n"
                data, _ = raw_exchange("127.0.0.1", port, never_finished,
                                       timeout=HEADER_TIMEOUT_MS / 1000.0 + 8.0)
                resps, _ = parse_responses(data)
                check(resps, "no 408 (got %r) for headers never finished" % data[:200])
                eq(resps[0].status, 408, "status for a header timeout")

            def idle_timeout():
                t0 = time.monotonic()
                data, closed = raw_exchange(
                    "127.0.0.1", port,
                    http_request_bytes("POST", REG, oadr.query_registration("idle"),
                                       [("Content-Type", "application/xml")]),
                    timeout=IDLE_TIMEOUT_MS / 1000.0 + 8.0)
                resps, _ = parse_responses(data)
                eq([r.status for r in resps], [200], "statuses on the idle connection")
                check(closed, "an idle keep-alive connection was not closed (%.1f s)" % (time.monotonic() - t0))

            def no_worker_503():
                lone = st.start_gateway(wait=False)  # no worker serves it
                eq(st.ops_get(lone, "/readyz").status, 503, "/readyz of a gateway without workers")
                with Http("127.0.0.1", lone.ports["oadr"]) as h:
                    r = h.post_xml(POLL, oadr.poll("ven-x"))
                eq(r.status, 503, "a request with no live worker")
                ra = r.header("Retry-After") or ""
                check(ra.strip().isdigit(), "503 without a numeric Retry-After: %r" % ra)
                check(r.body, "503 without a body")

            def keep_alive():
                with Http("127.0.0.1", port) as h:
                    for i in range(5):
                        r = h.post_xml(REG, oadr.query_registration("ka-%d" % i))
                        eq(r.status, 200, "request %d" % i)
                        eq(Reply(r.body).get("eiResponse/requestID"), "ka-%d" % i, "requestID echo")
                    eq(h.connects, 1, "TCP connections for 5 keep-alive requests")

            def pipelining_order():
                reqs = b"".join(http_request_bytes("POST", REG, oadr.query_registration("pipe-%d" % i),
                                                   [("Content-Type", "application/xml")]) for i in range(3))
                data, closed = raw_exchange("127.0.0.1", port, reqs, timeout=10.0, read_until_close=False, expect=3)
                resps, rest = parse_responses(data)
                eq(len(resps), 3, "responses to 3 pipelined requests sent in one write (got %r)" % data[:300])
                for i, r in enumerate(resps):
                    eq(r.status, 200, "pipelined response %d" % i)
                    v.validate(r.body, "pipelined reply %d" % i)
                    eq(Reply(r.body).get("eiResponse/requestID"), "pipe-%d" % i, "order of pipelined replies")
                # mixed: a poll for an unknown VEN between two queries keeps its place too
                xml = [("Content-Type", "text/xml")]
                reqs = (http_request_bytes("POST", REG, oadr.query_registration("mix-0"), xml)
                        + http_request_bytes("POST", POLL, oadr.poll("ven-nobody"), xml)
                        + http_request_bytes("GET", "/nope")
                        + http_request_bytes("POST", REG, oadr.query_registration("mix-3"), xml))
                data, _ = raw_exchange("127.0.0.1", port, reqs, timeout=10.0, read_until_close=False, expect=4)
                resps, _ = parse_responses(data)
                eq([r.status for r in resps], [200, 200, 404, 200], "statuses of mixed pipelined requests")
                eq(Reply(resps[0].body).get("eiResponse/requestID"), "mix-0", "first reply")
                eq(Reply(resps[1].body).name, "oadrResponse", "second reply payload")
                eq(Reply(resps[1].body).code(), "463", "second reply code")
                eq(Reply(resps[3].body).get("eiResponse/requestID"), "mix-3", "fourth reply")

            def connection_close():
                req = http_request_bytes("POST", REG, oadr.query_registration("close-1"),
                                         [("Content-Type", "application/xml"), ("Connection", "close")])
                # a second request after Connection: close must not be answered
                req2 = http_request_bytes("POST", REG, oadr.query_registration("close-2"),
                                          [("Content-Type", "application/xml")])
                t0 = time.monotonic()
                data, closed = raw_exchange("127.0.0.1", port, req + req2, timeout=8.0)
                resps, _ = parse_responses(data)
                check(closed, "server did not close after Connection: close (%.1f s)" % (time.monotonic() - t0))
                eq(len(resps), 1, "responses after Connection: close")
                eq(resps[0].status, 200, "status")
                eq((resps[0].header("Connection") or "").lower(), "close", "Connection header of the reply")
                # HTTP/1.0 without keep-alive closes too
                body = oadr.query_registration("h10").encode()
                raw = ("POST %s HTTP/1.0\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n"
                       % (REG, len(body))).encode() + body
                data, closed = raw_exchange("127.0.0.1", port, raw, timeout=8.0)
                resps, _ = parse_responses(data)
                check(closed, "server did not close an HTTP/1.0 connection")
                eq([r.status for r in resps], [200], "HTTP/1.0 statuses")

            def every_reply_has_body():
                with Http("127.0.0.1", port) as h:
                    r = h.post_xml(POLL, oadr.poll("ven-nobody"))
                    eq(r.status, 200, "poll status")
                    check(len(r.body) > 0, "empty body")
                    eq(r.header("Content-Type", "").split(";")[0].strip(), "application/xml", "Content-Type")
                    v.validate(r.body, "poll reply")

            def ops_endpoints():
                for p in [gw] + st.workers:
                    eq(st.ops_get(p, "/healthz").status, 200, "%s /healthz" % p.name)
                    eq(st.ops_get(p, "/readyz").status, 200, "%s /readyz" % p.name)
                    m = st.ops_get(p, "/metrics")
                    eq(m.status, 200, "%s /metrics" % p.name)
                    check("# TYPE" in m.text(), "%s /metrics is not Prometheus text" % p.name)
                    eq(st.ops_get(p, "/nope").status, 404, "%s /nope" % p.name)

            def idle_connection_survives_worker_round_trips():
                # a connection that sent a bad request is closed; a fresh one works
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.close()
                with Http("127.0.0.1", port) as h:
                    eq(h.post_xml(REG, oadr.query_registration()).status, 200, "after an empty connection")

            for name, fn in [("404 unknown path", not_found), ("405 wrong method", method_not_allowed),
                             ("415 content type", unsupported_media_type), ("413 body limit", body_too_large),
                             ("413 chunked body limit", chunked_body_too_large),
                             ("431 header limit", header_too_large), ("400 bad HTTP", bad_request),
                             ("408 header timeout", header_timeout),
                             ("idle keep-alive timeout", idle_timeout),
                             ("503 + Retry-After without workers", no_worker_503),
                             ("keep-alive", keep_alive), ("pipelining order", pipelining_order),
                             ("Connection: close", connection_close), ("every reply has a body", every_reply_has_body),
                             ("ops endpoints", ops_endpoints),
                             ("empty connection", idle_connection_survives_worker_round_trips)]:
                checks.run(name, fn)
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
