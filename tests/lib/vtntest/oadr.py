"""OpenADR 2.0b helpers: messages a VEN sends, namespace-agnostic lookups in
what the VTN answers, and validation against the official schema with
xmllint."""

import itertools
import os
import re
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

NS_OADR = "http://openadr.org/oadr-2.0b/2012/07"
NS_EI = "http://docs.oasis-open.org/ns/energyinterop/201110"
NS_PYLD = "http://docs.oasis-open.org/ns/energyinterop/201110/payloads"

SERVICE_PATH = "/OpenADR2/Simple/2.0b/"

_req_counter = itertools.count(1)


def request_id():
    return "req-%d-%d" % (os.getpid(), next(_req_counter))


def payload_xml(inner):
    """Wraps one payload element (a string using the oadr/ei/pyld prefixes)
    in oadrPayload/oadrSignedObject."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<oadr:oadrPayload xmlns:oadr="%s" xmlns:ei="%s" xmlns:pyld="%s">'
            '<oadr:oadrSignedObject>%s</oadr:oadrSignedObject></oadr:oadrPayload>\n'
            % (NS_OADR, NS_EI, NS_PYLD, inner))


def _opt(tag, value):
    return "" if value is None else "<%s>%s</%s>" % (tag, escape(str(value)), tag)


def query_registration(req_id=None):
    return payload_xml('<oadr:oadrQueryRegistration ei:schemaVersion="2.0b">'
                       '<pyld:requestID>%s</pyld:requestID></oadr:oadrQueryRegistration>'
                       % escape(req_id or request_id()))


def create_party_registration(ven_name=None, registration_id=None, ven_id=None, pull=True,
                              transport_address=None, report_only=False, xml_signature=False,
                              req_id=None):
    return payload_xml(
        '<oadr:oadrCreatePartyRegistration ei:schemaVersion="2.0b">'
        '<pyld:requestID>%s</pyld:requestID>%s%s'
        '<oadr:oadrProfileName>2.0b</oadr:oadrProfileName>'
        '<oadr:oadrTransportName>simpleHttp</oadr:oadrTransportName>%s'
        '<oadr:oadrReportOnly>%s</oadr:oadrReportOnly>'
        '<oadr:oadrXmlSignature>%s</oadr:oadrXmlSignature>%s'
        '<oadr:oadrHttpPullModel>%s</oadr:oadrHttpPullModel>'
        '</oadr:oadrCreatePartyRegistration>'
        % (escape(req_id or request_id()), _opt("ei:registrationID", registration_id),
           _opt("ei:venID", ven_id), _opt("oadr:oadrTransportAddress", transport_address),
           "true" if report_only else "false", "true" if xml_signature else "false",
           _opt("oadr:oadrVenName", ven_name), "true" if pull else "false"))


def cancel_party_registration(registration_id, ven_id=None, req_id=None):
    return payload_xml('<oadr:oadrCancelPartyRegistration ei:schemaVersion="2.0b">'
                       '<pyld:requestID>%s</pyld:requestID>%s%s'
                       '</oadr:oadrCancelPartyRegistration>'
                       % (escape(req_id or request_id()), _opt("ei:registrationID", registration_id),
                          _opt("ei:venID", ven_id)))


def canceled_party_registration(code, req_id, registration_id=None, ven_id=None):
    return payload_xml('<oadr:oadrCanceledPartyRegistration ei:schemaVersion="2.0b">'
                       '<ei:eiResponse><ei:responseCode>%s</ei:responseCode>'
                       '<pyld:requestID>%s</pyld:requestID></ei:eiResponse>%s%s'
                       '</oadr:oadrCanceledPartyRegistration>'
                       % (code, escape(req_id or ""), _opt("ei:registrationID", registration_id),
                          _opt("ei:venID", ven_id)))


def response(code, req_id, ven_id=None, description=None):
    return payload_xml('<oadr:oadrResponse ei:schemaVersion="2.0b">'
                       '<ei:eiResponse><ei:responseCode>%s</ei:responseCode>%s'
                       '<pyld:requestID>%s</pyld:requestID></ei:eiResponse>%s'
                       '</oadr:oadrResponse>'
                       % (code, _opt("ei:responseDescription", description), escape(req_id or ""),
                          _opt("ei:venID", ven_id)))


def registered_report(code, req_id, ven_id=None):
    """The VEN's answer to the VTN's METADATA oadrRegisterReport (no report requests)."""
    return payload_xml('<oadr:oadrRegisteredReport ei:schemaVersion="2.0b">'
                       '<ei:eiResponse><ei:responseCode>%s</ei:responseCode>'
                       '<pyld:requestID>%s</pyld:requestID></ei:eiResponse>%s'
                       '</oadr:oadrRegisteredReport>'
                       % (code, escape(req_id or ""), _opt("ei:venID", ven_id)))


def register_report(ven_id, specifier_id, rids, report_name="METADATA_TELEMETRY_USAGE", min_period="PT1M",
                    created="2024-05-01T12:00:00Z", req_id=None):
    """The VEN's oadrRegisterReport: one METADATA report with one usage
    description (real power in W) per rID."""
    descs = "".join(
        '<oadr:oadrReportDescription><ei:rID>%s</ei:rID><ei:reportType>usage</ei:reportType>'
        '<power:powerReal><power:itemDescription>RealPower</power:itemDescription>'
        '<power:itemUnits>W</power:itemUnits><scale:siScaleCode>none</scale:siScaleCode>'
        '<power:powerAttributes><power:hertz>60</power:hertz><power:voltage>230</power:voltage>'
        '<power:ac>true</power:ac></power:powerAttributes></power:powerReal>'
        '<ei:readingType>Direct Read</ei:readingType>'
        '<oadr:oadrSamplingRate><oadr:oadrMinPeriod>%s</oadr:oadrMinPeriod>'
        '<oadr:oadrMaxPeriod>PT1H</oadr:oadrMaxPeriod><oadr:oadrOnChange>false</oadr:oadrOnChange>'
        '</oadr:oadrSamplingRate></oadr:oadrReportDescription>' % (escape(r), escape(min_period)) for r in rids)
    return _report_payload(
        '<oadr:oadrRegisterReport ei:schemaVersion="2.0b"><pyld:requestID>%s</pyld:requestID>'
        '<oadr:oadrReport><xcal:duration><xcal:duration>PT1H</xcal:duration></xcal:duration>%s'
        '<ei:reportRequestID>0</ei:reportRequestID><ei:reportSpecifierID>%s</ei:reportSpecifierID>'
        '<ei:reportName>%s</ei:reportName><ei:createdDateTime>%s</ei:createdDateTime></oadr:oadrReport>'
        '<ei:venID>%s</ei:venID></oadr:oadrRegisterReport>'
        % (escape(req_id or request_id()), descs, escape(specifier_id), escape(report_name), escape(created),
           escape(ven_id)))


def created_report(code, req_id, pending, ven_id):
    """The VEN's oadrCreatedReport: the reportRequestIDs it now produces."""
    return payload_xml('<oadr:oadrCreatedReport ei:schemaVersion="2.0b">'
                       '<ei:eiResponse><ei:responseCode>%s</ei:responseCode>'
                       '<pyld:requestID>%s</pyld:requestID></ei:eiResponse>'
                       '<oadr:oadrPendingReports>%s</oadr:oadrPendingReports><ei:venID>%s</ei:venID>'
                       '</oadr:oadrCreatedReport>'
                       % (code, escape(req_id or ""),
                          "".join("<ei:reportRequestID>%s</ei:reportRequestID>" % escape(p) for p in pending),
                          escape(ven_id)))


