#!/usr/bin/env bash
# The fleet simulator against a throwaway local VTN (docs/bench.md, "Fleet
# simulator"): builds, starts redis-server, one vtn-gateway and --workers
# vtn-workers on free loopback ports (bench/stack.sh; the management API with
# a random token; mutual TLS with a development PKI unless --plain), runs
# `vtn-bench fleet --scenario NAME` with the pids of every process, and
# leaves the run's JSON in --out (default: fleet-<scenario>.json).
#
#   bench/run-fleet.sh [--scenario poll|register-storm|event-fanout|report-ingest|push|utility-day]
#                      [--vens N] [--plain] [--cert-pool K] [--per-poll] [--workers W]
#                      [--out FILE] [--gw-env NAME=value] [--build-dir DIR]
#                      [--log-level L] [--keep-logs]
#                      [-- extra vtn-bench fleet flags]
#
# Defaults: poll 1,000 VENs; register-storm 5,000; event-fanout 10,000 (plain
# HTTP unless --tls is asked for with --cert-pool, see docs); report-ingest
# 1,000; push 1,000 push-mode VENs (plain HTTP to the VTN, the pushes over
# mutual TLS: the VTN's push client certificate and the VENs' endpoint
# certificate come from the development PKI); utility-day 5,000, the gateway
# restarted in the middle (bench/stack.sh's bn_restart_script). One
# certificate per VEN, minted by vtn-bench in memory from the development
# PKI's ECC CA (--mint-ca), unless --cert-pool K: then K certificate files
# made with vtnctl (about 10 ms each) that the VENs share.
# --per-poll: each VEN connects for each poll and closes (--connection
# per-poll), so the bench and the gateway need descriptors only for the VENs
# mid-exchange (--max-open, 1024) instead of one per VEN.
set -euo pipefail

SCENARIO=${BENCH_SCENARIO:-poll}
VENS=${BENCH_VENS:-}
WORKERS=${BENCH_WORKERS:-2}
BUILD_DIR=${BENCH_BUILD_DIR:-}
BN_LOG_LEVEL=${BENCH_LOG_LEVEL:-warn}
POOL=${BENCH_CERT_POOL:-0}
PLAIN=${BENCH_PLAIN:-}
OUT=${BENCH_OUT:-}
EXTRA=()
GW_EXTRA=()
PER_POLL=${BENCH_PER_POLL:-}

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --scenario) SCENARIO=$2; shift 2 ;;
    --vens) VENS=$2; shift 2 ;;
    --plain) PLAIN=1; shift ;;
    --tls) PLAIN=0; shift ;;
    --cert-pool) POOL=$2; shift 2 ;;
    --per-poll) PER_POLL=1; shift ;;
    --workers) WORKERS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --gw-env) GW_EXTRA+=("$2"); shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --log-level) BN_LOG_LEVEL=$2; shift 2 ;;
    --keep-logs) BN_KEEP_LOGS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) usage >&2; exit 2 ;;
  esac
done
case $SCENARIO in
  poll) VENS=${VENS:-1000}; PLAIN=${PLAIN:-0} ;;
  register-storm) VENS=${VENS:-5000}; PLAIN=${PLAIN:-0} ;;
  event-fanout) VENS=${VENS:-10000}; PLAIN=${PLAIN:-1} ;;
  report-ingest) VENS=${VENS:-1000}; PLAIN=${PLAIN:-0} ;;
  push) VENS=${VENS:-1000}; PLAIN=${PLAIN:-1} ;;
  utility-day) VENS=${VENS:-5000}; PLAIN=${PLAIN:-0} ;;
  *) echo "--scenario: poll, register-storm, event-fanout, report-ingest, push or utility-day" >&2; exit 2 ;;
esac
for v in "$VENS" "$POOL"; do
  case $v in ''|*[!0-9]*) echo "--vens and --cert-pool: integers" >&2; exit 2 ;; esac
done
OUT=${OUT:-$PWD/fleet-$SCENARIO.json}
# shellcheck source=stack.sh
. "$(dirname "$0")/stack.sh"
bn_check_workers "$WORKERS"
BN_LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/vtn-bench.XXXXXX")
bn_build "${BUILD_DIR:-$BN_ROOT/build-bench}"
BN_API_TOKEN=$(openssl rand -hex 24)

