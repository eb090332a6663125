#!/usr/bin/env python3
"""An example consumer of the VTN's telemetry stream (docs/reports.md):
how a utility's data platform takes the interval data away from Redis.

It reads `vtn:{telemetry}` with a consumer group, writes each entry to its
sink (here a file of JSON lines, one per entry, standing for the archive;
an entry is one oadrReport, its values packed in the `i` field as
docs/reports.md says, and is stored as it is), makes the write durable, and
only then acknowledges the entries (XACK).
Killed at any point, it loses nothing:

- killed before the write: the entries are still pending for this consumer
  and are read again after the restart (XREADGROUP ... 0 reads this
  consumer's pending entries before any new one);
- killed between the write and the XACK: the same, and the sink already has
  them: the sink is idempotent by stream id (each entry's id is unique and
  ordered), so an entry delivered twice is stored once;
- killed while writing: a torn last line is cut off at the restart.

Entries another consumer of the group read but left unacknowledged for
--claim-idle-ms are taken over with XAUTOCLAIM at start.

    telemetry_consumer.py --port 6379 --group platform --name consumer-1 --sink out.jsonl

SIGTERM or SIGINT: finishes the batch in hand (write, ack) and exits 0.
--pause-before-ack lets a test kill it between the write and the XACK.

Python standard library and the tests' small Redis client only.
"""

import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest.resp import Redis, RedisError  # noqa: E402

STREAM = "vtn:{telemetry}"


class Sink:
    """A file of JSON lines {"id": <stream id>, "f": {field: value}},
    appended to and fsync'd; ids already in it are not written again."""

    def __init__(self, path):
        self.path = path
        self.ids = set()
        good = 0
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            for line in data.split(b"\n")[:-1]:  # the part after the last \n is a torn write
                self.ids.add(json.loads(line)["id"])
                good += len(line) + 1
            if good != len(data):
                with open(path, "r+b") as f:
                    f.truncate(good)
        self.f = open(path, "ab")

    def write(self, entries):
        """Stores the entries not stored yet; returns once they are on disk."""
        new = 0
        for eid, fields in entries:
            if eid in self.ids:
                continue
            self.f.write(json.dumps({"id": eid, "f": fields}, sort_keys=True).encode() + b"\n")
            self.ids.add(eid)
            new += 1
        self.f.flush()
        os.fsync(self.f.fileno())
        return new

    def close(self):
        self.f.close()


def entries_of(reply):
    """[(id, {field: value})] from an XREADGROUP reply (None when it timed
    out). A pending entry trimmed from the stream comes back with nil
    fields: there is nothing left to store, it is only acknowledged."""
    out = []
    for _stream, items in reply or []:
        for eid, flat in items:
            out.append((eid, None if flat is None else dict(zip(flat[0::2], flat[1::2]))))
    return out


class Consumer:
    def __init__(self, r, group, name, sink, count, pause_before_ack, log):
        self.r, self.group, self.name, self.sink = r, group, name, sink
        self.count, self.pause_before_ack, self.log = count, pause_before_ack, log
        self.stop = False

    def ensure_group(self):
        try:
            # "0": a new group starts with what the stream holds now
            self.r.cmd("XGROUP", "CREATE", STREAM, self.group, "0", "MKSTREAM")
        except RedisError as e:
            if not str(e).startswith("BUSYGROUP"):
                raise

    def store_and_ack(self, entries):
        if not entries:
            return
        new = self.sink.write([(i, f) for i, f in entries if f is not None])
        self.log("wrote %d new of %d, acking" % (new, len(entries)))
        if self.pause_before_ack:
            time.sleep(self.pause_before_ack)
        self.r.cmd("XACK", STREAM, self.group, *[i for i, _ in entries])

    def take_back_pending(self):
        """This consumer's own pending entries first (what it read before a
        crash), then those a dead consumer left idle too long."""
        start = "0"
        while not self.stop:
            batch = entries_of(self.r.cmd("XREADGROUP", "GROUP", self.group, self.name, "COUNT",
                                          self.count, "STREAMS", STREAM, start))
            if not batch:
                break
            self.store_and_ack(batch)
            start = batch[-1][0]

    def claim_idle(self, idle_ms):
        cursor = "0-0"
        for _ in range(10000):  # bounded: each round moves the cursor on
            nxt, claimed = self.r.cmd("XAUTOCLAIM", STREAM, self.group, self.name, idle_ms, cursor,
                                      "COUNT", self.count)[:2]
            self.store_and_ack([(i, None if flat is None else dict(zip(flat[0::2], flat[1::2])))
                                for i, flat in claimed])
            if nxt == "0-0" or self.stop:
                break
            cursor = nxt

    def run(self, block_ms):
        while not self.stop:
            self.store_and_ack(entries_of(self.r.cmd(
                "XREADGROUP", "GROUP", self.group, self.name, "COUNT", self.count,
                "BLOCK", block_ms, "STREAMS", STREAM, ">")))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--group", default="platform")
    ap.add_argument("--name", default="consumer-1")
    ap.add_argument("--sink", required=True, help="file of JSON lines, one per stream entry")
    ap.add_argument("--count", type=int, default=1000, help="entries per read")
    ap.add_argument("--block-ms", type=int, default=1000, help="how long one read waits for new entries")
    ap.add_argument("--claim-idle-ms", type=int, default=60000,
                    help="take over other consumers' entries pending longer than this")
    ap.add_argument("--pause-before-ack", type=float, default=0.0,
                    help="seconds to wait between the sink write and the XACK (for tests)")
    a = ap.parse_args(argv)

    def log(msg):
        print("consumer %s: %s" % (a.name, msg), flush=True)

    r = Redis(a.host, a.port, timeout=a.block_ms / 1000.0 + 10.0).connect()
    sink = Sink(a.sink)
    c = Consumer(r, a.group, a.name, sink, a.count, a.pause_before_ack, log)

    def on_signal(sig, frame):
        c.stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    c.ensure_group()
    c.take_back_pending()
    c.claim_idle(a.claim_idle_ms)
    log("started, %d entries in the sink" % len(sink.ids))
    c.run(a.block_ms)
    sink.close()
    r.close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