def update_report(ven_id, report_request_id, specifier_id, report_id, created, intervals,
                  report_name="TELEMETRY_USAGE", req_id=None):
    """The VEN's oadrUpdateReport: one oadrReport whose intervals are
    (dtstart "...Z", duration "PT..", rID, payloadFloat value as text)."""
    ivs = "".join(
        '<ei:interval><xcal:dtstart><xcal:date-time>%s</xcal:date-time></xcal:dtstart>'
        '<xcal:duration><xcal:duration>%s</xcal:duration></xcal:duration>'
        '<oadr:oadrReportPayload><ei:rID>%s</ei:rID><ei:payloadFloat><ei:value>%s</ei:value>'
        '</ei:payloadFloat></oadr:oadrReportPayload></ei:interval>'
        % (escape(t), escape(d), escape(r), escape(v)) for t, d, r, v in intervals)
    return _report_payload(
        '<oadr:oadrUpdateReport ei:schemaVersion="2.0b"><pyld:requestID>%s</pyld:requestID>'
        '<oadr:oadrReport><strm:intervals>%s</strm:intervals><ei:eiReportID>%s</ei:eiReportID>'
        '<ei:reportRequestID>%s</ei:reportRequestID><ei:reportSpecifierID>%s</ei:reportSpecifierID>'
        '<ei:reportName>%s</ei:reportName><ei:createdDateTime>%s</ei:createdDateTime></oadr:oadrReport>'
        '<ei:venID>%s</ei:venID></oadr:oadrUpdateReport>'
        % (escape(req_id or request_id()), ivs, escape(report_id), escape(report_request_id),
           escape(specifier_id), escape(report_name), escape(created), escape(ven_id)))


