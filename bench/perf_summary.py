#!/usr/bin/env python3
"""Per-poll figures from `perf stat -x, --per-thread` output (used by run-poll.sh --perf).

usage: perf_summary.py THREADS_FILE PERF_STAT_CSV < vtn-bench JSON line
THREADS_FILE has one "tid role" pair a line.
"""
import json
import sys


def main():
    polls = json.loads(sys.stdin.read().strip().splitlines()[-1])["counts"]["ok"] or 1
    roles = {}
    with open(sys.argv[1]) as f:
        for line in f:
            tid, role = line.split()
            roles[tid] = role
    totals = {}
    with open(sys.argv[2]) as f:
        for line in f:
            fields = line.strip().split(",")
            # "comm-tid,value,unit,event,..."; skip comments and "<not counted>"
            if len(fields) < 4 or "-" not in fields[0] or not fields[1][:1].isdigit():
                continue
            role = roles.get(fields[0].rsplit("-", 1)[1], "other")
            ev = totals.setdefault(role, {})
            ev[fields[3]] = ev.get(fields[3], 0.0) + float(fields[1])
    print(f"{'process':10} {'CPU µs':>8} {'ctx switches':>13} {'syscalls':>9}   (per OK poll, {polls} polls)")
    for role in sorted(totals, key=lambda r: ("gateway", "worker", "redis", r).index(r)
                       if r in ("gateway", "worker", "redis") else 3):
        t = totals[role]
        print(f"{role:10} {t.get('task-clock', 0) * 1000 / polls:8.1f} "
              f"{t.get('context-switches', 0) / polls:13.2f} "
              f"{t.get('raw_syscalls:sys_enter', 0) / polls:9.2f}")


if __name__ == "__main__":
    main()
