#!/usr/bin/env python3
"""vtn-bench fleet at smoke scale: one scenario (--scenario) for a few
seconds with tens of VENs against a real stack (redis, a gateway - over
mutual TLS with a certificate per VEN, or a pool of them, where the scenario
is about TLS - one worker, the scheduler). Checks what a user of the run
checks: the exit status, the JSON file parses and says what was run, every
VEN registered, the scenario's own figures are there and non-zero, no
request failed, the VTN's processes and Redis were measured. Not speed:
that is bench/run-fleet.sh (docs/bench.md)."""

import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from vtntest import Checks, Stack, check, eq, install_signal_handlers, parse_args  # noqa: E402
from vtntest.stack import Proc  # noqa: E402
from vtntest.tls import Pki, find_vtnctl  # noqa: E402

# scenario: (VENs, TLS certificates: 0 plain / N one per VEN / K < N a pool, extra flags)
SCENARIOS = {
    "poll": (80, 0, ["--duration", "3s", "--poll-interval", "500ms"]),
    "register-storm": (60, 60, ["--retry-base", "200ms", "--retry-cap", "2s"]),
    "event-fanout": (80, 0, ["--poll-interval", "1s", "--follow", "20s"]),
    "report-ingest": (40, 8, ["--duration", "3s", "--report-back", "500ms", "--intervals", "6"]),
    # 30 push VENs (their endpoint in the bench, the VTN's pushes over mutual TLS) and 10 polling
    "push": (40, 0, ["--duration", "8s", "--poll-interval", "1s", "--push-share", "0.75"]),
    # the gateway is restarted 6 s into the 12 s (the test plays the operator, see restart_watch);
    # the cancellation at 9 s leaves the VENs three poll intervals to get it
    "utility-day": (40, 40, ["--duration", "12s", "--poll-interval", "1s", "--report-back", "1s"]),
    # poll with a connection per poll (90 % of them resuming) and certificates
    # minted at start from the ECC CA; at most 8 connections open at once
    "poll-per-poll": (60, 60, ["--duration", "4s", "--poll-interval", "1s", "--connection",
                               "per-poll", "--resumption-share", "0.9", "--max-open", "8"]),
}
MINTED = {"poll-per-poll"}  # certificates made by vtn-bench (--mint-ca), not by vtnctl


