#!/usr/bin/env bash
# The TLS capacity runs (docs/bench.md): a throwaway development PKI
# (deploy/dev-pki.sh), then for each mode a fresh VTN (redis-server, a
# vtn-gateway speaking mutual TLS, workers) on free loopback ports and one
# vtn-bench run:
#   handshake  new mutual-TLS connections in a closed loop for T seconds:
#              handshakes/s, gateway CPU per handshake, handshakes per
#              gateway CPU-second (target >= 1,000); with --callgrind the
#              gateway runs under valgrind and the run counts the machine
#              instructions it executes per handshake instead: slow, but the
#              same figure however loaded or fast the machine is, for
#              comparing two builds or settings (--handshakes H, default 400)
#   idle       N connections, one handshake and one poll each, held idle:
#              gateway memory per idle TLS connection (target <= 40 KB);
#              with --plain the same over plain HTTP, for comparison
# Stops everything it started (by pid), also on Ctrl-C or an error.
#
#   bench/run-tls.sh [--mode handshake|idle|both] [--connections C] [--duration T]
#                    [--idle-conns N] [--ramp R] [--hold T] [--resume] [--tls13]
#                    [--hs-poll] [--groups G] [--no-tickets] [--plain]
#                    [--gw-env NAME=VALUE]... [--workers W] [--perf]
#                    [--callgrind] [--handshakes H]
#                    [--build-dir DIR] [--log-level L] [--keep-logs]
#                    [-- extra vtn-bench flags]
set -euo pipefail

MODE=${BENCH_TLS_MODE:-both}
CONNS=${BENCH_CONNECTIONS:-16}
DURATION=${BENCH_DURATION:-10s}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
RAMP=${BENCH_RAMP:-64}
HOLD=${BENCH_HOLD:-5s}
WORKERS=${BENCH_WORKERS:-1}
BUILD_DIR=${BENCH_BUILD_DIR:-}
BN_LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
RESUME=0
TLS13=0
HS_POLL=0
TLS_GROUPS=""
PERF=0
PLAIN=0
NO_TICKETS=0
CALLGRIND=0
HANDSHAKES=400
GW_EXTRA=()
EXTRA=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --mode) MODE=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --idle-conns) IDLE_CONNS=$2; shift 2 ;;
    --ramp) RAMP=$2; shift 2 ;;
    --hold) HOLD=$2; shift 2 ;;
    --resume) RESUME=1; shift ;;
    --tls13) TLS13=1; shift ;;
    --hs-poll) HS_POLL=1; shift ;;
    --groups) TLS_GROUPS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --perf) PERF=1; shift ;;
    --callgrind) CALLGRIND=1; shift ;;
    --handshakes) HANDSHAKES=$2; shift 2 ;;
    --plain) PLAIN=1; shift ;;
    --no-tickets) NO_TICKETS=1; shift ;;
    --gw-env)
      case $2 in VTN_*=*) GW_EXTRA+=("$2") ;; *) echo "--gw-env: VTN_NAME=value" >&2; exit 2 ;; esac
      shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --log-level) BN_LOG_LEVEL=$2; shift 2 ;;
    --keep-logs) BN_KEEP_LOGS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) usage >&2; exit 2 ;;
  esac
done
case $MODE in handshake|idle|both) ;; *) echo "--mode: handshake, idle or both" >&2; exit 2 ;; esac
for v in "$CONNS" "$IDLE_CONNS" "$RAMP" "$WORKERS" "$HANDSHAKES"; do
  case $v in ''|*[!0-9]*) echo "--connections, --idle-conns, --ramp, --workers, --handshakes: numbers" >&2; exit 2 ;; esac
