#!/usr/bin/env python3
"""examples/*.xml, the requests the README and deploy/run-local.sh tell a
newcomer to send, are valid OpenADR 2.0b: each is checked against the
official schema (its VEN_ID / REGISTRATION_ID placeholders filled in).

    check_examples.py OFFICIAL_SCHEMA
"""

import os
import shutil
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

from vtntest import oadr  # noqa: E402

EXAMPLES = os.path.join(ROOT, "examples")
FILL = {"VEN_ID": "ven-0123456789abcdef0123", "REGISTRATION_ID": "reg-0123456789abcdef0123"}


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    names = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".xml"))
    if not names:
        print("no examples/*.xml")
        return 1
    tmp = tempfile.mkdtemp(prefix="vtn-examples-")
    try:
        v = oadr.Validator(sys.argv[1], workdir=tmp)
        failed = 0
        for n in names:
            with open(os.path.join(EXAMPLES, n), encoding="utf-8") as f:
                body = f.read()
            for k, val in FILL.items():
                body = body.replace(k, val)
            try:
                v.validate(body.encode(), n)
                payload = oadr.Reply(body.encode()).name
                print("ok   %s (%s)" % (n, payload))
            except (oadr.SchemaError, ValueError) as e:
                failed += 1
                print("FAIL %s: %s" % (n, e))
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
