#!/usr/bin/env bash
# The oadrPoll capacity run (docs/bench.md): builds, starts redis-server, one
# vtn-gateway and two vtn-workers on free loopback ports, registers N VENs and
# lets them poll for T seconds, then prints requests/s, latency percentiles,
# errors and the CPU each process spent per poll. Stops everything it started.
# --tls: mutual TLS with a throwaway development PKI, one certificate per VEN.
# --callgrind: redis-server, the gateway and the workers run under valgrind and
# the run counts the instructions each executes per poll instead (--polls P, default 20,000):
# slow, but the same figure however loaded the machine is.
#
#   bench/run-poll.sh [--vens N] [--duration T] [--workers W] [--rate R]
#                     [--tls] [--tls13] [--build-dir DIR] [--log-level L]
#                     [--perf | --callgrind [--polls P]] [--keep-logs]
#                     [-- extra vtn-bench flags]
set -euo pipefail

VENS=${BENCH_VENS:-200}
DURATION=${BENCH_DURATION:-10s}
WORKERS=${BENCH_WORKERS:-2}
RATE=${BENCH_RATE:-0}
BUILD_DIR=${BENCH_BUILD_DIR:-}
BN_LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
PERF=0
CALLGRIND=0
POLLS=20000
TLS=${BENCH_TLS:-0}
TLS13=0
EXTRA=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --vens) VENS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --log-level) BN_LOG_LEVEL=$2; shift 2 ;;
    --perf) PERF=1; shift ;;
    --callgrind) CALLGRIND=1; shift ;;
    --polls) POLLS=$2; shift 2 ;;
    --tls) TLS=1; shift ;;
    --tls13) TLS=1; TLS13=1; shift ;;
    --keep-logs) BN_KEEP_LOGS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) usage >&2; exit 2 ;;
  esac
done
if [ "$CALLGRIND" = 1 ]; then
  [ "$PERF" = 0 ] || { echo "--callgrind and --perf exclude each other" >&2; exit 2; }
  case $POLLS in ''|*[!0-9]*) echo "--polls: 100..1000000" >&2; exit 2 ;; esac
  if [ "$POLLS" -lt 100 ] || [ "$POLLS" -gt 1000000 ]; then echo "--polls: 100..1000000" >&2; exit 2; fi
  command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
    { echo "--callgrind: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
fi
# shellcheck source=stack.sh
. "$(dirname "$0")/stack.sh"
bn_check_workers "$WORKERS"
BN_LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/vtn-bench.XXXXXX")
bn_build "${BUILD_DIR:-$BN_ROOT/build-bench}"
TLS_ARGS=()
if [ "$TLS" = 1 ]; then
  case $VENS in ''|*[!0-9]*) echo "--vens: not a number" >&2; exit 2 ;; esac
  bn_make_pki "$VENS"
  mapfile -t TLS_ARGS < <(bn_tls_args '%d')
  if [ "$TLS13" = 1 ]; then
    BN_GW_ENV+=("VTN_TLS_PROTOCOLS=TLSv1.2,TLSv1.3")
    TLS_ARGS+=(--tls13)
  fi
fi
if [ "$CALLGRIND" = 1 ]; then
  # Counting is switched on by callgrind_control, so start-up is not charged.
  BN_GW_WRAP=(valgrind --tool=callgrind --instr-atstart=no
    "--callgrind-out-file=$BN_LOGDIR/callgrind.gateway.%p")
  BN_WK_WRAP=(valgrind --tool=callgrind --instr-atstart=no
    "--callgrind-out-file=$BN_LOGDIR/callgrind.worker.%p")
  BN_REDIS_WRAP=(valgrind --tool=callgrind --instr-atstart=no
    "--callgrind-out-file=$BN_LOGDIR/callgrind.redis.%p")
  BN_READY_S=120
fi
bn_start_stack "$WORKERS"

PIDS=$(bn_pids_arg)
bn_say "redis=$REDIS_PID gateway=$GW_PID workers=${WORKER_PIDS[*]}; $VENS VENs for $DURATION$([ "$TLS" = 1 ] && echo ' over mutual TLS')"

PERF_PIDS=()
if [ "$PERF" = 1 ]; then
  command -v perf >/dev/null || bn_die "--perf: perf is not installed"
  # Both sample for the length of the poll phase (the registration before it is short):
  # a flat profile, and per-thread CPU, context switches and system calls.
  secs=$(python3 -c '
import re, sys
m = re.fullmatch(r"(\d+) *(ms|s|m|min|h)?", sys.argv[1].lower())
print(int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, None: 0.001}[m.group(2)] if m else 10)
' "$DURATION")
  all_pids="$GW_PID,$(IFS=,; echo "${WORKER_PIDS[*]}"),$REDIS_PID"
  # Which thread belongs to which process, for the per-process sums below.
  for p in "$GW_PID" "${WORKER_PIDS[@]}" "$REDIS_PID"; do
    role=worker
    [ "$p" = "$GW_PID" ] && role=gateway
    [ "$p" = "$REDIS_PID" ] && role=redis
    for t in /proc/"$p"/task/*; do echo "${t##*/} $role"; done
  done >"$BN_LOGDIR/threads.txt"
  perf record -q -o "$BN_LOGDIR/perf.data" -p "$all_pids" -- sleep "$secs" \
    >"$BN_LOGDIR/perf.log" 2>&1 &
  PERF_PIDS+=($!)
  perf stat -x, --per-thread -e task-clock,context-switches,raw_syscalls:sys_enter \
    -o "$BN_LOGDIR/perf-stat.csv" -p "$all_pids" -- sleep "$secs" >/dev/null 2>&1 &
  PERF_PIDS+=($!)
  BN_PIDS+=("${PERF_PIDS[@]}")
