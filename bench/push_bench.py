#!/usr/bin/env python3
"""The push run (docs/bench.md): P push-mode VENs whose HTTPS endpoints (mutual
TLS, server certificates from a throwaway "VEN server" CA, the VTN's client
certificate required) all live in this process (asyncio, one listener per
VEN on 127.0.0.1), against a throwaway VTN (redis, one gateway with push TLS,
two workers). Every VEN answers an oadrDistributeEvent with oadrCreatedEvent
(optIn) in the HTTP response.

  1. register P VENs (their oadrRegisterReport is pushed and answered), then
     the VENs close every connection;
  2. event 1 for all of them: time until each VEN has it and until the API
     counts P answers (fresh connections: TCP + TLS handshake each);
  3. event 2: the same over the kept-alive connections (reused), with the
     gateway's CPU per delivery;
  4. U of them stop listening (unreachable); event 3: time until the others
     have it and their answers are recorded.

  bench/run-push.sh [--vens P] [--unreachable U] [--build-dir DIR]
"""

import argparse
import asyncio
import datetime
import os
import re
import shutil
import ssl
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

from vtntest import Api, Stack  # noqa: E402
from vtntest.stack import Config, metric_sum, parse_metrics  # noqa: E402
from vtntest.tls import Pki, find_vtnctl, ven_server_context  # noqa: E402
from vtntest import oadr  # noqa: E402

API = "/api/v1"
MC = "http://utility.example/programs/push-bench"
PATH = "/OpenADR2/Simple/2.0b"
EVENT_RE = re.compile(rb"<(?:\w+:)?eventID>([^<]+)</(?:\w+:)?eventID>\s*<(?:\w+:)?modificationNumber>(\d+)<")
REQID_RE = re.compile(rb"<(?:\w+:)?requestID>([^<]*)<")
VENID_RE = re.compile(rb"<(?:\w+:)?venID>([^<]+)<")


def created_event(ven_id, rid, events):
    rs = "".join(
        '<ei:eventResponse><ei:responseCode>200</ei:responseCode>'
        '<pyld:requestID>%s</pyld:requestID><ei:qualifiedEventID>'
        '<ei:eventID>%s</ei:eventID><ei:modificationNumber>%s</ei:modificationNumber>'
        '</ei:qualifiedEventID><ei:optType>optIn</ei:optType></ei:eventResponse>' % (rid, e, mn)
        for e, mn in events)
    return oadr.payload_xml(
        '<oadr:oadrCreatedEvent ei:schemaVersion="2.0b"><pyld:eiCreatedEvent>'
        '<ei:eiResponse><ei:responseCode>200</ei:responseCode><pyld:requestID/></ei:eiResponse>'
        '<ei:eventResponses>%s</ei:eventResponses><ei:venID>%s</ei:venID>'
        '</pyld:eiCreatedEvent></oadr:oadrCreatedEvent>' % (rs, ven_id))


