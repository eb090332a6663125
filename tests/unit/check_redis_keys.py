#!/usr/bin/env python3
"""docs/redis-keys.md against common/include/vtn/keys.h and common/lua/.

Fails (exit 1, one line per disagreement) when
- a key pattern of the header (VTN_KEY_*) has no "### `pattern`" section on
  the page, or a section names a key the header does not have;
- the field table of a key differs from its VTN_F_<K>_* fields (the fields
  of VTN_KEY_<K>);
- a Lua script (common/lua/*.lua) has no row in the page's script table, or
  a row names a script that does not exist;
- the page quotes a constant with a value, "`VTN_X` (n)", and the header
  says otherwise.
"""

import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

from vtntest import keys  # noqa: E402

DOC = os.path.join(ROOT, "docs", "redis-keys.md")
LUA_DIR = os.path.join(ROOT, "common", "lua")


def sections(text):
    """{key pattern: section text} for every "### `pattern` ..." heading."""
    out = {}
    parts = re.split(r"^### ", text, flags=re.M)
    for p in parts[1:]:
        m = re.match(r"`([^`]+)`", p)
        if m:
            out[m.group(1)] = p.split("\n## ")[0]
    return out


def table_names(text):
    """The backticked names in the first column of the markdown table rows."""
    names = set()
    for line in text.splitlines():
        m = re.match(r"^\|\s*(`[^|]*)\|", line)
        if m:
            names.update(re.findall(r"`([^`]+)`", m.group(1)))
    return names


def main():
    with open(DOC, encoding="utf-8") as f:
        doc = f.read()
    errors = []
    secs = sections(doc)
    header_keys = {v: k for k, v in keys.KEYS.items()}
    for pattern, name in sorted(header_keys.items()):
        if pattern not in secs:
            errors.append("%s %r has no section in docs/redis-keys.md" % (name, pattern))
    for pattern in sorted(secs):
        if pattern not in header_keys:
            errors.append("docs/redis-keys.md documents %r, which vtn/keys.h does not define" % pattern)

    prefixes = sorted({k[len("VTN_F_"):].split("_")[0] for k in keys.FIELDS})
    for p in prefixes:
        key = "VTN_KEY_" + p
        if key not in keys.KEYS:
            errors.append("fields VTN_F_%s_* belong to no key %s" % (p, key))
            continue
        want = set(keys.fields(p).values())
        got = table_names(secs.get(keys.KEYS[key], ""))
        for f in sorted(want - got):
            errors.append("field %r of %s is not in its table on the page" % (f, keys.KEYS[key]))
        for f in sorted(got - want):
            errors.append("the page lists field %r of %s, which vtn/keys.h does not define"
                          % (f, keys.KEYS[key]))

    scripts = {f[:-4] for f in os.listdir(LUA_DIR) if f.endswith(".lua")}
    lua_part = doc.split("## Lua scripts", 1)[1].split("\n## ", 1)[0] if "## Lua scripts" in doc else ""
    rows = table_names(lua_part)
    for s in sorted(scripts - rows):
        errors.append("script common/lua/%s.lua has no row in the page's script table" % s)
    for s in sorted(rows - scripts):
        errors.append("the page's script table names %r, which common/lua/ does not have" % s)

    for name, value in re.findall(r"`(VTN_\w+)` \((\d[\d,]*)\)", doc):
        have = keys.CONSTANTS.get(name)
        if have is None or str(have) != value.replace(",", ""):
            errors.append("the page says %s is %s; vtn/keys.h says %s" % (name, value, have))

    for e in errors:
        print(e)
    print("redis-keys: %d keys, %d fields, %d scripts; %d disagreement(s)"
          % (len(keys.KEYS), len(keys.FIELDS), len(scripts), len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