done
if [ "$CALLGRIND" = 1 ]; then
  [ "$MODE" = handshake ] || { echo "--callgrind goes with --mode handshake" >&2; exit 2; }
  [ "$PERF" = 0 ] || { echo "--callgrind and --perf exclude each other" >&2; exit 2; }
  if [ "$HANDSHAKES" -lt 10 ] || [ "$HANDSHAKES" -gt 100000 ]; then
    echo "--handshakes: 10..100000" >&2; exit 2
  fi
  command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
    { echo "--callgrind: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
fi
if [ "$PLAIN" = 1 ] && [ "$MODE" != idle ]; then echo "--plain goes with --mode idle" >&2; exit 2; fi
if [ "$IDLE_CONNS" -lt 1 ] || [ "$IDLE_CONNS" -gt 19000 ]; then
  echo "--idle-conns: 1..19000" >&2; exit 2
fi

# shellcheck source=stack.sh
. "$(dirname "$0")/stack.sh"
bn_check_workers "$WORKERS"
BN_LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/vtn-bench-tls.XXXXXX")
bn_build "${BUILD_DIR:-$BN_ROOT/build-bench}"
bn_make_pki 1
mapfile -t TLS_ARGS < <(bn_tls_args 0)
[ "$TLS13" = 1 ] && TLS_ARGS+=(--tls13)
[ "$RESUME" = 1 ] && TLS_ARGS+=(--resume)
[ -n "$TLS_GROUPS" ] && TLS_ARGS+=(--groups "$TLS_GROUPS")
[ "$NO_TICKETS" = 1 ] && TLS_ARGS+=(--no-tickets)
BASE_GW_ENV=()
[ "$TLS13" = 1 ] && BASE_GW_ENV+=("VTN_TLS_PROTOCOLS=TLSv1.2,TLSv1.3")
# after the defaults, so e.g. --gw-env VTN_TLS_CRL= (no revocation check) wins
BASE_GW_ENV+=("${GW_EXTRA[@]}")

secs_of() {
  python3 -c '
import re, sys
m = re.fullmatch(r"(\d+) *(ms|s|m|min|h)?", sys.argv[1].lower())
print(int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, None: 0.001}[m.group(2)] if m else 10)
' "$1"
}

# Every process of one mode's VTN is checked, then stopped before the next mode,
# so each mode starts from a freshly started gateway.
end_mode() {
  local name=$1 p
  for p in "$GW_PID" "${WORKER_PIDS[@]}" "$REDIS_PID"; do
    bn_alive "$p" || { bn_say "process $p died during the $name run"; rc=1; }
  done
  bn_stop_all
  for f in "$BN_LOGDIR"/gateway.log "$BN_LOGDIR"/worker*.log "$BN_LOGDIR"/redis.log; do
    [ -f "$f" ] && mv "$f" "${f%.log}-$name.log"
  done
  return 0
}

rc=0

# The speed of this machine's core right now, for comparing runs: a VM's
# speed drifts with its host's load (openssl speed, about 2 s of one core).
calibrate() {
  timeout 20 openssl speed -seconds 1 ecdsap256 2>/dev/null | awk '
    /^ *256 bits ecdsa/ { printf "machine          openssl speed ecdsap256: %.0f signs/s, %.0f verifies/s on one core\n", $(NF-1), $NF }' || true
}

run_handshake() {
  calibrate
  BN_GW_ENV=("${BASE_GW_ENV[@]}")
  if [ "$CALLGRIND" = 1 ]; then
    # Counting starts when the phase does (callgrind_control -i on), so start-up
    # and loading the certificates are not charged to the handshakes.
    BN_GW_WRAP=(valgrind --tool=callgrind --instr-atstart=no
      "--callgrind-out-file=$BN_LOGDIR/callgrind.out")
    BN_READY_S=120
  fi
  bn_start_stack "$WORKERS"
  local args=(--mode handshake --connections "$CONNS" --duration "$DURATION")
  if [ "$CALLGRIND" = 1 ]; then
    # bounded by count; the time bound only guards against a stuck run
    args=(--mode handshake --connections "$CONNS" --duration 600s --timeout 60s
      --max-requests "$HANDSHAKES")
    callgrind_control -i on "$GW_PID" >/dev/null
  fi
  if [ "$HS_POLL" = 1 ]; then args+=(--hs-poll); fi
  bn_say "handshake: gateway=$GW_PID; $CONNS connections for $DURATION"
  local perf_pid=""
  if [ "$PERF" = 1 ]; then
    command -v perf >/dev/null || bn_die "--perf: perf is not installed"
    # The profile covers the gateway only, from shortly after the start of the phase.
    perf record -q -F 499 --call-graph dwarf,16384 -o "$BN_LOGDIR/perf-handshake.data" -p "$GW_PID" -- sleep "$(secs_of "$DURATION")" \
      >"$BN_LOGDIR/perf.log" 2>&1 &
    perf_pid=$!
    BN_PIDS+=("$perf_pid")
  fi
  set +e
  out=$("$BN_BENCH" --target "127.0.0.1:$GW_OADR" --pids "$(bn_pids_arg)" --json \
    "${TLS_ARGS[@]}" "${args[@]}" "${EXTRA[@]}")
  local brc=$?
  set -e
  [ "$brc" = 0 ] || rc=1
  printf '%s\n' "$out"
  if [ "$CALLGRIND" = 1 ]; then
    callgrind_control -d "$GW_PID" >/dev/null
    local ok
    ok=$(printf '%s\n' "$out" | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["handshakes"]["ok"])' || echo 0)
    # the dump holds what was counted since instrumentation went on
    awk -v n="$ok" '/^(summary|totals):/ { t = $2 } END {
      if (n > 0 && t > 0) printf "callgrind        %d handshakes: %.0f instructions per handshake in the gateway (Ir)\n", n, t / n
      else print "callgrind        no count" }' "$BN_LOGDIR"/callgrind.out*
    BN_GW_WRAP=()
    BN_READY_S=10
    end_mode handshake
    return
  fi
  printf '%s\n' "$out" | tail -1 | python3 -c '
