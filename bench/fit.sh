#!/usr/bin/env bash
# The calibration runs of the capacity model (docs/capacity.md): starts a
# throwaway VTN on free loopback ports (redis-server, one vtn-gateway, W
# vtn-workers; bench/stack.sh), measures on it, one after the other:
#   poll-R.json       N VENs polling at R polls/s in all (open loop), for
#                     each R of --rates, and poll-closed.json (closed loop)
#   register.json     registrations of --reg-vens VENs (64 connections)
#   reports.json      report ingestion: N VENs, an oadrUpdateReport of K
#                     intervals every 1/U s each (--report-rate U per VEN)
#   mix.json          1,000 polls/s while a reports run as above goes on:
#                     how far two kinds of request share wake-ups
#   handshake.json    new mutual-TLS connections, full handshakes (a second
#   resumption.json   stack with a development PKI), then resumed ones
# and writes each as a run file of the bench result contract into OUT, then,
# unless --no-check, the check: polls alone at --check-rate (a rate between
# the fitted ones) into OUT/check/poll.json, then polls at that rate while a
# reports run goes on (a mix no calibration run had) into
# OUT/check/mix.json, then the same rates from the fleet simulator
# (`vtn-bench fleet --scenario report-ingest`, 300 VENs polling with jitter
# on their own connections) into OUT/check/fleet-mix.json, and
# `vtn-bench plan --runs OUT --check ...` into
# OUT/check/check.txt. The calibration and the check run back to back on the
# same machine so they share its conditions. Raw outputs are kept in OUT/raw.
# Stops every process it started.
#
#   bench/fit.sh [--out DIR] [--duration T] [--vens N] [--workers W]
#                [--rates "250 500 1000 2000 5000"] [--reg-vens N]
#                [--report-rate U] [--intervals K] [--check-rate R]
#                [--check-report-rate U] [--no-tls] [--no-check]
#                [--build-dir DIR] [--keep-logs]
#
# Defaults: OUT fit-<UTC time>, T 10s, N 200, W 2, --reg-vens 10000,
# U 2.5 (500 updates/s), K 12, check 1500 polls/s with U 1.25 (250
# updates/s, 3,000 intervals/s). The open-loop rates are totals, spread over
# the N VENs. A run takes about T + 3 s; the whole set about 3 minutes.
set -euo pipefail

OUT=""
DURATION=10
VENS=200
WORKERS=2
RATES="250 500 1000 2000 5000"
REG_VENS=10000
REPORT_RATE=2.5
K=12
CHECK_RATE=1500
MIX_RATE=1000
CHECK_REPORT_RATE=1.25
FLEET_VENS=300
TLS=1
CHECK=1
BUILD_DIR=""
BN_LOG_LEVEL=warn

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --duration) DURATION=${2%s}; shift 2 ;;
    --vens) VENS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --rates) RATES=$2; shift 2 ;;
    --reg-vens) REG_VENS=$2; shift 2 ;;
    --report-rate) REPORT_RATE=$2; shift 2 ;;
    --intervals) K=$2; shift 2 ;;
    --check-rate) CHECK_RATE=$2; shift 2 ;;
    --check-report-rate) CHECK_REPORT_RATE=$2; shift 2 ;;
    --no-tls) TLS=0; shift ;;
    --no-check) CHECK=0; shift ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --keep-logs) BN_KEEP_LOGS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
for v in "$DURATION" "$VENS" "$REG_VENS" "$K" $RATES "$CHECK_RATE"; do
  case $v in ''|*[!0-9]*|0) echo "--duration (s), --vens, --reg-vens, --intervals and the rates: positive integers" >&2; exit 2 ;; esac
done
for v in "$REPORT_RATE" "$CHECK_REPORT_RATE"; do
  python3 -c "import sys; sys.exit(0 if 0 < float('$v') <= 100 else 1)" 2>/dev/null ||
    { echo "--report-rate, --check-report-rate: updates per second per VEN, (0, 100]" >&2; exit 2; }
done
[ "$DURATION" -le 600 ] || { echo "--duration: at most 600 s" >&2; exit 2; }

