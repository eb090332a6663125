#!/usr/bin/env python3
"""Push mode end to end (redis + two gateways + two workers, push VENs played
by Python HTTPS servers on 127.0.0.1 with a server certificate from a "VEN
server" CA and requiring the VTN's client certificate): a push VEN gets the
VTN's oadrRegisterReport after it registers and an event created through
the API as HTTPS POSTs, and its answers in the HTTP responses are recorded
(participation optIn); a push VEN that is down is retried, then marked
undelivered (API pushUndelivered, /metrics) while a pull VEN of the same
event gets it on its poll; with two gateways each message reaches each VEN
once; an API reregister reaches the push VEN at once; a gateway SIGKILLed
while a VEN stalls its answer leaves the job to the other after the lease, and the VEN's answer is recorded once; a plain
http:// transportAddress is refused. Every message a VEN receives validates
against the official schema."""

import datetime
import http.server
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Api, Checks, Stack, Validator, check, eq, install_signal_handlers, parse_args  # noqa: E402
from vtntest import keys, oadr  # noqa: E402
from vtntest.checks import wait_for  # noqa: E402
from vtntest.stack import metric_sum, parse_metrics  # noqa: E402
from vtntest.tls import Pki, find_vtnctl, ven_server_context  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

API = "/api/v1"
MC = "http://utility.example/programs/push"
PATH = "/OpenADR2/Simple/2.0b"
LEASE_S = 3
PUSH_ENV = {
    "VTN_PUSH_TIMEOUT": "2s",
    "VTN_PUSH_LEASE": "%ds" % LEASE_S,
    "VTN_PUSH_RETRY": "200ms",
    "VTN_PUSH_RETRY_MAX": "400ms",
    "VTN_PUSH_MAX_ATTEMPTS": "3",
    "VTN_PUSH_RECHECK": "60s",
}


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def events_of(rep):
    """[(eventID, modificationNumber, responseRequired)] of an oadrDistributeEvent."""
    return [(oadr.text_at(e, "oadrEvent/eiEvent/eventDescriptor/eventID"),
             int(oadr.text_at(e, "oadrEvent/eiEvent/eventDescriptor/modificationNumber")),
             oadr.text_at(e, "oadrEvent/oadrResponseRequired"))
            for e in oadr.find_all(rep.payload, "oadrDistributeEvent/oadrEvent")]


def created_event(ven_id, answers):
    rs = "".join(
        '<ei:eventResponse><ei:responseCode>200</ei:responseCode>'
        '<pyld:requestID>%s</pyld:requestID><ei:qualifiedEventID>'
        '<ei:eventID>%s</ei:eventID><ei:modificationNumber>%d</ei:modificationNumber>'
        '</ei:qualifiedEventID><ei:optType>optIn</ei:optType></ei:eventResponse>' % a
        for a in answers)
    return oadr.payload_xml(
        '<oadr:oadrCreatedEvent ei:schemaVersion="2.0b"><pyld:eiCreatedEvent>'
        '<ei:eiResponse><ei:responseCode>200</ei:responseCode><pyld:requestID/></ei:eiResponse>'
        '<ei:eventResponses>%s</ei:eventResponses><ei:venID>%s</ei:venID>'
        '</pyld:eiCreatedEvent></oadr:oadrCreatedEvent>' % (rs, ven_id))


