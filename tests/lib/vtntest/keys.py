"""The Redis data model as common/include/vtn/keys.h states it, read from
the header itself so tests and fixtures never spell a key or field twice.

    keys.KEYS["VTN_KEY_VEN"]        -> "ven:{<venID>}"
    keys.build("VTN_KEY_VENREQ", "ven-1", "00ff") -> "venreq:{ven-1}:00ff"
    keys.FIELDS["VTN_F_VEN_NAME"]   -> "n"
    keys.const("VTN_QUEUE_MAX")     -> 64
"""

import os
import re

HEADER = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                       "common", "include", "vtn", "keys.h"))

_DEFINE = re.compile(r"^#define\s+(VTN_\w+)\s+(\"[^\"]*\"|'.'|-?\d+)")


def parse(path=HEADER):
    """Returns {macro name: value} (str for strings and chars, int for numbers)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = _DEFINE.match(line)
            if m:
                v = m.group(2)
                out[m.group(1)] = v[1:-1] if v[0] in "\"'" else int(v)
    return out


CONSTANTS = parse()
# Key patterns (VTN_KEY_MAX is a size, not a key).
KEYS = {k: v for k, v in CONSTANTS.items() if k.startswith("VTN_KEY_") and isinstance(v, str)}
FIELDS = {k: v for k, v in CONSTANTS.items() if k.startswith("VTN_F_")}


def const(name):
    return CONSTANTS[name]


def build(name, *parts):
    """The key of pattern `name` (VTN_KEY_*) with its <parts> filled in order."""
    pattern = KEYS[name]
    holes = re.findall(r"<[^>]*>", pattern)
    if len(holes) != len(parts):
        raise ValueError("%s (%s) takes %d part(s), got %d" % (name, pattern, len(holes), len(parts)))
    it = iter(parts)
    return re.sub(r"<[^>]*>", lambda m: next(it), pattern)


def fields(prefix):
    """{suffix: field} of the VTN_F_<prefix>_* fields, e.g. fields("VEN")["NAME"] -> "n"."""
    p = "VTN_F_%s_" % prefix
    return {k[len(p):]: v for k, v in FIELDS.items() if k.startswith(p)}


def event_vens_shard(ven_id):
    """vtn_event_vens_shard(): FNV-1a (32 bits) of the venID, mod VTN_EVENT_VENS_SHARDS."""
    h = 2166136261
    for b in ven_id.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h & (const("VTN_EVENT_VENS_SHARDS") - 1)


def event_vens(event_id, ven_id):
    """The shard of the event's participation that holds the VEN's field."""
    return build("VTN_KEY_EVENTVENS", event_id, str(event_vens_shard(ven_id)))