class Vens:
    """P HTTPS endpoints on one asyncio loop (its own thread)."""

    def __init__(self, n, cert, client_ca):
        self.ctx = ven_server_context(cert, client_ca)
        self.n = n
        self.got = {}  # (port, eventID) -> monotonic time the distribute arrived
        self.ven_of = {}  # port -> venID (a distribute for a program names no venID)
        self.registered = set()  # ports that got the VTN's oadrRegisterReport
        self.servers = []
        self.writers = set()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(60)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self):
        for _ in range(self.n):
            srv = await asyncio.start_server(self._conn, "127.0.0.1", 0, ssl=self.ctx, backlog=16)
            self.servers.append(srv)
        self.ports = [s.sockets[0].getsockname()[1] for s in self.servers]

    async def _conn(self, reader, writer):
        port = writer.get_extra_info("sockname")[1]
        self.writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                body = await reader.readexactly(int(m.group(1)) if m else 0)
                rid = (REQID_RE.search(body) or [b"", b""])[1].decode()
                ven = self.ven_of.get(port) or (VENID_RE.search(body) or [b"", b""])[1].decode()
                if b"oadrDistributeEvent" in body:
                    evs = [(e.decode(), mn.decode()) for e, mn in EVENT_RE.findall(body)]
                    now = time.monotonic()
                    for e, _ in evs:
                        self.got.setdefault((port, e), now)
                    answer = created_event(ven, rid, evs)
                elif b"oadrRegisterReport" in body:
                    answer = oadr.registered_report(200, rid, ven)
                    self.registered.add(port)
                else:
                    answer = oadr.response(200, rid, ven)
                a = answer.encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n"
                             % len(a) + a)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.LimitOverrunError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def call(self, coro_fn):
        return asyncio.run_coroutine_threadsafe(coro_fn(), self.loop).result(60)

    def close_connections(self):
        async def f():
            for w in list(self.writers):
                w.close()
        self.call(f)

    def stop_listening(self, idx):
        async def f():
            for i in idx:
                self.servers[i].close()
            for w in list(self.writers):
                if w.get_extra_info("sockname")[1] in {self.ports[i] for i in idx}:
                    w.close()
        self.call(f)

    def count(self, eid, ports):
        return sum(1 for p in ports if (p, eid) in self.got)


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vens", type=int, default=1000)
    ap.add_argument("--unreachable", type=int, default=100)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    b = a.build_dir
    cfg = Config(gateway=os.path.join(b, "gateway", "vtn-gateway"), worker=os.path.join(b, "workers", "vtn-worker"),
                 redis_server=shutil.which("redis-server"), schema=None, keep=bool(os.environ.get("BENCH_KEEP")))
    vtnctl = find_vtnctl(None, cfg.gateway)
    with Stack(cfg, name="bench-push") as st:
        pki = Pki(vtnctl, os.path.join(st.tmpdir, "pki"))
        vtn = pki.issue("vtn-push")
        ven_ca_dir = os.path.join(pki.dir, "ca-ven")
        pki.run("ca", "create", "--dir", ven_ca_dir, "--key", "ec", "--cn", "VEN server CA")
        ven_cert = pki.issue("ven-srv", ven_ca_dir, "ec", server="DNS:localhost")
        env = {"VTN_PUSH_CERT": "%s:%s" % (vtn.pem, vtn.key), "VTN_PUSH_CA": os.path.join(ven_ca_dir, "ca.pem"),
               "VTN_PUSH_TIMEOUT": "10s", "VTN_PUSH_LEASE": "15s", "VTN_PUSH_RECHECK": "300s",
               "VTN_PUSH_CONCURRENCY": "256", "VTN_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warn")}
        st.start_redis()
        gw = st.start_gateway(env=env, wait=False)
        st.start_worker(env={"VTN_LOG_LEVEL": "warn"})
        st.start_worker(env={"VTN_LOG_LEVEL": "warn"})
        st.wait_live_workers(gw, 2)
        api = Api("127.0.0.1", gw.ports["api"], st.api_token, timeout=60)
        vens = Vens(a.vens, ven_cert, os.path.join(pki.ca_ecc, "ca.pem"))
        prog = api.call("POST", API + "/programs", {"name": "push bench", "marketContext": MC}).json()["programID"]

        from vtntest.ven import Ven
        t0 = time.monotonic()
        ids = []
        reg = Ven("127.0.0.1", gw.ports["oadr"], None, name="x")
        for i, port in enumerate(vens.ports):
            r = reg.http.post_xml(oadr.SERVICE_PATH + "EiRegisterParty", oadr.create_party_registration(
                ven_name="push-%d" % i, pull=False, transport_address="https://localhost:%d%s" % (port, PATH)))
            if r.status != 200:
                raise RuntimeError("registration %d: HTTP %d %r" % (i, r.status, r.body[:200]))
            ids.append(oadr.Reply(r.body).get("venID"))
            vens.ven_of[port] = ids[-1]
        print("registered %d push VENs in %.1f s" % (len(ids), time.monotonic() - t0), flush=True)
        r = api.call("PUT", API + "/programs/%s/vens" % prog, {"venIDs": ids})
        assert r.status == 200, r
        t0 = time.monotonic()
        while len(vens.registered) < a.vens and time.monotonic() < t0 + 120:
            time.sleep(0.1)  # the registration pushes (oadrRegisterReport) settle
        print("oadrRegisterReport pushed to %d VENs in %.1f s" % (len(vens.registered), time.monotonic() - t0),
              flush=True)
        time.sleep(1)
        vens.close_connections()
        time.sleep(0.5)

        def metrics():
            return parse_metrics(st.ops_get(gw, "/metrics").body.decode())

        def run(label, ports):
            start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
            m0, c0 = metrics(), proc_cpu(gw.pid)
            t = time.monotonic()
            r = api.call("POST", API + "/events", {
                "marketContext": MC, "priority": 1, "responseRequired": "always",
                "dtstart": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "duration": "PT1H",
                "signals": [{"signalName": "SIMPLE", "signalType": "level", "signalID": "s1",
                             "intervals": [{"duration": "PT1H", "value": 1}]}]})
            eid = r.json()["eventID"]
            have = answered = None
            deadline = t + 60
            while time.monotonic() < deadline:
                n = vens.count(eid, ports)
                if n == len(ports) and have is None:
                    have = time.monotonic() - t
                r = api.call("GET", API + "/events/" + eid)
                p = r.json()["participation"] if r.status == 200 else {"optIn": -1}
                if p["optIn"] >= len(ports):
                    answered = time.monotonic() - t
                    break
                time.sleep(0.02)
            last = max((vens.got[(p_, eid)] for p_ in ports if (p_, eid) in vens.got), default=t) - t
            m1, c1 = metrics(), proc_cpu(gw.pid)
            d = metric_sum(m1, "vtn_gateway_push_deliveries_total", result="delivered") - \
                metric_sum(m0, "vtn_gateway_push_deliveries_total", result="delivered")
            opened = metric_sum(m1, "vtn_gateway_push_connections_total", kind="opened") - \
                metric_sum(m0, "vtn_gateway_push_connections_total", kind="opened")
            reused = metric_sum(m1, "vtn_gateway_push_connections_total", kind="reused") - \
                metric_sum(m0, "vtn_gateway_push_connections_total", kind="reused")
            retries = metric_sum(m1, "vtn_gateway_push_deliveries_total", result="retry") - \
                metric_sum(m0, "vtn_gateway_push_deliveries_total", result="retry")
            print("%-28s VENs=%d all_have=%s last_arrival=%.2fs all_answered_recorded=%s deliveries=%d "
                  "retries=%d conns_opened=%d conns_reused=%d gateway_cpu_ms_per_delivery=%.3f"
                  % (label, len(ports), "%.2fs" % have if have is not None else "NO",
                     last, "%.2fs" % answered if answered is not None else "NO", d, retries, opened, reused,
                     (c1 - c0) * 1000 / d if d else float("nan")), flush=True)

        run("event1 fresh connections", vens.ports)
        run("event2 reused connections", vens.ports)
        down = list(range(a.unreachable))
        vens.stop_listening(down)
        up = [p for i, p in enumerate(vens.ports) if i not in set(down)]
        run("event3 %d unreachable" % a.unreachable, up)
    return 0


if __name__ == "__main__":
    sys.exit(main())