def _report_payload(inner):
    """payload_xml with the namespaces report messages also use."""
    return payload_xml(inner).replace(
        'xmlns:pyld="%s"' % NS_PYLD,
        'xmlns:pyld="%s" xmlns:xcal="urn:ietf:params:xml:ns:icalendar-2.0" '
        'xmlns:strm="urn:ietf:params:xml:ns:icalendar-2.0:stream" '
        'xmlns:power="http://docs.oasis-open.org/ns/emix/2011/06/power" '
        'xmlns:scale="http://docs.oasis-open.org/ns/emix/2011/06/siscale"' % NS_PYLD, 1)


def poll(ven_id):
    return payload_xml('<oadr:oadrPoll ei:schemaVersion="2.0b"><ei:venID>%s</ei:venID></oadr:oadrPoll>'
                       % escape(ven_id))


# --- reading replies -----------------------------------------------------

def local(tag):
    """Local name of an ElementTree tag ("{ns}name" -> "name")."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def parse(body):
    """Parses bytes into an Element; raises ValueError with the reason."""
    try:
        return ET.fromstring(body)
    except ET.ParseError as e:
        raise ValueError("reply is not well-formed XML: %s" % e)


def payload_of(root):
    """The payload element: the child of oadrSignedObject, or None."""
    if local(root.tag) != "oadrPayload":
        return None
    for so in root:
        if local(so.tag) == "oadrSignedObject":
            for p in so:
                return p
    return None


def find_all(elem, path):
    """Elements under elem matching a /-separated chain of local names.

    The first name must be elem's own local name (paths are written from the
    payload element down). A step may end in [n] (1-based) to pick one
    match. Namespaces and prefixes are ignored."""
    steps = [s for s in path.strip("/").split("/") if s]
    if not steps:
        return []
    cur = []
    name, idx = _step(steps[0])
    if name in ("*", local(elem.tag)):
        cur = [elem]
    cur = _pick(cur, idx)
    for s in steps[1:]:
        name, idx = _step(s)
        nxt = [c for e in cur for c in e if name == "*" or local(c.tag) == name]
        cur = _pick(nxt, idx)
    return cur


def _step(s):
    m = re.fullmatch(r"([^\[\]]+)(?:\[(\d+)\])?", s)
    if not m:
        raise ValueError("bad path step %r" % s)
    return m.group(1), (int(m.group(2)) if m.group(2) else None)


def _pick(lst, idx):
    if idx is None:
        return lst
    return lst[idx - 1:idx] if 1 <= idx <= len(lst) else []


def text_at(elem, path, default=None):
    found = find_all(elem, path)
    if not found:
        return default
    return (found[0].text or "").strip()


class Reply:
    """An OpenADR reply, parsed: .root, .payload (element), .name (local
    name of the payload), .get(path) for text under the payload."""

    def __init__(self, body):
        self.body = body
        self.root = parse(body)
        self.payload = payload_of(self.root)
        if self.payload is None:
            raise ValueError("reply is not an oadrPayload with an oadrSignedObject: %r" % body[:300])
        self.name = local(self.payload.tag)

    def get(self, path, default=None):
        """Text of the first element at path; path may omit the payload name."""
        if not path.startswith(self.name + "/") and path != self.name:
            path = self.name + "/" + path
        return text_at(self.payload, path, default)

    def code(self):
        return self.get("eiResponse/responseCode")

    def __repr__(self):
        return self.body.decode(errors="replace")


# --- schema validation ---------------------------------------------------

class SchemaError(AssertionError):
    pass


class Validator:
    """Validates documents against the official oadr_20b.xsd with xmllint.

    validate() checks one document; add() collects documents to check later
    in one xmllint run with check_pending() (cheaper for many replies)."""

    def __init__(self, schema, workdir=None):
        if not schema or not os.path.isfile(schema):
            raise FileNotFoundError("official schema not found: %r (set VTN_OFFICIAL_SCHEMA)" % schema)
        self.schema = schema
        self.workdir = workdir or tempfile.mkdtemp(prefix="vtn-xsd-")
        self.pending = []  # (file, label)
        self.count = 0
        self._n = itertools.count(1)

    def _write(self, body):
        path = os.path.join(self.workdir, "msg-%05d.xml" % next(self._n))
        with open(path, "wb") as f:
            f.write(body if isinstance(body, bytes) else body.encode())
        return path

    def _run(self, files):
        p = subprocess.run(["xmllint", "--noout", "--nonet", "--schema", self.schema] + files,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        out = p.stdout.decode(errors="replace")
        bad = set()
        for f in files:
            if ("%s fails to validate" % f) in out or ("%s:" % f) in out and p.returncode != 0:
                bad.add(f)
        if p.returncode != 0 and not bad:
            bad = set(files)  # the schema itself or xmllint failed
        return bad, out

    def validate(self, body, label="message"):
        f = self._write(body)
        bad, out = self._run([f])
        self.count += 1
        if bad:
            raise SchemaError("%s does not validate against the official schema:\n%s\n--- message:\n%s"
                              % (label, out.strip(), _show(body)))
        os.unlink(f)

    def add(self, body, label="message"):
        self.pending.append((self._write(body), label))

    def check_pending(self):
        """Validates everything added; raises SchemaError naming the first
        few that fail."""
        pend, self.pending = self.pending, []
        if not pend:
            return 0
        bad = set()
        out = ""
        for i in range(0, len(pend), 200):  # bounded command lines
            files = [f for f, _ in pend[i:i + 200]]
            b, o = self._run(files)
            bad |= b
            if b:
                out += o
        self.count += len(pend)
        if bad:
            lines = []
            for f, label in pend:
                if f in bad and len(lines) < 5:
                    with open(f, "rb") as fh:
                        lines.append("%s (%s):\n%s" % (label, f, _show(fh.read())))
            raise SchemaError("%d of %d messages do not validate against the official schema:\n%s\n%s"
                              % (len(bad), len(pend), out.strip()[-3000:], "\n".join(lines)))
        for f, _ in pend:
            os.unlink(f)
        return len(pend)


def _show(body, n=2000):
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    return body if len(body) <= n else body[:n] + "...(%d bytes)" % len(body)


def is_xml_content_type(ct):
    ct = (ct or "").split(";")[0].strip().lower()
    return ct in ("application/xml", "text/xml")
