#!/usr/bin/env bash
# Sets up, builds and runs the whole local VTN in the foreground: its own
# redis-server (unless VTN_REDIS_URL is set), one gateway, VTN_WORKERS
# workers (default 2) and the scheduler. Prints the URLs and the API token.
# Ctrl-C (or SIGTERM) stops everything this script started, by pid.
#
# Settings (environment):
#   VTN_WORKERS           number of workers (default 2)
#   VTN_REDIS_URL         use this Redis instead of starting one
#   VTN_LOCAL_REDIS_PORT  port of the local redis-server (default 6390)
#   VTN_API_TOKEN         management API token (default: a random one)
#   VTN_OADR_LISTEN, VTN_API_LISTEN, VTN_OPS_LISTEN (gateway), VTN_ZMQ_BIND
#                         as for vtn-gateway (defaults 127.0.0.1:8080, :8081,
#                         :9100, tcp://127.0.0.1:7100)
#   VTN_BUILD_DIR         build directory (default build/)
#   VTN_JOBS              parallel build jobs (default: number of CPUs)
#   VTN_SKIP_SETUP=1      do not run deploy/setup.sh
#   VTN_LOCAL_TLS=0       plain HTTP on the OpenADR listener (default: mutual TLS
#                         with a development PKI made in run/pki on first start)
#   VTN_CA_DIR            CA of the certificates API (default: the development
#                         PKI's ECC CA, run/pki/ca-ecc, so the API is on)
# Any other VTN_* variable is passed to every process (e.g. VTN_LOG_LEVEL,
# VTN_REGISTRATION_POLICY, VTN_POLL_FREQ, VTN_VTN_ID).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${VTN_BUILD_DIR:-$ROOT/build}
RUN=$ROOT/run
LOGS=$RUN/logs
WORKERS=${VTN_WORKERS:-2}
JOBS=${VTN_JOBS:-$(nproc)}

say() { printf 'run-local: %s\n' "$*" >&2; }

case "$WORKERS" in
'' | *[!0-9]*) say "VTN_WORKERS must be a number"; exit 2 ;;
esac

# --- set up and build -------------------------------------------------------
if [ "${VTN_SKIP_SETUP:-0}" != 1 ]; then
  "$ROOT/deploy/setup.sh"
fi
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=(--target vtn-gateway --target vtn-worker)
if [ -x "$BUILD/scheduler/vtn-scheduler" ] || grep -q 'vtn-scheduler' "$ROOT/scheduler/CMakeLists.txt" 2>/dev/null; then
  targets+=(--target vtn-scheduler)
fi
# the operator console (docs/ui.md) when npm is there to build it
command -v npm >/dev/null && targets+=(--target console)
say "building in ${BUILD#"$ROOT"/}"
cmake --build "$BUILD" -j"$JOBS" "${targets[@]}"

GATEWAY=$BUILD/gateway/vtn-gateway
WORKER=$BUILD/workers/vtn-worker
SCHEDULER=$BUILD/scheduler/vtn-scheduler
for b in "$GATEWAY" "$WORKER"; do
  [ -x "$b" ] || { say "missing $b after the build"; exit 1; }
done

mkdir -p "$LOGS" "$RUN/redis"