# shellcheck source=stack.sh
. "$(dirname "$0")/stack.sh"
bn_check_workers "$WORKERS"
OUT=${OUT:-fit-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/raw" "$OUT/check"
BN_LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/vtn-fit.XXXXXX")
bn_build "${BUILD_DIR:-$BN_ROOT/build-bench}"
CONVERT=(python3 "$BN_ROOT/bench/legacy2run.py")
need=$((VENS * 2 + 512))
[ "$(ulimit -n)" -ge "$need" ] || ulimit -n "$need" 2>/dev/null ||
  bn_die "the runs need $need file descriptors; the hard limit is $(ulimit -Hn)"

rc=0
mem() { redis-cli -p "$REDIS_PORT" INFO memory | awk -F: '/^used_memory:/ { print $2 + 0 }'; }
keys() { redis-cli -p "$REDIS_PORT" DBSIZE; }

# bench NAME SCENARIO [vtn-bench flags]: one measured run, converted.
bench() {
  local name=$1 scenario=$2 m0 m1 k0 k1
  shift 2
  m0=$(mem); k0=$(keys)
  if ! "$BN_BENCH" --target "127.0.0.1:$GW_OADR" --pids "$(bn_pids_arg)" --json "$@" \
    >"$OUT/raw/$name.txt" 2>&1; then
    bn_say "$name: vtn-bench reported errors (see $OUT/raw/$name.txt); converted anyway"
    rc=1
  fi
  m1=$(mem); k1=$(keys)
  local memargs=(--mem-start "$m0" --mem-end "$m1" --keys-start "$k0" --keys-end "$k1")
  # The reports mode measures Redis around its updates itself, without the
  # registrations before them; the converter takes those figures.
  [ "$scenario" != report-ingest ] || memargs=()
  "${CONVERT[@]}" --legacy "$OUT/raw/$name.txt" --out "$OUT/$name.json" --scenario "$scenario" \
    --pids "$(bn_pids_arg)" --workers "$WORKERS" "${memargs[@]}" || { rc=1; return 0; }
  grep -E '^(polls|registrations|updates|handshakes|CPU per|load) ' "$OUT/raw/$name.txt" |
    sed "s/^/$name: /" >&2 || true
}

per_ven() { python3 -c "print($1 / $VENS)"; }

# mix NAME OUTFILE POLLS_PER_S UPDATES_PER_S_PER_VEN: polls and report
# ingestion at once. A reports run starts first and ends last, a poll run
# goes on in its middle; the poll run's CPU figures cover every process,
# both loads.
mix() {
  local name=$1 out=$2 polls=$3 urate=$4 pid
  "$BN_BENCH" --mode reports --target "127.0.0.1:$GW_OADR" --redis "127.0.0.1:$REDIS_PORT" \
    --vens "$VENS" --rate "$urate" --intervals "$K" --duration "$((DURATION + 8))s" \
    --run "${name}r" --json >"$OUT/raw/$name-reports.txt" 2>&1 &
  pid=$!
  BN_PIDS+=("$pid")
  sleep 4
  "$BN_BENCH" --target "127.0.0.1:$GW_OADR" --pids "$(bn_pids_arg)" --json --vens "$VENS" \
    --rate "$(per_ven "$polls")" --duration "${DURATION}s" --run "${name}p" \
    >"$OUT/raw/$name-poll.txt" 2>&1 || { bn_say "$name: the poll run reported errors"; rc=1; }
  wait "$pid" || { bn_say "$name: the reports run reported errors"; rc=1; }
  "${CONVERT[@]}" --legacy "$OUT/raw/$name-poll.txt" --mix-reports "$OUT/raw/$name-reports.txt" \
    --out "$out" --scenario poll+report-ingest --pids "$(bn_pids_arg)" --workers "$WORKERS" ||
    rc=1
}

bn_start_stack "$WORKERS"
bn_say "redis=$REDIS_PID gateway=$GW_PID workers=${WORKER_PIDS[*]}; calibration into $OUT"
for r in $RATES; do
  bench "poll-$r" poll --vens "$VENS" --rate "$(per_ven "$r")" --duration "${DURATION}s" \
    --run "fitp$r"
done
bench poll-closed poll --vens "$VENS" --rate 0 --duration "${DURATION}s" --run fitpc
bench register register-storm --mode register --vens "$REG_VENS" --run fitreg
bench reports report-ingest --mode reports --redis "127.0.0.1:$REDIS_PORT" --vens "$VENS" \
  --rate "$REPORT_RATE" --intervals "$K" --duration "${DURATION}s" --run fitrep
# Polls and updates at once: how far requests of two kinds share wake-ups.
mix mix "$OUT/mix.json" "$MIX_RATE" "$REPORT_RATE"

if [ "$CHECK" = 1 ]; then
  # Polls alone at a rate between the fitted ones: the curve's interpolation.
  bench check-poll poll --vens "$VENS" --rate "$(per_ven "$CHECK_RATE")" --duration "${DURATION}s" \
    --run fitcp
  mv "$OUT/check-poll.json" "$OUT/check/poll.json"
  # The mix: rates no calibration run had.
  mix check-mix "$OUT/check/mix.json" "$CHECK_RATE" "$CHECK_REPORT_RATE"
  # The same mix from the fleet simulator: VENs on their own connections,
  # polling with jitter, 12-interval updates at the report-back interval.
  "$BN_BENCH" fleet --scenario report-ingest --target "127.0.0.1:$GW_OADR" \
    --redis "127.0.0.1:$REDIS_PORT" --vens "$FLEET_VENS" \
    --poll-interval "$(python3 -c "print(round($FLEET_VENS / $CHECK_RATE * 1000))")ms" \
    --report-back "$(python3 -c "print(round(1000 / $CHECK_REPORT_RATE * $FLEET_VENS / $VENS))")ms" \
    --intervals "$K" --duration "${DURATION}s" --pids "$(bn_pids_arg)" --run fitfl \
    --out "$OUT/check/fleet-mix.json" >"$OUT/raw/check-fleet-mix.txt" 2>&1 ||
    { bn_say "check: the fleet run reported errors (see $OUT/raw/check-fleet-mix.txt)"; rc=1; }
fi
for p in "$GW_PID" "${WORKER_PIDS[@]}" "$REDIS_PID"; do
  bn_alive "$p" || { bn_say "process $p died during the runs"; rc=1; }
done
bn_stop_all

if [ "$TLS" = 1 ]; then
  bn_make_pki 1
  mapfile -t TLS_ARGS < <(bn_tls_args 0)
  bn_start_stack "$WORKERS"
  bench handshake handshake --mode handshake --connections 16 --duration "${DURATION}s" \
    "${TLS_ARGS[@]}"
  bench resumption handshake --mode handshake --connections 16 --duration "${DURATION}s" \
    --resume "${TLS_ARGS[@]}"
  bn_stop_all
fi

if [ "$CHECK" = 1 ]; then
  checks="$OUT/check/poll.json,$OUT/check/mix.json"
  [ -f "$OUT/check/fleet-mix.json" ] && checks+=",$OUT/check/fleet-mix.json"
  "$BN_BENCH" plan --runs "$OUT" --check "$checks" | tee "$OUT/check/check.txt" ||
    rc=1
fi
bn_say "run files in $OUT; plan a fleet with: $BN_BENCH plan --runs $OUT --vens N ..."
exit "$rc"
