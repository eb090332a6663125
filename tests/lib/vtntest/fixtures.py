"""Redis state by meaning, not by layout: the fixture verbs of the protocol
cases (docs/testing.md), built from common/include/vtn/keys.h (keys.py), so
a layout change edits the header, not every case.

Setting up (redis-before), one verb a line:

    ven <venID> [name=..] [fp=..] [provisioned] [registered=<registrationID>]
        [push] [transport=..] [report-only] [xml-signature] [cancelling]
        [rereg-pending] [created=<ms>] [registered-at=<ms>] [poll-rid=<rid>]
    queue <venID> <kind> [<field> ...]
    cert <serial> ven=<venID> fp=<fingerprint> [cn=..] [key=ec|rsa] [csr]
         [ca=<caID>] [not-before=<ms>] [not-after=<ms>] [issued-at=<ms>]
         [revoked=<ms>] [reason=<code>]
    event <eventID> [vens=a,b] [groups=g] [resources=r] [parties=p] [program=<programID>]
          [start=<s from now>] [duration=<s>] [mn=N] [priority=N]
          [response=always|never] [cancelled] [test] [value=N] [notification=<s>]
          (no vens/groups/resources/parties: a program-wide event)
    group <groupID> <venID> ...
    program <programID> [<venID> ...]   a program and the VENs enrolled in it
    targets <venID> [resources=a,b] [parties=c,d]   what the operator recorded
    participant <eventID> <venID> [received=N] [mn=N opt=optIn|optOut code=N at=<ms>]

Checking (expect), as subjects of the usual operators:

    ven <venID>               the record (exists / absent)
    ven <venID> <attribute>   one attribute (the names above: name, fp,
                              registered, pull, state ...)
    queue <venID>             the queued entries, "<kind> <field> ..." each,
                              joined by " ; " for =
    index name|fp|reg <value> the venID the index holds
    vens                      the members of vtn:vens
    answer <eventID> <venID>  "<modificationNumber> <opt> <responseCode>" of
                              the VEN's answer (None: it has not answered)
    received <eventID> <venID>  the modificationNumber the VEN last received
    event <eventID> opt-in|opt-out|received   the event's counts
    targets <venID>           the members of its ventargets set, sorted
                              ("g:<groupID>", "p:<programID>", "r:..", "y:..")
"""

import json
import shlex
import time

from . import keys

CREATED_DEFAULT = "1700000000000"
# The marketContext of the program verb, and of every event of the event verb.
PROGRAM_MC = "http://utility.example/programs/cpp"

# attribute name in cases -> VTN_F_VEN_<suffix>
VEN_ATTRS = {
    "name": "NAME", "fp": "FP", "provisioned": "PROVISIONED", "created": "CREATED",
    "registered": "REG", "registered-at": "REG_AT", "pull": "PULL", "transport": "TRANSPORT",
    "report-only": "REPORT_ONLY", "xml-signature": "XML_SIG", "state": "STATE",
    "rereg-pending": "REREG", "poll-rid": "POLL_RID", "events-ver": "EVENTS_VER",
    "events-hash": "EVENTS_HASH", "events-end": "EVENTS_END", "events-await": "EVENTS_AWAIT",
    "push-undelivered": "PUSH_UNDELIVERED", "report-policy": "REPORT_POLICY",
    "last-poll": "LAST_POLL",
}
# flags of the ven verb: attribute and the value a bare flag stands for
VEN_FLAGS = {
    "provisioned": ("provisioned", "1"), "report-only": ("report-only", "1"),
    "xml-signature": ("xml-signature", "1"), "rereg-pending": ("rereg-pending", "1"),
    "cancelling": ("state", keys.const("VTN_VEN_CANCELLING")), "push": ("pull", "0"),
}
CERT_ATTRS = {
    "ven": "VEN", "fp": "FP", "cn": "CN", "key": "KEY", "not-before": "NOT_BEFORE",
    "not-after": "NOT_AFTER", "issued-at": "ISSUED_AT", "ca": "CA", "revoked": "REVOKED_AT",
    "reason": "REASON",
}
# A field added to vtn/keys.h needs a name here before any case can run.
_missing = (set(keys.fields("VEN")) - set(VEN_ATTRS.values())) | (
    set(keys.fields("CERT")) - set(CERT_ATTRS.values()) - {"GENERATED"})