# --- settings ---------------------------------------------------------------
OADR_LISTEN=${VTN_OADR_LISTEN:-127.0.0.1:8080}
API_LISTEN=${VTN_API_LISTEN:-127.0.0.1:8081}
GW_OPS_LISTEN=${VTN_OPS_LISTEN:-127.0.0.1:9100}
ZMQ_BIND=${VTN_ZMQ_BIND:-tcp://127.0.0.1:7100}
if [ -z "${VTN_API_TOKEN:-}" ]; then
  VTN_API_TOKEN=$(openssl rand -hex 24)
fi
export VTN_API_TOKEN
unset VTN_OPS_LISTEN # each process gets its own below

# --- TLS: a development PKI ----------------------------------------------------
# On first start run/pki gets server certificates for localhost (ECC and RSA),
# two CAs (each issues both server and VEN certificates), one VEN
# certificate (ven1) and CRLs; the OpenADR listener then speaks mutual TLS
# only. VTN_LOCAL_TLS=0 keeps it plain HTTP; a VTN_TLS_CERTS of your own is
# used as it is. The PKI is made either way: its ECC CA is what the
# certificates API issues from (VTN_CA_DIR), so /api/v1/certificates works.
SCHEME=http
CURL_TLS=""
cmake --build "$BUILD" -j"$JOBS" --target vtnctl >/dev/null
"$ROOT/deploy/dev-pki.sh" --vtnctl "$BUILD/tools/vtnctl" "$RUN/pki" >"$LOGS/dev-pki.log"
if [ -z "${VTN_TLS_CERTS:-}" ] && [ "${VTN_LOCAL_TLS:-1}" != 0 ]; then
  # shellcheck disable=SC1091
  . "$RUN/pki/tls.env"
fi
if [ -z "${VTN_CA_DIR:-}" ]; then
  export VTN_CA_DIR=$RUN/pki/ca-ecc
fi
if [ -n "${VTN_TLS_CERTS:-}" ]; then
  SCHEME=https
  if [ -f "$RUN/pki/ven1.pem" ]; then
    CURL_TLS="--cacert $RUN/pki/client-ca.pem --cert $RUN/pki/ven1.pem --key $RUN/pki/ven1.key "
  fi
fi

# --- processes --------------------------------------------------------------
NAMES=()
PIDS=()
STOPPING=0

start() { # start <name> <command...>: in the background, output to run/logs/<name>.log
  local name=$1
  shift
  "$@" >>"$LOGS/$name.log" 2>&1 &
  NAMES+=("$name")
  PIDS+=("$!")
}

stop_all() {
  local i pid deadline
  STOPPING=1
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null || true
  done
  deadline=$((SECONDS + 10))
  for pid in "${PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid ignored SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}

on_signal() {
  echo >&2
  say "stopping"
  stop_all
  exit 0
}
trap on_signal INT TERM
trap 'stop_all' EXIT

wait_http() { # wait_http <url> <seconds>: until it answers 200
  local url=$1 until=$((SECONDS + $2))
  while [ $SECONDS -lt "$until" ]; do
    if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
    check_alive
    sleep 0.2
  done
  return 1
}

check_alive() {
  local i
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
      say "${NAMES[i]} (pid ${PIDS[i]}) exited; last lines of run/logs/${NAMES[i]}.log:"
      tail -n 30 "$LOGS/${NAMES[i]}.log" >&2 || true
      exit 1
    fi
  done
}

if [ -n "${VTN_REDIS_URL:-}" ]; then
  REDIS_URL=$VTN_REDIS_URL
  say "using Redis at $REDIS_URL"
else
  REDIS_PORT=${VTN_LOCAL_REDIS_PORT:-6390}
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    say "port $REDIS_PORT already answers as Redis; set VTN_LOCAL_REDIS_PORT or VTN_REDIS_URL"
    exit 1
  fi
  # A throwaway dev store: no AOF, no snapshots (see docs/redis-keys.md for
  # what production runs with).
  start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN/redis" \
    --save "" --appendonly no --daemonize no
  REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
  for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    check_alive
    sleep 0.1
  done
fi
export VTN_REDIS_URL=$REDIS_URL

UI_DIR=${VTN_UI_DIR:-$BUILD/console/ui}
start gateway env VTN_OADR_LISTEN="$OADR_LISTEN" VTN_API_LISTEN="$API_LISTEN" \
  VTN_OPS_LISTEN="$GW_OPS_LISTEN" VTN_ZMQ_BIND="$ZMQ_BIND" VTN_UI_DIR="$UI_DIR" "$GATEWAY"
zmq_endpoint=$ZMQ_BIND
WORKER_OPS=()
for ((i = 1; i <= WORKERS; i++)); do
  ops=127.0.0.1:$((9110 + i))
  WORKER_OPS+=("$ops")
  start "worker$i" env VTN_GATEWAYS="$zmq_endpoint" VTN_OPS_LISTEN="$ops" \
    VTN_WORKER_NAME="worker$i" "$WORKER"
done
SCHED_OPS=""
if [ -x "$SCHEDULER" ]; then
  SCHED_OPS=127.0.0.1:9102
  start scheduler env VTN_OPS_LISTEN="$SCHED_OPS" "$SCHEDULER"
fi

if [ "$WORKERS" -gt 0 ]; then
  wait_http "http://$GW_OPS_LISTEN/readyz" 30 || { say "the gateway did not become ready; see run/logs/"; exit 1; }
else
  wait_http "http://$GW_OPS_LISTEN/healthz" 30 || { say "the gateway did not start; see run/logs/"; exit 1; }
fi

examples=$ROOT/examples
logs=$LOGS
pki=$RUN/pki
ca_dir=$VTN_CA_DIR
vtnctl=$BUILD/tools/vtnctl
if [ "$PWD" = "$ROOT" ]; then # print paths as the user can paste them here
  examples=examples
  logs=run/logs
  pki=run/pki
  ca_dir=${ca_dir#"$ROOT"/}
  vtnctl=${vtnctl#"$ROOT"/}
  CURL_TLS=${CURL_TLS//"$RUN"\/pki/run/pki}
fi
cat <<EOF

openvtn is running (Ctrl-C stops it).

  OpenADR 2.0b base URL  $SCHEME://$OADR_LISTEN/OpenADR2/Simple/2.0b
  management API         http://$API_LISTEN/api/v1
  API token              $VTN_API_TOKEN
  operator console       $(if [ -f "$UI_DIR/index.html" ]; then echo "http://$API_LISTEN/ui/ (sign in with the API token)"; else echo "not built (needs npm: deploy/setup.sh)"; fi)
  Redis                  $REDIS_URL
  ops (healthz, readyz, metrics)
    gateway              http://$GW_OPS_LISTEN/metrics
EOF
for ((i = 0; i < ${#WORKER_OPS[@]}; i++)); do
  printf '    %-21s http://%s/metrics\n' "worker$((i + 1))" "${WORKER_OPS[i]}"
done
if [ -n "$SCHED_OPS" ]; then
  printf '    %-21s http://%s/metrics\n' scheduler "$SCHED_OPS"
fi
cat <<EOF
  certificates API       on, issuing from $ca_dir (VTN_CA_DIR)
  logs                   $logs/*.log
EOF
if [ -f "$RUN/pki/ven1.pem" ] && [ "$SCHEME" = https ]; then
  cat <<EOF

Mutual TLS with the development PKI in $pki (test-only keys):
  a VEN presents    $pki/ven1.pem with key $pki/ven1.key
                    (OpenADR fingerprint $("$BUILD/tools/vtnctl" fingerprint "$RUN/pki/ven1.pem"))
  and trusts        $pki/client-ca.pem (the dev CAs issue both sides)
  more VENs         $vtnctl cert issue --ca-dir $pki/ca-ecc --cn ven2 --out-dir $pki
  plain HTTP        VTN_LOCAL_TLS=0 deploy/run-local.sh
EOF
fi
base=$SCHEME://$OADR_LISTEN/OpenADR2/Simple/2.0b
cat <<EOF

Talk to it as a VEN (request bodies in $examples/, more in $examples/README.md):
  register  curl -sS ${CURL_TLS}-H 'Content-Type: application/xml' \\
              --data-binary @$examples/create-party-registration.xml $base/EiRegisterParty
  poll      sed 's/VEN_ID/<the venID it answered>/' $examples/poll.xml |
              curl -sS ${CURL_TLS}-H 'Content-Type: application/xml' --data-binary @- $base/OadrPoll
The VENs the VTN knows:
  curl -sS -H 'Authorization: Bearer $VTN_API_TOKEN' http://$API_LISTEN/api/v1/vens

EOF

# Foreground: return when a child exits (an error) or a signal arrives.
while true; do
  wait -n "${PIDS[@]}" 2>/dev/null || true
  [ "$STOPPING" = 1 ] && break
  check_alive
done