class PushVen:
    """A push-mode VEN's HTTPS endpoint (HTTP/1.1 keep-alive). Records every
    message POSTed to it (path, payload name, body) and answers as a VEN
    does: oadrRegisteredReport, oadrCreatedEvent (opt in to each event),
    oadrCreatedReport, else oadrResponse. stall_next makes it hold its next
    answer to an oadrDistributeEvent until release() (or the client goes)."""

    def __init__(self, cert, client_ca, validator):
        ctx = ven_server_context(cert, client_ca)
        self.validator = validator
        self.ven_id = None
        self.lock = threading.Lock()
        self.received = []  # (path, payload name, body)
        self.answered = []  # payload names whose answer was written completely
        self.stall_next = False
        self.stalling = threading.Event()
        self.released = threading.Event()
        ven = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                ven.validator.add(body, "pushed to %s" % self.path)
                rep = oadr.Reply(body)
                with ven.lock:
                    ven.received.append((self.path, rep.name, body))
                    stall = ven.stall_next and rep.name == "oadrDistributeEvent"
                    if stall:
                        ven.stall_next = False
                if stall:
                    ven.stalling.set()
                    ven.released.wait(30)
                answer = ven.answer(rep).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    self.wfile.flush()
                except OSError:
                    return
                with ven.lock:
                    ven.answered.append(rep.name)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def url(self):
        return "https://localhost:%d%s" % (self.port, PATH)

    def answer(self, rep):
        rid = rep.get("requestID") or ""
        ven_id = rep.get("venID") or self.ven_id  # it may arrive before register() returned
        if rep.name == "oadrRegisterReport":
            return oadr.registered_report(200, rid, ven_id)
        if rep.name == "oadrDistributeEvent":
            need = [(rid, e[0], e[1]) for e in events_of(rep) if e[2] == "always"]
            return created_event(ven_id, need)
        return oadr.response(200, rid, ven_id)

    def got(self, name):
        with self.lock:
            return [r for r in self.received if r[1] == name]

    def events_received(self):
        """[(eventID, modificationNumber)] of every oadrDistributeEvent received."""
        out = []
        for _, _, body in self.got("oadrDistributeEvent"):
            out += [(e[0], e[1]) for e in events_of(oadr.Reply(body))]
        return out

    def release(self):
        self.released.set()

    def stop(self):
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    def extra(ap):
        ap.add_argument("--vtnctl", help="vtnctl binary (env VTNCTL; default: next to the gateway)")

    cfg, a = parse_args(__doc__.split("\n")[0], extra)
    cfg.require("gateway", "worker", "redis_server", "schema")
    vtnctl = find_vtnctl(a.vtnctl, cfg.gateway)
    install_signal_handlers()
    checks = Checks("e2e.push")
    with checks.processes():
        with Stack(cfg, name="e2e-push") as st:
            pki = Pki(vtnctl, os.path.join(st.tmpdir, "pki"))
            vtn_ca = os.path.join(pki.ca_ecc, "ca.pem")
            vtn = pki.issue("vtn-push")
            ven_ca_dir = os.path.join(pki.dir, "ca-ven")
            pki.run("ca", "create", "--dir", ven_ca_dir, "--key", "ec", "--cn", "VEN server CA")
            ven_cert = pki.issue("ven-srv", ven_ca_dir, "ec", server="DNS:localhost")
            env = dict(PUSH_ENV, VTN_PUSH_CERT="%s:%s" % (vtn.pem, vtn.key),
                       VTN_PUSH_CA=os.path.join(ven_ca_dir, "ca.pem"))
            st.start_redis()
            gws = [st.start_gateway(env=env, wait=False), st.start_gateway(env=env, wait=False)]
            st.start_worker()
            st.start_worker()
            for g in gws:
                st.wait_live_workers(g, 2)
            api = Api("127.0.0.1", gws[0].ports["api"], st.api_token)
            v = Validator(cfg.schema, workdir=st.tmpdir)
            redis = st.redis()
            now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
            vens = []  # PushVen endpoints, stopped at the end

            r = api.call("POST", API + "/programs", {"name": "Push", "marketContext": MC})
            eq(r.status, 201, "create a program (%r)" % r)

            def push_ven(name, url=None):
                """Registers a push VEN (its endpoint, or url for one that is not there)."""
                ep = None
                if url is None:
                    ep = PushVen(ven_cert, vtn_ca, v)
                    vens.append(ep)
                    url = ep.url()
                ven = Ven("127.0.0.1", gws[0].ports["oadr"], v, name=name)
                ven.register(reports=False, pull=False, transport_address=url)
                if ep:
                    ep.ven_id = ven.ven_id
                return ven, ep

            def event(targets):
                r = api.call("POST", API + "/events", {
                    "marketContext": MC, "priority": 1, "responseRequired": "always",
                    "dtstart": iso(now + datetime.timedelta(hours=1)), "duration": "PT1H",
                    "signals": [{"signalName": "SIMPLE", "signalType": "level", "signalID": "s1",
                                 "intervals": [{"duration": "PT1H", "value": 1}]}],
                    "targets": {"venID": targets}})
                eq(r.status, 201, "create an event (%r)" % r)
                return r.json()["eventID"]

            def participation(eid):
                r = api.call("GET", API + "/events/%s/vens" % eid)
                eq(r.status, 200, "participation (%r)" % r)
                return {x["venID"]: (x["opt"], x["modificationNumber"]) for x in r.json()["vens"]}

            def metrics_all(name, **labels):
                return sum(metric_sum(parse_metrics(st.ops_get(g, "/metrics").body.decode()), name, **labels)
                           for g in gws if g.alive())

            def delivered_and_answered():
                ven, ep = push_ven("push-a")
                # registration: the VTN's METADATA oadrRegisterReport, answered in the response
                wait_for("the oadrRegisterReport pushed", lambda: ep.got("oadrRegisterReport"))
                path, _, _ = ep.got("oadrRegisterReport")[0]
                eq(path, PATH + "/EiReport", "the service it was pushed to")
                eid = event([ven.ven_id])
                wait_for("the event pushed", lambda: (eid, 0) in ep.events_received())
                eq(ep.got("oadrDistributeEvent")[0][0], PATH + "/EiEvent", "the service of a distribute")
                wait_for("the VEN's answer recorded",
                         lambda: participation(eid).get(ven.ven_id) == ("optIn", 0))
                # a modification replaces it: the VEN gets mn 1 and answers it
                body = {"modificationReason": "later", "marketContext": MC, "priority": 1,
                        "responseRequired": "always",
                        "dtstart": iso(now + datetime.timedelta(hours=2)), "duration": "PT1H",
                        "signals": [{"signalName": "SIMPLE", "signalType": "level", "signalID": "s1",
                                     "intervals": [{"duration": "PT1H", "value": 2}]}],
                        "targets": {"venID": [ven.ven_id]}}
                eq(api.call("PUT", API + "/events/" + eid, body).status, 200, "modify")
                wait_for("the modification pushed", lambda: (eid, 1) in ep.events_received())
                wait_for("the answer to mn 1", lambda: participation(eid).get(ven.ven_id) == ("optIn", 1))
                eq(ep.events_received().count((eid, 0)), 1, "mn 0 delivered once")
                eq(ep.events_received().count((eid, 1)), 1, "mn 1 delivered once")
                check(metrics_all("vtn_gateway_push_deliveries_total", result="delivered") >= 3,
                      "delivered counted")
                rec = api.call("GET", API + "/vens/" + ven.ven_id).json()
                eq(rec["httpPullModel"], False, "a push VEN")
                eq(rec["pushUndelivered"], None, "nothing undelivered")
                # a message the API queues goes at once (recheck is 60 s here)
                eq(api.call("POST", "%s/vens/%s/reregister" % (API, ven.ven_id)).status, 202, "reregister")
                wait_for("oadrRequestReregistration pushed", lambda: ep.got("oadrRequestReregistration"),
                         timeout=10)
                eq(ep.got("oadrRequestReregistration")[0][0], PATH + "/EiRegisterParty",
                   "the service of oadrRequestReregistration")

            def down_ven_retried_pull_unaffected():
                retries0 = metrics_all("vtn_gateway_push_deliveries_total", result="retry")
                ven, _ = push_ven("push-down", "https://localhost:%d%s" % (closed_port(), PATH))
                pull = Ven("127.0.0.1", gws[0].ports["oadr"], v, name="pull-b")
                pull.register()
                eid = event([ven.ven_id, pull.ven_id])
                rep = pull.poll("oadrDistributeEvent")
                eq([e[0] for e in events_of(rep)], [eid], "the pull VEN's poll has the event")
                wait_for("the down VEN marked undelivered",
                         lambda: api.call("GET", API + "/vens/" + ven.ven_id).json()["pushUndelivered"],
                         timeout=30)
                u = api.call("GET", API + "/vens/" + ven.ven_id).json()["pushUndelivered"]
                eq(u["attempts"], 3, "attempts before giving up (VTN_PUSH_MAX_ATTEMPTS)")
                check("connect" in u["error"], "the reason names the connection: %r" % u)
                check(metrics_all("vtn_gateway_push_deliveries_total", result="retry") >= retries0 + 2,
                      "retries counted")
                check(metrics_all("vtn_gateway_push_deliveries_total", result="undelivered") >= 1,
                      "undelivered counted")

            def two_gateways_once_each():
                pairs = [push_ven("push-m%d" % i) for i in range(6)]
                for _, ep in pairs:
                    wait_for("oadrRegisterReport pushed", lambda: ep.got("oadrRegisterReport"))
                eid = event([ven.ven_id for ven, _ in pairs])
                for ven, ep in pairs:
                    wait_for("the VEN's answer recorded",
                             lambda: participation(eid).get(ven.ven_id) == ("optIn", 0))
                time.sleep(LEASE_S + 1)  # anything sent twice would have been by now
                for ven, ep in pairs:
                    eq(ep.events_received().count((eid, 0)), 1, "the event reached %s once" % ven.ven_id)
                    eq(len(ep.got("oadrRegisterReport")), 1, "the oadrRegisterReport reached it once")
                owners = set(re.findall(r"ven=(\S+) message=oadrDistributeEvent",
                                        "".join(g.log_text() for g in gws)))
                check({ven.ven_id for ven, _ in pairs} <= owners, "delivery logged for each VEN")

            def killed_mid_delivery():
                ven, ep = push_ven("push-stall")
                wait_for("oadrRegisterReport pushed", lambda: ep.answered and ep.got("oadrRegisterReport"))
                ep.stall_next = True
                eid = event([ven.ven_id])
                check(ep.stalling.wait(15), "the VEN got the event and holds its answer")
                job = redis.cmd("HGET", keys.build("VTN_KEY_PUSHJOBS"), ven.ven_id)
                owner = job.decode().split("|")[0] if isinstance(job, bytes) else str(job).split("|")[0]
                holder = [g for g in gws if ("owner=%s " % owner) in g.log_text()]
                eq(len(holder), 1, "one gateway holds the job (%s)" % owner)
                holder[0].kill()  # SIGKILL mid-delivery
                ep.release()
                other = [g for g in gws if g is not holder[0]][0]
                api.http.close()
                api.http.port = other.ports["api"]  # the API of the gateway left
                wait_for("the VEN's answer recorded after the lease",
                         lambda: participation(eid).get(ven.ven_id) == ("optIn", 0), timeout=LEASE_S + 15)
                # the first POST reached the VEN but its answer died with the gateway: the
                # other gateway sends the same event (eventID, mn) once more, no more
                eq(ep.events_received().count((eid, 0)), 2, "the unanswered POST and its redelivery")
                time.sleep(LEASE_S + 1)
                eq(ep.events_received().count((eid, 0)), 2, "no further delivery once answered")
                eq(api.call("GET", API + "/events/" + eid).json()["participation"],
                   {"received": 1, "optIn": 1, "optOut": 0, "noAnswer": 0}, "recorded once, opt in")

            def plain_http_refused():
                ven, _ = push_ven("push-plain", "http://127.0.0.1:%d%s" % (closed_port(), PATH))
                wait_for("plain HTTP refused",
                         lambda: any("event=push_refused" in g.log_text() and ven.ven_id in g.log_text()
                                     for g in gws if g.alive()))
                check(metrics_all("vtn_gateway_push_refused_total") >= 1, "refusal counted")

            checks.run("a push VEN gets the event and its answer is recorded", delivered_and_answered)
            checks.run("a down push VEN is retried then undelivered; a pull VEN unaffected",
                       down_ven_retried_pull_unaffected)
            checks.run("two gateways deliver each message once", two_gateways_once_each)
            checks.run("plain http transportAddress refused", plain_http_refused)
            checks.run("a gateway SIGKILLed mid-delivery: the other delivers after the lease",
                       killed_mid_delivery)
            checks.run("every pushed message validates (official schema)", v.check_pending)
            for ep in vens:
                ep.stop()
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
