"""A simulated VEN speaking OpenADR 2.0b simple HTTP (pull) to a gateway.
Every reply is checked for HTTP 200 + an XML content type and validated
against the official schema."""

from . import oadr
from .checks import check, eq
from .httpc import Http


class Ven:
    def __init__(self, host, port, validator, name="ven-test", timeout=10.0):
        self.http = Http(host, port, timeout=timeout)
        self.validator = validator
        self.name = name
        self.ven_id = None
        self.registration_id = None
        self.last = None  # last httpc.Response

    def close(self):
        self.http.close()

    def send(self, service, body, payload=None, code="200", validate=True):
        """POSTs body to the service; returns an oadr.Reply. payload and code,
        when given, are what the reply must carry."""
        r = self.http.post_xml(oadr.SERVICE_PATH + service, body)
        self.last = r
        eq(r.status, 200, "HTTP status of %s reply (body %r)" % (service, r.body[:300]))
        check(oadr.is_xml_content_type(r.header("Content-Type")),
              "Content-Type of %s reply is %r" % (service, r.header("Content-Type")))
        if validate:
            self.validator.validate(r.body, "reply to %s on %s" % (_first_payload(body), service))
        rep = oadr.Reply(r.body)
        if payload is not None:
            eq(rep.name, payload, "payload of the reply on %s (%s)" % (service, rep))
        if code is not None:
            eq(rep.code(), str(code), "responseCode of %s (%s)"
               % (rep.name, rep.get("eiResponse/responseDescription")))
        return rep

    def query(self):
        rep = self.send("EiRegisterParty", oadr.query_registration(), "oadrCreatedPartyRegistration")
        return rep

    def register(self, reports=True, **kw):
        """oadrCreatePartyRegistration; keeps venID and registrationID. With
        reports (as a 2.0b VEN does), then takes the VTN's METADATA
        oadrRegisterReport that every registration queues (docs/reports.md)
        on a poll and answers it, so the next poll starts from an empty
        queue."""
        kw.setdefault("ven_name", self.name)
        if self.registration_id and "registration_id" not in kw:
            kw["registration_id"] = self.registration_id
        if self.ven_id and "ven_id" not in kw:
            kw["ven_id"] = self.ven_id
        rep = self.send("EiRegisterParty", oadr.create_party_registration(**kw),
                        "oadrCreatedPartyRegistration")
        self.ven_id = rep.get("venID")
        self.registration_id = rep.get("registrationID")
        check(self.ven_id, "no venID in %s" % rep)
        check(self.registration_id, "no registrationID in %s" % rep)
        if reports:
            self.answer_register_report()
        return rep

    def answer_register_report(self):
        """Polls for the VTN's oadrRegisterReport and answers it with
        oadrRegisteredReport (oadrResponse 200)."""
        reg = self.poll("oadrRegisterReport", None)
        self.send("EiReport", oadr.registered_report(200, reg.get("requestID"), self.ven_id),
                  "oadrResponse", "200")

    def poll(self, payload=None, code=None):
        return self.send("OadrPoll", oadr.poll(self.ven_id), payload, code)


def _first_payload(body):
    try:
        rep = oadr.Reply(body.encode() if isinstance(body, str) else body)
        return rep.name
    except ValueError:
        return "request"
