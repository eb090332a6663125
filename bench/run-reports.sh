#!/usr/bin/env bash
# The report-ingestion run (docs/bench.md): a fresh throwaway VTN
# (redis-server, one vtn-gateway, two vtn-workers on free loopback ports),
# vtn-bench --mode reports, and a line per target. Plain HTTP keep-alive, one
# connection per VEN. Every VEN registers, registers a METADATA_TELEMETRY_USAGE
# report, takes the VTN's oadrCreateReport on a poll and answers
# oadrCreatedReport, then sends an oadrUpdateReport of K intervals every P s
# (open loop; --closed: the next one as soon as the last is answered). After
# the updates a consumer in vtn-bench reads the stream through a consumer
# group (XREADGROUP, XACK) and counts every interval answered 200: lost and
# doubled must be 0.
#
#   bench/run-reports.sh [--vens N] [--interval P] [--intervals K] [--duration T]
#                        [--closed] [--callgrind U] [--workers W] [--build-dir DIR]
#                        [--log-level L] [--keep-logs] [-- extra vtn-bench flags]
#
# Defaults: N 1,000, P 0.5 s, K 12, T 10 s: 24,000 intervals offered per second.
# --callgrind U: instructions per interval instead, independent of the load:
# redis-server and one worker (unless --workers) run under callgrind; on one
# stack, 8 VENs in a closed loop send 40 updates, then 40 + U, the counters
# zeroed before and dumped after each run; (second - first) / (U * K) per
# process.
set -euo pipefail

VENS=${BENCH_VENS:-1000}
INTERVAL=${BENCH_INTERVAL:-0.5}
K=${BENCH_INTERVALS:-12}
DURATION=${BENCH_DURATION:-10s}
CLOSED=${BENCH_CLOSED:-0}
CALLGRIND=${BENCH_CALLGRIND:-0}
WORKERS=${BENCH_WORKERS:-2}
BUILD_DIR=${BENCH_BUILD_DIR:-}
BN_LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
EXTRA=()

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --vens) VENS=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --intervals) K=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --closed) CLOSED=1; shift ;;
    --callgrind) CALLGRIND=$2; shift 2 ;;
    --workers) WORKERS=$2; WORKERS_SET=1; shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --log-level) BN_LOG_LEVEL=$2; shift 2 ;;
    --keep-logs) BN_KEEP_LOGS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) usage >&2; exit 2 ;;
  esac
done
for v in "$VENS" "$K"; do
  case $v in ''|*[!0-9]*|0) echo "--vens and --intervals: positive integers" >&2; exit 2 ;; esac
done
python3 -c "import sys; sys.exit(0 if float('$INTERVAL') > 0 else 1)" 2>/dev/null ||
  { echo "--interval: seconds, > 0" >&2; exit 2; }
# shellcheck source=stack.sh
. "$(dirname "$0")/stack.sh"
bn_check_workers "$WORKERS"
BN_LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/vtn-bench.XXXXXX")
bn_build "${BUILD_DIR:-$BN_ROOT/build-bench}"

need=$((VENS + 512))
[ "$(ulimit -n)" -ge "$need" ] || ulimit -n "$need" 2>/dev/null ||
  bn_die "$VENS VENs need $need file descriptors; the hard limit is $(ulimit -Hn)"
BN_GW_ENV+=("VTN_MAX_CONNECTIONS=$((VENS + 256))")

rate=0
[ "$CLOSED" = 1 ] || rate=$(python3 -c "print(1 / $INTERVAL)")

if [ "$CALLGRIND" != 0 ]; then
  case $CALLGRIND in *[!0-9]*) echo "--callgrind: a number of updates" >&2; exit 2 ;; esac
  command -v valgrind >/dev/null || bn_die "--callgrind needs valgrind"
  BN_REDIS_WRAP=(valgrind --tool=callgrind "--callgrind-out-file=$BN_LOGDIR/cg.%p")
  # Redis under callgrind answers slowly; one worker (unless --workers says
  # otherwise) so that no worker misses the gateway's 3 s heartbeat liveness
  BN_WK_WRAP=(env VTN_REDIS_TIMEOUT=30s "${BN_REDIS_WRAP[@]}")
  [ -n "${WORKERS_SET:-}" ] || WORKERS=1
  BN_READY_S=60
  BN_GW_ENV+=("VTN_REQUEST_TIMEOUT=120s") # a worker under callgrind is 50 times slower
  bn_start_stack "$WORKERS"
  cg_pids=("$REDIS_PID" "${WORKER_PIDS[@]}")
  cg_run() { # N SUFFIX: N updates, counters zeroed before and dumped after; "pid Ir" lines
    local p f
    for p in "${cg_pids[@]}"; do callgrind_control -z "$p" >/dev/null; done
    "$BN_BENCH" --mode reports --target "127.0.0.1:$GW_OADR" --redis "127.0.0.1:$REDIS_PORT" \
      --vens 8 --intervals "$K" --rate 0 --max-requests "$1" --duration 3000s --timeout 60s "${EXTRA[@]}" \
      >"$BN_LOGDIR/cg-bench-$1$2.txt" || [ "$2" = -warm ] ||
      bn_die "vtn-bench failed (see $BN_LOGDIR/cg-bench-$1$2.txt)"
    for p in "${cg_pids[@]}"; do callgrind_control -d "$p" >/dev/null; done
    sleep 1
    for p in "${cg_pids[@]}"; do
      f=$(ls -t "$BN_LOGDIR"/cg."$p".* | head -1)
      echo "$p $(grep -m1 '^summary:\|^totals:' "$f" | awk '{print $2}')"
    done
  }
  # warm-up: scripts loaded, allocator grown (a 503 while the workers under
  # callgrind come up does not matter here; it does in the two runs)
  cg_run 40 -warm >/dev/null
  a=$(cg_run 40 "")
  b=$(cg_run $((40 + CALLGRIND)) "")
  python3 - "$a" "$b" "$CALLGRIND" "$K" "$REDIS_PID" <<'PYEOF'