if _missing:
    raise ImportError("fixtures.py has no attribute name for VTN_F_*_%s" % ", ".join(sorted(_missing)))

# queue kinds by name: VTN_QUEUE_KIND_<NAME> lower-cased ("cancel", "rereg")
QUEUE_KINDS = {k[len("VTN_QUEUE_KIND_"):].lower(): v for k, v in keys.CONSTANTS.items()
               if k.startswith("VTN_QUEUE_KIND_")}
QUEUE_NAMES = {v: k for k, v in QUEUE_KINDS.items()}
SEP = keys.const("VTN_QUEUE_SEP")
INDEXES = {"name": "VTN_KEY_VENNAME", "fp": "VTN_KEY_VENFP", "reg": "VTN_KEY_VENREG"}

SETUP_VERBS = ("ven", "queue", "cert", "event", "group", "program", "targets", "participant")
CHECK_VERBS = ("ven", "queue", "index", "vens", "answer", "event-opt", "received", "event", "targets")


class FixtureError(ValueError):
    """A verb line that cannot be understood."""


def _options(words, flags, attrs, verb):
    out = {}
    for w in words:
        k, sep, v = w.partition("=")
        if not sep:
            if k not in flags:
                raise FixtureError("%s: %r is neither a flag (%s) nor name=value"
                                   % (verb, w, ", ".join(sorted(flags))))
            k, v = flags[k]
        if k not in attrs:
            raise FixtureError("%s: unknown attribute %r (known: %s)" % (verb, k, ", ".join(sorted(attrs))))
        out[k] = v
    return out


def _ven(args):
    if not args:
        raise FixtureError("ven needs a venID")
    ven, o = args[0], _options(args[1:], VEN_FLAGS, VEN_ATTRS, "ven")
    o.setdefault("created", CREATED_DEFAULT)
    if "registered" in o:
        # What a registration of a pull VEN without flags writes.
        o.setdefault("registered-at", o["created"])
        o.setdefault("pull", "1")
        o.setdefault("report-only", "0")
        o.setdefault("xml-signature", "0")
    hset = ["HSET", keys.build("VTN_KEY_VEN", ven)]
    for a, v in o.items():
        hset += [keys.const("VTN_F_VEN_" + VEN_ATTRS[a]), v]
    # The record and its indexes, as the worker leaves them (docs/redis-keys.md).
    cmds = [hset, ["ZADD", keys.const("VTN_KEY_VENS"), "0", ven]]
    for attr, idx in (("name", "name"), ("fp", "fp"), ("registered", "reg")):
        if attr in o:
            cmds.append(["SET", keys.build(INDEXES[idx], o[attr]), ven])
    return cmds


def queue_entry(kind, fields):
    if kind in QUEUE_KINDS:
        kind = QUEUE_KINDS[kind]
    elif len(kind) != 1:
        raise FixtureError("queue: kind %r is neither one of %s nor a one-letter kind"
                           % (kind, ", ".join(sorted(QUEUE_KINDS))))
    return SEP.join([kind] + list(fields))


def _queue(args):
    if len(args) < 2:
        raise FixtureError("queue needs a venID and a kind")
    return [["RPUSH", keys.build("VTN_KEY_VENQ", args[0]), queue_entry(args[1], args[2:])]]