# One connection per VEN: descriptors in the gateway and the bench (each
# needs about 100 more: listeners, Redis, ZeroMQ, logs), and a connection cap
# above them. Per-poll: the bench needs --max-open (1024); the gateway also
# holds the connections it has not closed yet, so it gets what the hard limit
# allows (it caps VTN_MAX_CONNECTIONS to its descriptors).
conns=$VENS
CONN=()
if [ -n "$PER_POLL" ]; then
  CONN=(--connection per-poll)
  [ "$VENS" -gt 1024 ] && conns=1024
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
need=$((conns + 100))
[ "$(ulimit -n)" -ge "$need" ] || ulimit -n "$need" 2>/dev/null ||
  bn_die "$VENS VENs need $need file descriptors; the hard limit is $(ulimit -Hn)"
BN_GW_ENV+=("${GW_EXTRA[@]}" "VTN_MAX_CONNECTIONS=$((VENS + 64))" "VTN_API_MAX_BODY=4MiB" "VTN_IDLE_TIMEOUT=30m")

TLS=()
if [ "$PLAIN" != 1 ]; then
  if [ "$POOL" -gt 0 ] && [ "$POOL" -lt "$VENS" ]; then
    bn_say "making the development PKI and $POOL VEN certificates"
    bn_make_pki "$POOL"
    mapfile -t TLS < <(bn_tls_args)
    TLS+=(--cert-pool "$POOL")
  else
    bn_say "making the development PKI (vtn-bench mints a certificate per VEN)"
    bn_make_pki 0
    TLS=(--tls --mint-ca "$BN_PKI/ca-ecc/ca.pem,$BN_PKI/ca-ecc/ca.key" --ca "$BN_PKI/client-ca.pem")
  fi
fi
PUSH=()
if [ "$SCENARIO" = push ]; then
  # The VTN pushes with a client certificate of the ECC CA; the VENs' endpoint
  # (in vtn-bench) presents the localhost server certificate, which names
  # 127.0.0.1, from the same CA, and requires the VTN's.
  if [ -z "$BN_PKI" ]; then
    bn_say "making the development PKI"
    bn_make_pki 0
    P=$BN_PKI
    BN_PKI=""  # the OpenADR listener stays plain HTTP (stack.sh loads tls.env when BN_PKI is set)
  fi
  P=${P:-$BN_PKI}
  "$BN_VTNCTL" cert issue --ca-dir "$P/ca-ecc" --cn "openvtn push client" --name vtn-push \
    --out-dir "$P" --key ec >>"$BN_LOGDIR/pki.log" 2>&1 || bn_die "vtnctl cert issue failed"
  BN_GW_ENV+=("VTN_PUSH_CERT=$P/vtn-push.pem:$P/vtn-push.key" "VTN_PUSH_CA=$P/ca-ecc/ca.pem")
  PUSH=(--push-cert "$P/server-ecc.pem" --push-key "$P/server-ecc.key" --push-ca "$P/ca-ecc/ca.pem")
fi

bn_start_stack "$WORKERS"
bn_say "$SCENARIO: redis=$REDIS_PID gateway=$GW_PID workers=${WORKER_PIDS[*]}; $VENS VENs"
DAY=()
[ "$SCENARIO" = utility-day ] && DAY=(--restart-cmd "$(bn_restart_script)")
set +e
VTN_FLEET_API_TOKEN="$BN_API_TOKEN" "$BN_BENCH" fleet --scenario "$SCENARIO" \
  --target "127.0.0.1:$GW_OADR" --api "127.0.0.1:$GW_API" --redis "127.0.0.1:$REDIS_PORT" \
  --vens "$VENS" --pids "$(bn_pids_arg)" --out "$OUT" "${TLS[@]}" "${PUSH[@]}" "${CONN[@]}" \
  "${DAY[@]}" "${EXTRA[@]}"
rc=$?
set -e
[ -f "$BN_LOGDIR/gateway.pid" ] && GW_PID=$(cat "$BN_LOGDIR/gateway.pid")
for p in "$GW_PID" "${WORKER_PIDS[@]}" "$REDIS_PID"; do
  bn_alive "$p" || { bn_say "process $p died during the run"; rc=1; }
done
bn_say "JSON: $OUT"
exit "$rc"