fi

if [ "$CALLGRIND" = 1 ]; then
  # Two runs with the same number of VENs, one poll and P polls, each dumped
  # on its own: their difference is P - 1 polls without the registrations.
  rc=0
  cg_run() {
    local o
    o=$("$BN_BENCH" --target "127.0.0.1:$GW_OADR" --vens "$VENS" --duration 600s --timeout 60s \
      --max-requests "$1" --pids "$PIDS" --json "${TLS_ARGS[@]}" "${EXTRA[@]}") || rc=1
    for p in "$GW_PID" "${WORKER_PIDS[@]}" "$REDIS_PID"; do callgrind_control -d "$p" >/dev/null; done
    printf '%s\n' "$o" | tail -1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["counts"]["ok"])'
  }
  for p in "$GW_PID" "${WORKER_PIDS[@]}" "$REDIS_PID"; do callgrind_control -i on "$p" >/dev/null; done
  n1=$(cg_run 1)
  n2=$(cg_run "$POLLS")
  bn_say "callgrind: $n1 poll, then $n2 polls"
  python3 - "$BN_LOGDIR" "$n1" "$n2" <<'EOF' || rc=1
import glob, sys
d, n1, n2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def total(path):
    t = 0
    for l in open(path):
        if l.startswith(("summary:", "totals:")):
            t = int(l.split()[1])
    return t
per = {}
for role in ("gateway", "worker", "redis"):
    runs = {}
    for f in glob.glob(f"{d}/callgrind.{role}.*.[12]"):
        part = int(f.rsplit(".", 1)[1])
        runs[part] = runs.get(part, 0) + total(f)
    if n2 <= n1 or 1 not in runs or 2 not in runs:
        sys.exit("callgrind: no count for " + role)
    per[role] = (runs[2] - runs[1]) / (n2 - n1)
line = ", ".join(f"{r} {v:,.0f}" for r, v in per.items())
print(f"callgrind        instructions per poll (Ir, registrations subtracted): {line}, "
      f"total {sum(per.values()):,.0f}")
EOF
  exit "$rc"
fi

redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
set +e
out=$("$BN_BENCH" --target "127.0.0.1:$GW_OADR" --vens "$VENS" --duration "$DURATION" \
  --rate "$RATE" --pids "$PIDS" --json "${TLS_ARGS[@]}" "${EXTRA[@]}")
rc=$?
set -e
printf '%s\n' "$out"

# How the workers use Redis: commands per poll and how many arrive per read.
{ printf '%s\n' "$out" | tail -1; redis-cli -p "$REDIS_PORT" INFO commandstats;
  redis-cli -p "$REDIS_PORT" INFO stats; } | python3 -c '
import json, re, sys
lines = sys.stdin.read().splitlines()
polls = json.loads(lines[0])["counts"]["ok"] or 1
calls = {m.group(1): int(m.group(2)) for m in
         (re.match(r"cmdstat_(\S+):calls=(\d+),", l) for l in lines) if m}
reads = next((int(l.split(":")[1]) for l in lines if l.startswith("total_reads_processed:")), 0)
total = sum(calls.values())
top = ", ".join(f"{c} {n / polls:.2f}" for c, n in sorted(calls.items(), key=lambda x: -x[1])
                if n * 20 >= polls)
print(f"redis            {total / polls:.2f} commands per poll ({top}); "
      f"{reads / polls:.2f} reads per poll, {total / max(reads, 1):.1f} commands per read")
' || true

for p in "$GW_PID" "${WORKER_PIDS[@]}" "$REDIS_PID"; do
  bn_alive "$p" || { bn_say "process $p died during the run"; rc=1; }
done

if [ "${#PERF_PIDS[@]}" -gt 0 ]; then
  for p in "${PERF_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "--- perf stat over the poll phase, per poll (from the bench's OK polls) ---"
  printf '%s\n' "$out" | python3 "$BN_ROOT/bench/perf_summary.py" \
    "$BN_LOGDIR/threads.txt" "$BN_LOGDIR/perf-stat.csv" || true
  perf report -i "$BN_LOGDIR/perf.data" --stdio --no-children --sort comm,dso \
    --percent-limit 0.5 2>/dev/null | grep -E '^ +[0-9]' | head -30 >"$BN_LOGDIR/perf-dso.txt" || true
  perf report -i "$BN_LOGDIR/perf.data" --stdio --no-children --sort comm,dso,sym \
    --percent-limit 0.3 2>/dev/null | grep -E '^ +[0-9]' | grep -v kernel.kallsyms | head -40 \
    >"$BN_LOGDIR/perf-sym.txt" || true
  echo "--- perf: share of samples by thread name and library ---"
  cat "$BN_LOGDIR/perf-dso.txt"
  echo "--- perf: hottest user-space symbols (kernel samples in a VM pile up at irq-enable points) ---"
  cat "$BN_LOGDIR/perf-sym.txt"
  BN_KEEP_LOGS=1
fi
exit "$rc"