def _cert(args):
    if not args:
        raise FixtureError("cert needs a serial")
    serial = args[0]
    flags = {"csr": ("generated", "0")}
    o = _options(args[1:], flags, dict(CERT_ATTRS, generated="GENERATED"), "cert")
    for need in ("ven", "fp"):
        if need not in o:
            raise FixtureError("cert: %s= is required" % need)
    o.setdefault("generated", "1")
    o.setdefault("key", "ec")
    o.setdefault("cn", o["ven"])
    o.setdefault("issued-at", CREATED_DEFAULT)
    o.setdefault("not-before", o["issued-at"])
    o.setdefault("not-after", str(int(o["issued-at"]) + 365 * 86400 * 1000))
    hset = ["HSET", keys.build("VTN_KEY_CERT", serial)]
    for a, v in o.items():
        name = "GENERATED" if a == "generated" else CERT_ATTRS[a]
        hset += [keys.const("VTN_F_CERT_" + name), v]
    cmds = [hset, ["ZADD", keys.const("VTN_KEY_CERTS"), "0", serial],
            ["ZADD", keys.build("VTN_KEY_VENCERTS", o["ven"]), "0", serial]]
    if "revoked" in o:
        cmds.append(["SET", keys.build("VTN_KEY_REVOKEDFP", o["fp"]), serial])
        if "ca" in o:
            member = "%s:%s:%d" % (serial, o.get("reason", "0"), int(o["revoked"]) // 1000)
            cmds.append(["ZADD", keys.build("VTN_KEY_CA_REVOKED", o["ca"]),
                         str(int(o["not-after"]) // 1000), member])
    return cmds


EVENT_FLAGS = {"cancelled": ("cancelled", "1"), "test": ("test", "1")}
EVENT_ATTRS = ("vens", "groups", "resources", "parties", "program", "start", "duration", "mn",
               "priority", "response", "cancelled", "test", "value", "opt-in", "opt-out",
               "notification")


def _iso(ms):
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", t)


def _event(args):
    """event <eventID> [vens=a,b] [groups=g] [start=<s from now, may be negative>]
    [duration=<s>] [mn=N] [priority=N] [response=always|never] [cancelled] [test]
    [value=N] [notification=<s>]: the record the worker's event script writes
    (a SIMPLE signal of one interval), its vtn:events member, its next status
    transition in vtn:events:due, and one bump of vtn:events:ver."""
    if not args:
        raise FixtureError("event needs an eventID")
    eid = args[0]
    o = _options(args[1:], EVENT_FLAGS, {a: a for a in EVENT_ATTRS}, "event")
    now = int(time.time()) * 1000
    start = now + int(o.get("start", "3600")) * 1000
    dur = int(o.get("duration", "3600"))
    targets = {}
    if "vens" in o:
        targets["venID"] = o["vens"].split(",")
    for attr, kind in (("groups", "groupID"), ("resources", "resourceID"), ("parties", "partyID")):
        if attr in o:
            targets[kind] = o[attr].split(",")
    body = {"marketContext": PROGRAM_MC,
            "priority": int(o.get("priority", "0")), "testEvent": o.get("test") == "1",
            "responseRequired": o.get("response", "always"), "dtstart": _iso(start),
            "duration": "PT%dS" % dur,
            "signals": [{"signalName": "SIMPLE", "signalType": "level", "signalID": "0",
                         "intervals": [{"duration": "PT%dS" % dur, "value": int(o.get("value", "1"))}]}],
            "targets": targets}
    notify = int(o.get("notification", "0"))
    if notify:
        body["notification"] = "PT%dS" % notify
    f = lambda n: keys.const("VTN_F_EVENT_" + n)  # noqa: E731
    hset = ["HSET", keys.build("VTN_KEY_EVENT", eid), f("BODY"), json.dumps(body), f("PROGRAM"), o.get("program", "prg-1"),
            f("MODNUM"), o.get("mn", "0"), f("CREATED"), str(now - 60000), f("MODIFIED"), str(now - 60000),
            f("START"), str(start), f("END"), str(start + dur * 1000), f("NEAR"),
            str(start - notify * 1000)]
    if o.get("cancelled") == "1":
        hset += [f("CANCELLED"), "1"]
    times = [start + dur * 1000] if o.get("cancelled") == "1" else [start - notify * 1000, start,
                                                                     start + dur * 1000]
    due = [t for t in times if t > now]
    cmds = [hset, ["ZADD", keys.const("VTN_KEY_EVENTS"), "0", eid],
            ["ZADD", keys.const("VTN_KEY_EVENTSEND"), str(start + dur * 1000), eid],
            ["INCR", keys.const("VTN_KEY_EVENTSVER")]]
    if due:
        cmds.append(["ZADD", keys.const("VTN_KEY_EVENTSDUE"), str(min(due)), eid])
    return cmds


# The opt of a participation field: one letter (common/lua/evopt.lua).
OPT_LETTER = {"optIn": "i", "optOut": "o"}


def _participant(args):
    """participant <eventID> <venID> [received=N] [mn=N opt=optIn|optOut code=N
    at=<ms>]: the VEN's field in its shard of the event's participation,
    "<received mn> <answered mn> <i|o> <code> <ms>" ("-" for what it has not
    done), and the event's counts that go with it."""
    if len(args) < 2:
        raise FixtureError("participant needs an eventID and a venID")
    eid, ven = args[0], args[1]
    attrs = ("received", "mn", "opt", "code", "at", "eventopt")
    o = _options(args[2:], {}, {a: a for a in attrs}, "participant")
    answered = "mn" in o
    if answered and o.get("opt") not in ("optIn", "optOut"):
        raise FixtureError("participant: an answer (mn=) needs opt=optIn or opt=optOut")
    if o.get("eventopt", "optIn") not in ("optIn", "optOut"):
        raise FixtureError("participant: eventopt= is optIn or optOut")
    parts = [o.get("received", o.get("mn", "-")), o.get("mn", "-"), OPT_LETTER.get(o.get("opt"), "-"),
             o.get("code", "200" if answered else "-"), o.get("at", CREATED_DEFAULT if answered else "-")]
    if "eventopt" in o:
        # The VEN's oadrCreateOpt for the event (common/lua/optcreate.lua).
        parts.append(OPT_LETTER[o["eventopt"]])
    ekey = keys.build("VTN_KEY_EVENT", eid)
    cmds = [["HSET", keys.event_vens(eid, ven), ven, " ".join(parts)],
            ["HINCRBY", ekey, keys.const("VTN_F_EVENT_RECEIVED"), "1"]]
    counted = o.get("eventopt", o.get("opt"))
    if counted:
        count = "OPT_IN" if counted == "optIn" else "OPT_OUT"
        cmds.append(["HINCRBY", ekey, keys.const("VTN_F_EVENT_" + count), "1"])
    return cmds


def _target(kind, value):
    """A ventargets:{<venID>} member: the kind's prefix and the value."""
    return keys.const("VTN_TARGET_" + kind) + value


def _group(args):
    """group <groupID> <venID> ...: the group and each member's ventargets set."""
    if len(args) < 2:
        raise FixtureError("group needs a groupID and at least one venID")
    g, vens = args[0], args[1:]
    cmds = [["HSET", keys.build("VTN_KEY_GROUP", g), keys.const("VTN_F_GROUP_NAME"), g],
            ["ZADD", keys.const("VTN_KEY_GROUPS"), "0", g],
            ["SADD", keys.build("VTN_KEY_GROUPVENS", g)] + vens]
    cmds += [["SADD", keys.build("VTN_KEY_VENTARGETS", v), _target("GROUP", g)] for v in vens]
    return cmds



def _program(args):
    """program <programID> [<venID> ...]: the program (the marketContext the
    event verb uses) and its enrolled VENs, each with its ventargets member."""
    if not args:
        raise FixtureError("program needs a programID")
    p, vens = args[0], args[1:]
    cmds = [["HSET", keys.build("VTN_KEY_PROGRAM", p), keys.const("VTN_F_PROGRAM_NAME"), p,
             keys.const("VTN_F_PROGRAM_MC"), PROGRAM_MC, keys.const("VTN_F_PROGRAM_CREATED"),
             CREATED_DEFAULT],
            ["ZADD", keys.const("VTN_KEY_PROGRAMS"), "0", p],
            ["SET", keys.build("VTN_KEY_PROGRAMMC", PROGRAM_MC), p]]
    for v in vens:
        cmds += [["ZADD", keys.build("VTN_KEY_PROGRAMVENS", p), "0", v],
                 ["SADD", keys.build("VTN_KEY_VENTARGETS", v), _target("PROGRAM", p)]]
    return cmds


def _targets(args):
    """targets <venID> [resources=a,b] [parties=c,d]: the VEN's resourceIDs and
    partyIDs, and the reverse indexes."""
    if not args:
        raise FixtureError("targets needs a venID")
    ven = args[0]
    o = _options(args[1:], {}, {"resources": "resources", "parties": "parties"}, "targets")
    cmds = []
    for attr, kind, idx in (("resources", "RESOURCE", "VTN_KEY_RESOURCEVENS"),
                            ("parties", "PARTY", "VTN_KEY_PARTYVENS")):
        for v in o.get(attr, "").split(",") if o.get(attr) else []:
            cmds += [["SADD", keys.build("VTN_KEY_VENTARGETS", ven), _target(kind, v)],
                     ["SADD", keys.build(idx, v), ven]]
    return cmds


_SETUP = {"ven": _ven, "queue": _queue, "cert": _cert, "event": _event, "group": _group,
          "program": _program, "targets": _targets, "participant": _participant}


def setup_commands(words):
    """The Redis commands of one setup line (already split), or None when the
    line is not a verb (a raw Redis command)."""
    if not words or words[0] not in _SETUP:
        return None
    return _SETUP[words[0]](words[1:])


def is_check(subject):
    w = subject.split(None, 1)
    return bool(w) and w[0] in CHECK_VERBS


class Entries(list):
    """Queue entries: `=` compares them joined by " ; " (an entry has spaces)."""
    joiner = " ; "


def _render_entry(e):
    k, sep, rest = e.partition(SEP)
    return " ".join([QUEUE_NAMES.get(k, k)] + (rest.split(SEP) if sep else []))


def check_value(r, subject):
    """What a check subject holds now: a str, None (nothing there) or a list."""
    try:
        w = shlex.split(subject)
    except ValueError as e:
        raise FixtureError("%r: %s" % (subject, e))
    verb, args = w[0], w[1:]
    if verb == "ven" and len(args) == 1:
        return "1" if r.cmd("EXISTS", keys.build("VTN_KEY_VEN", args[0])) == 1 else None
    if verb == "ven" and len(args) == 2:
        if args[1] not in VEN_ATTRS:
            raise FixtureError("ven: unknown attribute %r (known: %s)" % (args[1], ", ".join(sorted(VEN_ATTRS))))
        return r.cmd("HGET", keys.build("VTN_KEY_VEN", args[0]), keys.const("VTN_F_VEN_" + VEN_ATTRS[args[1]]))
    if verb == "queue" and len(args) == 1:
        return Entries(_render_entry(e) for e in r.cmd("LRANGE", keys.build("VTN_KEY_VENQ", args[0]), "0", "-1"))
    if verb == "index" and len(args) == 2 and args[0] in INDEXES:
        return r.cmd("GET", keys.build(INDEXES[args[0]], args[1]))
    if verb == "vens" and not args:
        flat = r.cmd("ZRANGE", keys.const("VTN_KEY_VENS"), "0", "-1", "WITHSCORES")
        members = flat[0::2]
        odd = [m for m, s in zip(flat[0::2], flat[1::2]) if float(s) != 0]
        if odd:
            # The API pages vtn:vens by lex order, which needs every score 0.
            raise AssertionError("vtn:vens members with a score other than 0: %s" % odd)
        return members
    if verb == "event-opt" and len(args) == 2:
        # The sixth part of the field: the VEN's oadrCreateOpt for the event.
        v = r.cmd("HGET", keys.event_vens(args[0], args[1]), args[1])
        w = v.split() if v else []
        return {l: name for name, l in OPT_LETTER.items()}.get(w[5]) if len(w) > 5 else None
    if verb in ("answer", "received") and len(args) == 2:
        # "<received mn> <answered mn> <i|o> <responseCode> <ms>", "-" for not yet
        v = r.cmd("HGET", keys.event_vens(args[0], args[1]), args[1])
        w = v.split() if v else ["-"] * 5
        if verb == "received":
            return None if w[0] == "-" else w[0]
        if w[1] == "-":
            return None
        opt = {l: name for name, l in OPT_LETTER.items()}.get(w[2], w[2])
        return " ".join([w[1], opt, w[3]])  # the answer, its time left out
    counts = {"opt-in": "OPT_IN", "opt-out": "OPT_OUT", "received": "RECEIVED"}
    if verb == "event" and len(args) == 2 and args[1] in counts:
        return r.cmd("HGET", keys.build("VTN_KEY_EVENT", args[0]), keys.const("VTN_F_EVENT_" + counts[args[1]]))
    if verb == "targets" and len(args) == 1:
        return sorted(r.cmd("SMEMBERS", keys.build("VTN_KEY_VENTARGETS", args[0])))
    raise FixtureError("unknown check %r (ven <venID> [attribute], queue <venID>, "
                       "index name|fp|reg <value>, vens, answer|received|event-opt <eventID> <venID>, "
                       "event <eventID> opt-in|opt-out|received)" % subject)