import sys
a = dict(l.split() for l in sys.argv[1].splitlines())
b = dict(l.split() for l in sys.argv[2].splitlines())
u, k, redis = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
n = 0
for pid in a:
    role = "redis-server" if pid == redis else "worker %d" % n
    n += pid != redis
    print(f"instructions     {role}: {(int(b[pid]) - int(a[pid])) / (u * k):,.0f} per interval")
PYEOF
  bn_stop_all
  exit 0
fi

bn_start_stack "$WORKERS"
bn_say "redis=$REDIS_PID gateway=$GW_PID workers=${WORKER_PIDS[*]}; $VENS VENs, K=$K, $([ "$CLOSED" = 1 ] && echo "closed loop" || echo "every $INTERVAL s")"
rc=0
set +e
out=$("$BN_BENCH" --mode reports --target "127.0.0.1:$GW_OADR" --redis "127.0.0.1:$REDIS_PORT" \
  --vens "$VENS" --intervals "$K" --rate "$rate" --duration "$DURATION" --pids "$(bn_pids_arg)" \
  --json "${EXTRA[@]}")
brc=$?
set -e
printf '%s\n' "$out" | sed '$d'
printf '%s\n' "$out" | tail -1 >"$BN_LOGDIR/reports.json"
printf '%s\n' "$out" | tail -1
[ "$brc" = 0 ] || rc=1
for p in "$GW_PID" "${WORKER_PIDS[@]}" "$REDIS_PID"; do
  bn_alive "$p" || { bn_say "process $p died during the run"; rc=1; }
done

# Where the memory goes: the stream (MEMORY USAGE of the whole stream over
# its entries) and one update's seen key.
cli() { redis-cli -p "$REDIS_PORT" "$@"; }
xlen=$(cli XLEN 'vtn:{telemetry}')
if [ "${xlen:-0}" -gt 0 ]; then
  smem=$(cli MEMORY USAGE 'vtn:{telemetry}' SAMPLES 0)
  seen=$(cli --scan --pattern 'vtn:{telemetry}:seen:*' | head -1 || true)
  nseen=$(cli EVAL "return #redis.call('KEYS', ARGV[1])" 0 'vtn:{telemetry}:seen:*')
  printf 'stream           %s entries, MEMORY USAGE %s bytes = %s per entry; %s seen keys, one is %s bytes\n' \
    "$xlen" "$smem" "$((smem / xlen))" "$nseen" "$(cli MEMORY USAGE "$seen" SAMPLES 0)"
fi

python3 - "$BN_LOGDIR/reports.json" <<'PYEOF' || rc=1
import json, sys
j = json.load(open(sys.argv[1]))
ok = True
def line(what, value, limit, unit, at_least=False):
    global ok
    met = value is not None and value >= 0 and (value >= limit if at_least else value <= limit)
    ok &= met
    shown = "-" if value is None else f"{value:,.1f}"
    print(f"target           {what} {shown}{unit} {'>=' if at_least else '<='} {limit:,}{unit}: "
          f"{'met' if met else 'NOT met'}")
c = j["consumer"]
line("intervals stored per second", j["intervals_stored_per_s"], 20000, "", at_least=True)
line("Redis memory per stored interval", j["mem_per_interval"], 100, " B")
line("intervals lost", c["lost"] if c["done"] else None, 0, "")
line("intervals doubled", c["doubled"] if c["done"] else None, 0, "")
line("errors (requests, setup, consumer)", j["errors"], 0, "")
sys.exit(0 if ok else 1)
PYEOF
bn_stop_all
exit "$rc"
