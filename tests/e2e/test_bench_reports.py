#!/usr/bin/env python3
"""vtn-bench --mode reports at smoke scale: a few VENs for two seconds
against a real stack (redis, gateway, two workers), open loop and then
closed loop on the same stack. Checks that every run's counts agree with
each other and that nothing failed: each update answered 200, each of its
intervals found once by the bench's consumer, nothing left pending. Not
speed: that is bench/run-reports.sh (docs/bench.md)."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from vtntest import Checks, Stack, check, eq, install_signal_handlers, parse_args  # noqa: E402

VENS = 4
K = 5  # intervals per update


def main():
    cfg, args = parse_args(__doc__.split("\n")[0],
                           extra=lambda ap: ap.add_argument("--bench", required=True, help="vtn-bench"))
    cfg.require("gateway", "worker", "redis_server")
    install_signal_handlers()
    checks = Checks("e2e.bench_reports")
    with checks.processes():
        with Stack(cfg, name="e2e-bench-reports") as st:
            gw = st.start_basic(workers=2)
            st.wait_live_workers(gw, 2)
            pids = ",".join(["gateway=%d" % gw.pid] + ["worker=%d" % w.pid for w in st.workers] +
                            ["redis=%d" % next(p.pid for p in st.procs if p.name == "redis")])
            r = st.redis()

            def bench(*extra):
                """One vtn-bench run; its JSON line."""
                p = subprocess.run([args.bench, "--mode", "reports", "--target", "127.0.0.1:%d" % gw.ports["oadr"],
                                    "--redis", "127.0.0.1:%d" % st.redis_port, "--vens", str(VENS),
                                    "--intervals", str(K), "--pids", pids, "--json", "--timeout", "20s"] + list(extra),
                                   capture_output=True, text=True, timeout=120)
                out = p.stdout.strip().splitlines()
                eq(p.returncode, 0, "vtn-bench exit status (stdout %s, stderr %s)" % (out[-12:], p.stderr[-800:]))
                return json.loads(out[-1])

            def consistent(j, what):
                u, c = j["updates"], j["consumer"]
                eq((j["registered"], j["ready"]), (VENS, VENS), "%s: VENs registered, reports set up" % what)
                eq(j["setup"]["ok"], j["setup"]["sent"], "%s: setup requests answered OK" % what)
                check(u["ok"] > 0, "%s: no update was sent" % what)
                eq(u["ok"], u["sent"], "%s: updates answered 200 of those sent" % what)
                eq(j["errors"], 0, "%s: errors" % what)
                eq(c["done"], True, "%s: the consumer ran" % what)
                eq(c["confirmed"], u["ok"] * K, "%s: intervals answered 200" % what)
                eq((c["stored"], c["lost"], c["doubled"], c["foreign"], c["unconfirmed"], c["pending"]),
                   (c["confirmed"], 0, 0, 0, 0, 0),
                   "%s: stored, lost, doubled, foreign, stored without a 200, pending" % what)
                eq((c["entries"], c["values"]), (u["ok"], c["stored"]),
                   "%s: stream entries (one per update) and the values in them" % what)
                eq(j["xlen_after"] - j["xlen_before"], c["entries"], "%s: the stream grew by the entries read" % what)
                check(j["mem_per_interval"] > 0, "%s: Redis memory per interval was not read" % what)
                check(j["cpu_us_per_interval"]["total"] >= 0, "%s: CPU per interval" % what)
                check(j["latency_us"]["p99"] > 0, "%s: no p99 latency" % what)

            def open_loop():
                consistent(bench("--rate", "5", "--duration", "2s"), "open loop")

            def closed_loop_on_the_same_stack():
                before = r.cmd("XLEN", "vtn:{telemetry}")
                j = bench("--rate", "0", "--duration", "10s", "--max-requests", "40")
                consistent(j, "closed loop")
                eq(j["updates"]["sent"], 40, "updates sent with --max-requests 40")
                eq(j["xlen_before"], before, "the second run starts from the first run's stream")

            if checks.run("open loop: every interval answered 200 stored once", open_loop):
                checks.run("closed loop on the same stack: its own intervals counted",
                           closed_loop_on_the_same_stack)
            r.close()
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
