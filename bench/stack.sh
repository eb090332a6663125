# Shared by bench/run-poll.sh, bench/run-memory.sh and bench/run-tls.sh
# (sourced, not run): builds the binaries and starts a throwaway VTN on free
# loopback ports - redis-server, one vtn-gateway, N vtn-workers - and stops
# every process it started, by pid, when the calling script exits. With
# bn_make_pki the gateway speaks mutual TLS with a development PKI.
# shellcheck shell=bash

BN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BN_PIDS=()
BN_LOGDIR=""
BN_PIDFILES=()  # files holding a pid we started indirectly (a restarted gateway)
BN_KEEP_LOGS=${BN_KEEP_LOGS:-0}
BN_PKI=""      # set by bn_make_pki: the gateway then loads $BN_PKI/tls.env
BN_GW_ENV=()   # extra NAME=value settings for the gateway
BN_GW_WRAP=()  # a command the gateway runs under (e.g. valgrind)
BN_WK_WRAP=()  # ... each worker runs under
BN_REDIS_WRAP=()  # ... redis-server runs under
BN_READY_S=10  # how long the gateway may take to become ready
BN_API_TOKEN=${BN_API_TOKEN:-}  # set: the management API's token, given to the gateway and workers

bn_say() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
# bn_check_workers N: a usage error (exit 2) unless 1 <= N <= 16.
bn_check_workers() {
  case $1 in ''|*[!0-9]*) echo "--workers: not a number" >&2; exit 2 ;; esac
  if [ "$1" -lt 1 ] || [ "$1" -gt 16 ]; then echo "--workers: 1..16" >&2; exit 2; fi
}
bn_die() { bn_say "$*"; exit 1; }

# Stops what we started: TERM, up to 5 s of grace, then KILL. Only our pids.
bn_stop_all() {
  local pid i f
  for f in "${BN_PIDFILES[@]}"; do
    pid=$(cat "$f" 2>/dev/null || true)
    case $pid in ''|*[!0-9]*) ;; *) BN_PIDS+=("$pid") ;; esac
  done
  BN_PIDFILES=()
  for pid in "${BN_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in $(seq 50); do
    local alive=0
    for pid in "${BN_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${BN_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${BN_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  BN_PIDS=()
}

bn_cleanup() {
  local rc=$?
  bn_stop_all
  if [ -n "$BN_LOGDIR" ]; then
    if [ "$rc" != 0 ] || [ "$BN_KEEP_LOGS" = 1 ]; then
      bn_say "logs kept in $BN_LOGDIR"
    else
      rm -rf "$BN_LOGDIR"
    fi
  fi
  exit "$rc"
}
trap bn_cleanup EXIT
trap 'exit 130' INT TERM

# bn_build BUILD_DIR: a Release build of the three programs, unless the
# directory already holds a configured tree (then it is only brought up to date).
bn_build() {
  local dir=$1
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S "$BN_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null ||
      bn_die "cmake configure failed"
  fi
  cmake --build "$dir" -j2 --target vtn-gateway vtn-worker vtn-bench vtnctl \
    >"$BN_LOGDIR/build.log" 2>&1 ||
    { tail -n 30 "$BN_LOGDIR/build.log" >&2; bn_die "build failed (log: $BN_LOGDIR/build.log)"; }
  BN_GATEWAY=$dir/gateway/vtn-gateway
  BN_WORKER=$dir/workers/vtn-worker
  BN_BENCH=$dir/bench/vtn-bench
  BN_VTNCTL=$dir/tools/vtnctl
  for b in "$BN_GATEWAY" "$BN_WORKER" "$BN_BENCH" "$BN_VTNCTL"; do
    [ -x "$b" ] || bn_die "$b was not built"
  done
}

# bn_make_pki NVENS: a development PKI in $BN_LOGDIR/pki (deploy/dev-pki.sh:
# client CAs, localhost server certificates, CRLs, tls.env) plus NVENS ECC VEN
# certificates vens/bench-<i>.pem/.key from its ECC client CA, so every
# simulated VEN has a fingerprint of its own (vtn-bench --cert vens/bench-%d.pem).
bn_make_pki() {
  local n=$1 i
  BN_PKI=$BN_LOGDIR/pki
  "$BN_ROOT/deploy/dev-pki.sh" --vtnctl "$BN_VTNCTL" "$BN_PKI" >"$BN_LOGDIR/pki.log" 2>&1 ||
    { cat "$BN_LOGDIR/pki.log" >&2; bn_die "deploy/dev-pki.sh failed"; }
  mkdir -p "$BN_PKI/vens"
  for ((i = 0; i < n; i++)); do
    "$BN_VTNCTL" cert issue --ca-dir "$BN_PKI/ca-ecc" --cn "bench-ven-$i" --name "bench-$i" \
      --out-dir "$BN_PKI/vens" --key ec >>"$BN_LOGDIR/pki.log" 2>&1 ||
      bn_die "vtnctl cert issue failed (log: $BN_LOGDIR/pki.log)"
  done
}

# bn_tls_args [I]: vtn-bench flags for mutual TLS with the PKI of bn_make_pki,
# one per line: VEN i presents vens/bench-<i>.pem (with I: every connection
# presents vens/bench-<I>.pem), and the gateway's certificate is verified with
# the dev CAs.
bn_tls_args() {
  local i=${1:-%d}
  printf '%s\n' --tls --cert "$BN_PKI/vens/bench-$i.pem" --key "$BN_PKI/vens/bench-$i.key" \
    --ca "$BN_PKI/client-ca.pem"
}