def main():
    def extra(ap):
        ap.add_argument("--bench", required=True, help="vtn-bench")
        ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    cfg, args = parse_args(__doc__.split("\n")[0], extra=extra)
    cfg.require("gateway", "worker", "redis_server", "scheduler")
    install_signal_handlers()
    name = args.scenario
    scenario = "poll" if name == "poll-per-poll" else name
    vens, ncerts, flags = SCENARIOS[name]
    checks = Checks("e2e.fleet_" + name.replace("-", "_"))
    with checks.processes():
        with Stack(cfg, name="e2e-fleet-" + name) as st:
            st.start_redis()
            tls = []
            gw_env = {"VTN_MAX_CONNECTIONS": str(vens + 64)}
            if ncerts:
                pki = Pki(find_vtnctl(gateway=cfg.gateway), os.path.join(st.tmpdir, "pki"))
                gw_env.update(pki.gateway_env())
                if name in MINTED:
                    tls = ["--tls", "--mint-ca", "%s,%s" % (os.path.join(pki.ca_ecc, "ca.pem"),
                                                            os.path.join(pki.ca_ecc, "ca.key")),
                           "--ca", pki.client_ca]
                else:
                    for i in range(ncerts):
                        pki.issue("bench-%d" % i)
                    tls = ["--tls", "--cert", os.path.join(pki.dir, "bench-%d.pem"),
                           "--key", os.path.join(pki.dir, "bench-%d.key"), "--ca", pki.client_ca]
                if ncerts < vens:
                    tls += ["--cert-pool", str(ncerts)]
            if name == "push":
                # the VENs' endpoint presents a server certificate naming 127.0.0.1 from the
                # ECC CA, which the VTN's push client trusts; it requires the VTN's client one
                pki = Pki(find_vtnctl(gateway=cfg.gateway), os.path.join(st.tmpdir, "pki"))
                vtn = pki.issue("vtn-push")
                ca = os.path.join(pki.ca_ecc, "ca.pem")
                gw_env.update({"VTN_PUSH_CERT": "%s:%s" % (vtn.pem, vtn.key), "VTN_PUSH_CA": ca})
                tls = ["--push-cert", pki.server_ecc.pem, "--push-key", pki.server_ecc.key, "--push-ca", ca]
            gw = st.start_gateway(env=gw_env, wait=False)
            wk = st.start_worker([gw])
            sc = st.start_scheduler()
            redis_pid = next(p.pid for p in st.procs if p.name == "redis")
            pids = "gateway=%d,worker=%d,scheduler=%d,redis=%d" % (gw.pid, wk.pid, sc.pid, redis_pid)
            out = os.path.join(st.tmpdir, "fleet.json")
            env = dict(os.environ, VTN_FLEET_API_TOKEN=st.api_token)

            def restart_watch():
                """utility-day's --restart-cmd stops the gateway (SIGTERM); like an
                operator's restart, a new one starts on the same ports with the
                same settings once the old one has exited."""
                deadline = time.monotonic() + 60
                while gw.alive() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if not gw.alive():
                    p2 = Proc("gateway-restarted", gw.argv, gw.env,
                              os.path.join(st.tmpdir, "gateway-restarted.log"), gw.ports)
                    st.procs.append(p2)
                    st.gateways.append(p2)
                    # PR_SET_PDEATHSIG (vtntest.stack) belongs to the thread that started the
                    # process: were this thread to end, the new gateway would get SIGKILL. It
                    # lives on (a daemon) until the test's stack has stopped every process.
                    threading.Event().wait(300)

            day = []
            if name == "utility-day":
                gw.killed = True  # its exit is the restart's, not a failure
                day = ["--restart-cmd", "kill -TERM %d" % gw.pid]
                threading.Thread(target=restart_watch, daemon=True).start()

            def run():
                p = subprocess.run([args.bench, "fleet", "--scenario", scenario,
                                    "--target", "127.0.0.1:%d" % gw.ports["oadr"],
                                    "--api", "127.0.0.1:%d" % gw.ports["api"],
                                    "--redis", "127.0.0.1:%d" % st.redis_port, "--vens", str(vens),
                                    "--pids", pids, "--out", out, "--timeout", "20s",
                                    "--register-timeout", "40s"] + tls + day + flags,
                                   capture_output=True, text=True, timeout=120, env=env)
                eq(p.returncode, 0, "vtn-bench fleet exit status (stdout %s, stderr %s)"
                   % (p.stdout[-1500:], p.stderr[-800:]))
                check("not every VEN registered" not in p.stdout, "the summary's warning line")
                with open(out) as f:
                    return json.load(f)

            def common(j):
                eq((j["schema"], j["scenario"]), ("openvtn-bench/1", scenario), "schema and scenario")
                eq(j["config"]["vens"], vens, "config.vens")
                ident = "none" if not ncerts else "own" if ncerts >= vens else "pool:%d" % ncerts
                eq(j["config"]["identity"], ident, "config.identity")
                eq((j["target"]["tls"], j["target"]["local"]), (bool(ncerts), True), "target")
                eq(j["scenario_result"]["registered"], vens, "every VEN registered")
                if name != "utility-day":
                    eq(j["errors"]["total"], 0, "errors (%s)" % j["errors"]["by_kind"])
                check(j["duration_s"] > 0, "duration_s")
                check(j["latency_ms"]["count"] > 0 and j["latency_ms"]["p99"] > 0, "latency_ms")
                check(len(j["timeline"]) >= 1, "a timeline sample per second")
                check(any(s["requests"] > 0 for s in j["timeline"]), "the timeline counts requests")
                for role in ("gateway", "worker", "scheduler", "redis"):
                    check(role in j["processes"], "processes.%s measured" % role)
                if name != "utility-day":
                    check(j["processes"]["gateway"]["cpu_s"] > 0, "the gateway's CPU was measured")
                check(j["redis"]["keys_end"] > j["redis"]["keys_start"], "Redis keys grew")
                if name not in MINTED:
                    check(j["bench"]["rlimit_nofile"] >= vens, "rlimit_nofile")
                if ncerts:
                    check(j["scenario_result"]["handshakes"] >= vens, "a TLS handshake per VEN")

            def poll():
                j = run()
                common(j)
                ops = j["ops"]
                eq(ops["register"]["count"], 0, "registrations in the measured phase (they come before)")
                # 80 VENs every 0.5 s +-20 % for 3 s: about 480 polls
                check(ops["poll"]["count"] >= vens * 2, "polls: %d" % ops["poll"]["count"])
                eq(j["scenario_result"]["polls_ok"], ops["poll"]["count"], "polls_ok")
                eq(j["config"]["closed_loop"], False, "open loop")

            def poll_per_poll():
                j = run()
                common(j)
                ops, b = j["ops"], j["bench"]
                eq(b["connection"], "per-poll", "bench.connection")
                check(0 < b["peak_open"] <= 8, "at most --max-open connections: %d" % b["peak_open"])
                check(b["mint_per_s"] > 0, "certificates minted: %s" % b.get("mint_per_s"))
                # 60 VENs every 1 s +-20 % for 4 s: about 240 polls, each on a connection of its own
                polls = ops["poll"]["count"]
                check(polls >= vens * 2, "polls: %d" % polls)
                conns = ops["handshake"]["count"] + ops["resumption"]["count"]
                check(polls - vens <= conns <= polls + vens,
                      "a TLS handshake per poll: %d for %d polls" % (conns, polls))
                check(ops["resumption"]["count"] > ops["handshake"]["count"],
                      "most resumed (90 %%): %s" % {k: ops[k]["count"] for k in ("handshake", "resumption")})
                eq(j["scenario_result"]["reconnects"], 0, "reconnects (closing after a poll is none)")
                # a certificate of its own: the VTN holds every VEN's keys, not one VEN's
                check(j["redis"]["keys_end"] - j["redis"]["keys_start"] >= vens,
                      "Redis keys of %d VENs: %s" % (vens, j["redis"]))

            def register_storm():
                j = run()
                common(j)
                sr = j["scenario_result"]
                check(sr["all_in_s"] is not None and sr["all_in_s"] > 0, "all_in_s: %s" % sr["all_in_s"])
                check(sr["attempts"]["total"] >= vens, "attempts: %s" % sr["attempts"])
                eq(sr["given_up"], 0, "VENs given up")
                check("refused_5xx" in sr, "refused_5xx")
                eq(j["ops"]["register"]["count"], vens, "registrations")
                # 5 requests a VEN when none is refused; a refused one waits a backoff
                rx = sr["report_exchange"]
                check(vens <= rx["sent"] <= 8 * vens and rx["refused_5xx"] <= rx["sent"],
                      "report-exchange requests a few per VEN: %s" % rx)

            def event_fanout():
                j = run()
                common(j)
                sr = j["scenario_result"]
                eq((sr["events"], sr["targeted"], sr["received"], sr["answered"], sr["missing"]),
                   (1, vens, vens, vens, 0), "events, targeted, received, answered, missing")
                for k in ("received_s", "answered_s"):
                    check(all(sr[k][q] is not None for q in ("p50", "p99", "p100")), "%s: %s" % (k, sr[k]))
                    check(sr[k]["p50"] <= sr[k]["p99"] <= sr[k]["p100"], "%s ordered" % k)
                check(sr["create_ms"] > 0, "create_ms")
                check(j["ops"]["event_delivery"]["count"] >= vens, "event deliveries")
                check(j["ops"]["created_event"]["count"] >= vens, "oadrCreatedEvent answered")
                check(0 < sr["opted_out"] < vens, "about a fifth opted out: %d" % sr["opted_out"])

            def report_ingest():
                j = run()
                common(j)
                ops, sr = j["ops"], j["scenario_result"]
                check(ops["update_report"]["count"] >= vens, "updates: %d" % ops["update_report"]["count"])
                eq(ops["report_interval"]["count"], ops["update_report"]["count"] * 6,
                   "intervals: six per update answered 200")
                eq(sr["reports_set_up"], ncerts, "report requests taken (one per certificate)")
                check("update_report" in j["latency_by_op_ms"], "update latency")

            def push():
                j = run()
                common(j)
                sr = j["scenario_result"]
                npush = sr["push_vens"]
                eq((npush, j["config"]["push_share"]), (30, 0.75), "push VENs and the share")
                eq(sr["ven_ids_known"], npush, "every push VEN got its registration's push")
                eq(sr["targeted"], npush, "the event targeted every push VEN")
                check("setup_error" not in sr, "API steps: %s" % sr.get("setup_error"))
                eq((sr["received"], sr["answered"], sr["answers_recorded"]), (npush, npush, npush),
                   "push VENs that received the event, answered it, answers the VTN recorded")
                for k in ("received_s", "answered_s"):
                    check(all(sr[k][q] is not None for q in ("p50", "p99", "p100")), "%s: %s" % (k, sr[k]))
                    check(sr[k]["p50"] <= sr[k]["p99"] <= sr[k]["p100"], "%s ordered" % k)
                check(sr["pushes"]["register_report"] >= npush, "oadrRegisterReport pushed: %s" % sr["pushes"])
                check(sr["pushes"]["distribute_event"] >= npush, "the event pushed: %s" % sr["pushes"])
                check(j["ops"]["push"]["count"] >= npush, "ops.push: %s" % j["ops"]["push"])
                for k in ("push_tls", "push_request", "push_refused"):
                    eq(j["errors"]["by_kind"][k], 0, "errors.by_kind.%s" % k)
                check(j["ops"]["poll"]["count"] >= 10, "the 10 pull VENs polled")

            def utility_day():
                j = run()
                common(j)
                sr, rs = j["scenario_result"], j["scenario_result"]["restart"]
                eq((sr["events"], sr["modified"], sr["cancelled"]), (2, 1, 1), "events made, modified, cancelled")
                check("setup_error" not in sr, "API steps: %s" % sr.get("setup_error"))
                # two events, the modification and the cancellation: four sets to answer per VEN
                check(sr["event_deliveries"] >= vens * 3, "event deliveries: %d" % sr["event_deliveries"])
                check(sr["answers_ok"] >= vens * 3, "oadrCreatedEvent answered: %d" % sr["answers_ok"])
                eq((rs["done"], rs["exit_status"], rs["errors_before"]), (True, 0, 0),
                   "restart done, its command's status, errors before it")
                check(rs["all_back_s"] is not None, "every VEN connected again after the restart")
                check(sr["reconnects"] >= vens, "every VEN reconnected: %d" % sr["reconnects"])
                eq(j["processes"]["gateway"].get("gone"), True, "the restarted gateway is not measured")
                check(j["ops"]["update_report"]["count"] >= vens, "telemetry updates")
                check(any(s["phase"] == "restart" for s in j["timeline"]) or rs["at_s"] > 0, "restart in the timeline")

            checks.run("%s: the JSON a user reads" % name,
                       {"poll": poll, "register-storm": register_storm, "event-fanout": event_fanout,
                        "report-ingest": report_ingest, "utility-day": utility_day, "push": push,
                        "poll-per-poll": poll_per_poll}[name])
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