import json, sys
try:
    j = json.load(sys.stdin)
except ValueError:
    sys.exit("target           no result")
per = j.get("handshakes_per_cpu_s", {}).get("gateway", 0)
us = j.get("cpu_us_per_handshake", {}).get("gateway", 0)
verdict = "met" if per >= 1000 else "NOT met"
print(f"target           a gateway core completes >= 1,000 new mutual-TLS handshakes per second: "
      f"{per:.0f} per gateway CPU-second ({us:.0f} µs of gateway CPU each): {verdict}")
' || true
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" 2>/dev/null || true
    echo "--- perf: gateway, share of samples by library (self) ---"
    perf report -i "$BN_LOGDIR/perf-handshake.data" --stdio --no-children --sort dso \
      --percent-limit 1 2>/dev/null | grep -E '^ +[0-9]' | head -15 || true
    echo "--- perf: gateway, hottest symbols (self) ---"
    perf report -i "$BN_LOGDIR/perf-handshake.data" --stdio --no-children --sort dso,sym \
      --percent-limit 0.7 -g none 2>/dev/null | grep -E '^ +[0-9]' | head -40 || true
    echo "--- perf: gateway, inclusive time by function (children) ---"
    perf report -i "$BN_LOGDIR/perf-handshake.data" --stdio --children --sort sym \
      --percent-limit 3 -g none 2>/dev/null | grep -E '^ +[0-9]' | head -50 || true
    BN_KEEP_LOGS=1
  fi
  end_mode handshake
}

run_idle() {
  # 10,000 connections need 10,000 descriptors in the gateway and in the bench;
  # the limit is raised for everything started from here on.
  local need=$((IDLE_CONNS + 512))
  if [ "$(ulimit -n)" -lt "$need" ]; then
    ulimit -n "$need" 2>/dev/null || bn_die "ulimit -n $need failed (hard limit $(ulimit -Hn))"
  fi
  # The idle timeout must outlast opening and holding them all.
  BN_GW_ENV=("${BASE_GW_ENV[@]}" VTN_MAX_CONNECTIONS=$((IDLE_CONNS + 256)) VTN_IDLE_TIMEOUT=30m)
  local args=("${TLS_ARGS[@]}") pki=$BN_PKI
  if [ "$PLAIN" = 1 ]; then
    BN_PKI=""
    args=()
  fi
  bn_start_stack "$WORKERS"
  BN_PKI=$pki
  bn_say "idle: gateway=$GW_PID; $IDLE_CONNS connections$([ "$PLAIN" = 1 ] && echo ' (plain HTTP)'), at most $RAMP opening at once, held $HOLD"
  set +e
  out=$("$BN_BENCH" --target "127.0.0.1:$GW_OADR" --pids "gateway=$GW_PID" --json \
    "${args[@]}" --mode idle --connections "$IDLE_CONNS" --ramp "$RAMP" \
    --duration "$HOLD" "${EXTRA[@]}")
  local brc=$?
  set -e
  [ "$brc" = 0 ] || rc=1
  printf '%s\n' "$out"
  printf '%s\n' "$out" | tail -1 | python3 -c '
import json, sys
try:
    j = json.load(sys.stdin)
except ValueError:
    sys.exit("target           no result")
m = j["memory"]["gateway"]
per = m["kib_per_connection"]
n = j["idle"]["open"]
verdict = "met" if per * 1.024 <= 40 else "NOT met"
if j["tls"]["negotiated"] == "":
    print(f"plain HTTP       {per:.2f} KiB per idle connection over {n} open (no TLS)")
    sys.exit(0)
print(f"target           10,000 idle TLS connections cost the gateway <= 40 KB each: "
      f"{per:.2f} KiB (= {per * 1.024:.2f} kB) per connection over {n} open: {verdict}")
' || true
  end_mode idle
}

case $MODE in
  handshake) run_handshake ;;
  idle) run_idle ;;
  both) run_handshake; run_idle ;;
esac
exit "$rc"