# bn_free_ports N: prints N distinct free loopback TCP ports. Sockets are held
# open together while the kernel picks, so the N ports differ.
bn_free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# bn_wait CMD...: retries CMD for up to 10 s.
bn_wait() {
  local i
  for i in $(seq 100); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

bn_alive() { kill -0 "$1" 2>/dev/null; }

# bn_start_stack WORKERS: sets REDIS_PORT REDIS_PID GW_PID GW_OADR GW_OPS WORKER_PIDS.
bn_start_stack() {
  local nworkers=$1 ports i
  read -r -a ports <<<"$(bn_free_ports $((5 + nworkers)))"
  REDIS_PORT=${ports[0]}
  GW_OADR=${ports[1]}
  GW_API=${ports[2]}
  GW_OPS=${ports[3]}
  GW_ZMQ=${ports[4]}
  local redis_url="redis://127.0.0.1:$REDIS_PORT/0"

  "${BN_REDIS_WRAP[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no --logfile "$BN_LOGDIR/redis.log" >/dev/null 2>&1 &
  REDIS_PID=$!
  BN_PIDS+=("$REDIS_PID")
  bn_wait redis-cli -p "$REDIS_PORT" ping || bn_die "redis-server did not start"

  # The gateway's command line in a script of its own, so that
  # bn_restart_script can start it again the same way; exec keeps $! the
  # gateway's own pid.
  {
    echo '#!/usr/bin/env bash'
    if [ -n "$BN_PKI" ]; then printf '. %q\n' "$BN_PKI/tls.env"; fi
    printf 'exec env'
    printf ' %q' "${BN_GW_ENV[@]}" "VTN_API_TOKEN=$BN_API_TOKEN" "VTN_OADR_LISTEN=127.0.0.1:$GW_OADR" \
      "VTN_API_LISTEN=127.0.0.1:$GW_API" "VTN_OPS_LISTEN=127.0.0.1:$GW_OPS" \
      "VTN_ZMQ_BIND=tcp://127.0.0.1:$GW_ZMQ" "VTN_REDIS_URL=$redis_url" "VTN_LOG_LEVEL=$BN_LOG_LEVEL" \
      "${BN_GW_WRAP[@]}" "$BN_GATEWAY"
    echo
  } >"$BN_LOGDIR/gateway.sh"
  chmod 700 "$BN_LOGDIR/gateway.sh"
  "$BN_LOGDIR/gateway.sh" >"$BN_LOGDIR/gateway.log" 2>&1 &
  GW_PID=$!
  BN_PIDS+=("$GW_PID")

  WORKER_PIDS=()
  for ((i = 0; i < nworkers; i++)); do
    VTN_API_TOKEN=$BN_API_TOKEN VTN_GATEWAYS=tcp://127.0.0.1:$GW_ZMQ VTN_REDIS_URL=$redis_url \
      VTN_OPS_LISTEN=127.0.0.1:${ports[$((5 + i))]} VTN_WORKER_NAME=bench-worker-$i \
      VTN_LOG_LEVEL=$BN_LOG_LEVEL \
      "${BN_WK_WRAP[@]}" "$BN_WORKER" >"$BN_LOGDIR/worker$i.log" 2>&1 &
    WORKER_PIDS+=($!)
    BN_PIDS+=($!)
  done

  local tries=$((BN_READY_S * 10))
  until curl -fsS "http://127.0.0.1:$GW_OPS/readyz" >/dev/null 2>&1; do
    tries=$((tries - 1))
    if [ "$tries" -le 0 ]; then
      tail -n 5 "$BN_LOGDIR"/gateway.log "$BN_LOGDIR"/worker*.log >&2
      bn_die "the gateway did not become ready in $BN_READY_S s"
    fi
    sleep 0.1
  done
  for i in "$GW_PID" "${WORKER_PIDS[@]}"; do
    bn_alive "$i" || bn_die "process $i exited at start (logs: $BN_LOGDIR)"
  done
  # Both workers must hold credits before a run, or the first seconds measure one.
  sleep 1
}

bn_pids_arg() {
  local s="gateway=$GW_PID" p
  for p in "${WORKER_PIDS[@]}"; do s+=",worker=$p"; done
  printf '%s,redis=%s' "$s" "$REDIS_PID"
}

# bn_restart_script: writes $BN_LOGDIR/restart-gateway.sh and prints its path:
# a command (for vtn-bench fleet --restart-cmd) that stops the stack's gateway
# (TERM, up to 10 s, then KILL), starts it again on the same ports with the
# same settings and waits until it is ready. The new pid goes to
# $BN_LOGDIR/gateway.pid, which bn_stop_all reads, so it is stopped at the end.
bn_restart_script() {
  local f=$BN_LOGDIR/restart-gateway.sh
  echo "$GW_PID" >"$BN_LOGDIR/gateway.pid"
  BN_PIDFILES+=("$BN_LOGDIR/gateway.pid")
  {
    echo '#!/usr/bin/env bash'
    printf 'd=%q\nops=%q\n' "$BN_LOGDIR" "$GW_OPS"
    cat <<'EOF'
pid=$(cat "$d/gateway.pid")
# running: neither gone nor a zombie its parent (the calling script) has not reaped yet
alive() { [ -r "/proc/$pid/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat"; }
kill -TERM "$pid" 2>/dev/null
for _ in $(seq 100); do alive || break; sleep 0.1; done
if alive; then kill -KILL "$pid" 2>/dev/null; fi
"$d/gateway.sh" >>"$d/gateway.log" 2>&1 </dev/null &
echo $! >"$d/gateway.pid"
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$ops/readyz" >/dev/null 2>&1 && exit 0
  sleep 0.1
done
echo "restart-gateway.sh: the gateway did not become ready in 10 s" >&2
exit 1
EOF
  } >"$f"
  chmod 700 "$f"
  printf '%s\n' "$f"
}
