#!/usr/bin/env python3
"""Converts the one-line --json result of vtn-bench's single-purpose modes
(--mode poll, register, reports, handshake) into a run file of the bench
result contract ("schema": "openvtn-bench/1", docs/bench.md), so that
`vtn-bench plan` can be fitted on them. bench/fit.sh calls it: each mode
isolates one operation at a rate it sets, which the fit needs; the fleet
scenarios (`vtn-bench fleet ... --out`) write run files themselves.

  legacy2run.py --legacy RESULT.json --out RUN.json --scenario NAME
                [--mix-reports REPORTS.json] [--pids gateway=P,worker=P,...]
                [--workers W] [--mem-start B --mem-end B --keys-start K --keys-end K]

CPU: the legacy result gives microseconds per operation for each role over
its measured phase; times the operations that is the role's CPU seconds in
that phase, which is what the contract's processes.<role>.cpu_s holds.
--mix-reports: RESULT is a poll run measured while a reports run went on at
the same time; the report operations are taken at that run's rate over the
poll run's phase (an open-loop run sends at a constant rate), the CPU is the
poll run's (it covers every VTN process, whatever the load).
"""
import argparse
import datetime
import json
import os
import platform
import sys


def die(msg):
    sys.exit(f"legacy2run: {msg}")


def load_line(path):
    try:
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.startswith("{")]
        return json.loads(lines[-1])
    except (OSError, IndexError, ValueError) as e:
        die(f"{path}: no vtn-bench --json line ({e})")


def machine():
    m = {"cpus": os.cpu_count(), "kernel": platform.release()}
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                m["cpu_model"] = l.split(":", 1)[1].strip()
                break
        for l in open("/proc/meminfo"):
            if l.startswith("MemTotal:"):
                m["mem_total_mib"] = int(l.split()[1]) // 1024
                break
    except OSError:
        pass
    return m


def op(count, secs):
    return {"count": count, "per_s": count / secs if secs > 0 else 0}


def latency_ms(lat, count):
    if not lat:
        return None
    out = {"count": count}
    for k in ("p50", "p90", "p99", "max"):
        if k in lat:
            out[k] = lat[k] / 1000.0
    return out


def cpu_roles(per_op, n_ops, secs, pids):
    """processes.<role>: CPU seconds from microseconds per operation."""
    if not per_op:
        return None
    procs = {}
    for role, us in per_op.items():
        if role == "total":
            continue
        p = {"cpu_s": us * n_ops / 1e6}
        if pids.get(role):
            p["pids"] = pids[role]
        procs[role] = p
    return procs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--legacy", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--mix-reports")
    ap.add_argument("--pids", default="")
    ap.add_argument("--workers", type=int, default=2)
    for k in ("mem-start", "mem-end", "keys-start", "keys-end"):
        ap.add_argument("--" + k, type=int)
    a = ap.parse_args()
    j = load_line(a.legacy)
    pids = {}
    for item in filter(None, a.pids.split(",")):
        role, _, pid = item.partition("=")
        pids.setdefault(role, []).append(int(pid))

    mode = j.get("mode")
    secs = float(j.get("duration_s") or 0)
    if secs <= 0:
        die(f"{a.legacy}: no measured phase (duration_s {secs})")
    ops = {}
    cfg = {"vens": j.get("vens", 0), "workers": a.workers, "gateways": 1,
           "closed_loop": not j.get("rate")}
    if j.get("rate"):
        cfg["poll_interval_s"] = 1.0 / j["rate"]
    if mode in ("poll", "register"):
        k = j["counts"]
        rereg = j.get("reregistration", {}).get("counts", {}).get("ok", 0)
        n = k["ok"] + (rereg if mode == "poll" else 0)
        ops["poll" if mode == "poll" else "register"] = op(k["ok"], secs)
        if mode == "poll" and rereg:
            ops["register"] = op(rereg, secs)
        procs = cpu_roles(j.get("cpu_us_per_request"), n, secs, pids)
        lat = latency_ms(j.get("latency_us"), k["ok"])
        errors = k["done"] - k["ok"] + k["connection"] + k["timeout"]
    elif mode == "reports":
        stored = j["consumer"]["stored"]
        ops["update_report"] = op(j["updates"]["ok"], secs)
        ops["report_interval"] = op(stored, secs)
        procs = cpu_roles(j.get("cpu_us_per_interval"), stored, secs, pids)
        lat = latency_ms(j.get("latency_us"), j["updates"]["ok"])
        errors = j.get("errors", 0)
        cfg["report_back_s"] = 1.0 / j["rate"] if j.get("rate") else 0
    elif mode == "handshake":
        hs = j["handshakes"]
        ops["handshake"] = op(hs["ok"] - hs["resumed"], secs)
        ops["resumption"] = op(hs["resumed"], secs)
        procs = cpu_roles(j.get("cpu_us_per_handshake"), hs["ok"], secs, pids)
        lat = latency_ms(hs.get("latency_us"), hs["ok"])
        k = hs["counts"]
        errors = k["connection"] + k["tls"] + k["timeout"] + k["io"]
        cfg["resumption_share"] = 1.0 if j["tls"]["resume"] else 0.0
    else:
        die(f"{a.legacy}: mode {mode!r} is not poll, register, reports or handshake")

    if a.mix_reports:
        r = load_line(a.mix_reports)
        if r.get("mode") != "reports":
            die(f"{a.mix_reports}: not a --mode reports result")
        rsecs = float(r["duration_s"])
        for name, count in (("update_report", r["updates"]["ok"]),
                            ("report_interval", r["consumer"]["stored"])):
            per_s = count / rsecs
            ops[name] = {"count": per_s * secs, "per_s": per_s}
        errors += r.get("errors", 0)

    run = {
        "schema": "openvtn-bench/1",
        "scenario": a.scenario,
        "started_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": secs,
        "machine": machine(),
        "target": {"address": j.get("target"), "tls": mode == "handshake", "local": True},
        "config": cfg,
        "ops": ops,
        "errors": {"total": errors},
        "converted_from": "vtn-bench --mode " + mode + (" + --mode reports" if a.mix_reports else ""),
        "timeline": [],
    }
    if lat:
        run["latency_ms"] = lat
    if procs:
        run["processes"] = procs
    if a.mem_start is not None and a.mem_end is not None:
        run["redis"] = {"used_memory_start": a.mem_start, "used_memory_end": a.mem_end}
        if a.keys_start is not None and a.keys_end is not None:
            run["redis"].update(keys_start=a.keys_start, keys_end=a.keys_end)
        vens = j.get("registration", {}).get("registered") if mode == "poll" else None
        if mode == "register":
            vens = j["counts"]["ok"]
        if vens:
            run["redis"]["bytes_per_ven"] = (a.mem_end - a.mem_start) / vens
            if a.keys_start is not None and a.keys_end is not None:
                run["redis"]["keys_per_ven"] = (a.keys_end - a.keys_start) / vens
    elif mode == "reports" and j.get("mem_before", -1) >= 0 and j.get("mem_after", -1) >= 0:
        run["redis"] = {"used_memory_start": j["mem_before"], "used_memory_end": j["mem_after"]}
    with open(a.out, "w") as f:
        json.dump(run, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
