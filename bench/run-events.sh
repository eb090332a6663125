#!/usr/bin/env bash
# The events runs (docs/bench.md): for each scenario a fresh throwaway VTN
# (redis-server, one vtn-gateway, two vtn-workers on free loopback ports, the
# management API with a random token), vtn-bench --mode events, and a line
# per target. Plain HTTP keep-alive, one connection per VEN.
#   fanout       N VENs (10,000) polling every P s (10 s) with jitter; one event
#                for all of them: create time, 50/99/100 % received and answered
#   nothing-new  200 VENs, 100 events across 10 groups (10 per VEN), all answered:
#                CPU per poll that finds nothing new, 10 s closed loop
#   distribute   200 VENs, 3 events for all, responseRequired always, never
#                answered: every poll carries a distribute; CPU per poll
#   memory       10,000 VENs, 10 events for all, all received and answered:
#                Redis bytes per VEN per event
#
# --callgrind (nothing-new only): redis-server, the gateway and the workers run
# under valgrind, and the run counts the instructions each executes per
# measured poll instead (50 VENs in the 10 groups, --measure 30 s): the same
# however loaded the machine is.
#
#   bench/run-events.sh [--scenario all|fanout|nothing-new|distribute|memory]
#                       [--vens N] [--interval P] [--group-size G] [--workers W]
#                       [--build-dir DIR] [--log-level L] [--callgrind] [--keep-logs]
#                       [-- extra vtn-bench flags]
set -euo pipefail

SCENARIO=${BENCH_SCENARIO:-all}
VENS=${BENCH_VENS:-10000}
INTERVAL=${BENCH_INTERVAL:-10}
GROUP_SIZE=${BENCH_GROUP_SIZE:-10000}
WORKERS=${BENCH_WORKERS:-2}
BUILD_DIR=${BENCH_BUILD_DIR:-}
BN_LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
CALLGRIND=0
EXTRA=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --scenario) SCENARIO=$2; shift 2 ;;
    --vens) VENS=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --group-size) GROUP_SIZE=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --log-level) BN_LOG_LEVEL=$2; shift 2 ;;
    --callgrind) CALLGRIND=1; shift ;;
    --keep-logs) BN_KEEP_LOGS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) usage >&2; exit 2 ;;
  esac
done
for v in "$VENS" "$INTERVAL" "$GROUP_SIZE"; do
  case $v in ''|*[!0-9]*|0) echo "--vens, --interval (s) and --group-size: positive integers" >&2; exit 2 ;; esac
done
case $SCENARIO in all|fanout|nothing-new|distribute|memory) ;; *) usage >&2; exit 2 ;; esac
if [ "$CALLGRIND" = 1 ]; then
  [ "$SCENARIO" = nothing-new ] || { echo "--callgrind: with --scenario nothing-new" >&2; exit 2; }
  command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
    { echo "--callgrind: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
fi
# shellcheck source=stack.sh
. "$(dirname "$0")/stack.sh"
bn_check_workers "$WORKERS"
BN_LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/vtn-bench.XXXXXX")
bn_build "${BUILD_DIR:-$BN_ROOT/build-bench}"
BN_API_TOKEN=$(openssl rand -hex 24)

# 10,000 keep-alive connections: descriptors for them in the gateway and the
# bench, a connection cap above them, and room for 10,000 venIDs in one PUT.
need=$((VENS + 512))
[ "$(ulimit -n)" -ge "$need" ] || ulimit -n "$need" 2>/dev/null ||
  bn_die "$VENS VENs need $need file descriptors; the hard limit is $(ulimit -Hn)"
BN_GW_ENV+=("VTN_MAX_CONNECTIONS=$((VENS + 256))" "VTN_API_MAX_BODY=4MiB")
MEASURE=10s
NN_VENS=200
if [ "$CALLGRIND" = 1 ]; then
  # Counting is switched on when the measured polls start (callgrind_watch).
  cg() { echo valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$BN_LOGDIR/callgrind.$1.%p"; }
  read -r -a BN_REDIS_WRAP <<<"$(cg redis)"
  read -r -a BN_GW_WRAP <<<"$(cg gateway)"
  read -r -a BN_WK_WRAP <<<"$(cg worker)"
  BN_READY_S=120
  MEASURE=30s
  NN_VENS=50 # the same 100 events in 10 groups, 5 VENs each: valgrind keeps up
  # Ten times slower: room for that before a Redis read or a request times out.
  export VTN_REDIS_TIMEOUT=10s
  BN_GW_ENV+=("VTN_REQUEST_TIMEOUT=30s")
fi

rc=0
# run NAME VENS: a fresh stack, then vtn-bench with the remaining flags; the
# report goes to stdout, its JSON line to $BN_LOGDIR/NAME.json.
run() {
  local name=$1 n=$2 out brc
  shift 2
  bn_start_stack "$WORKERS"
  bn_say "$name: redis=$REDIS_PID gateway=$GW_PID workers=${WORKER_PIDS[*]}; $n VENs"
  local watch=""
  if [ "$CALLGRIND" = 1 ]; then
    callgrind_watch &
    watch=$!
    BN_PIDS+=("$watch")
  fi
  set +e
  out=$(VTN_BENCH_API_TOKEN="$BN_API_TOKEN" "$BN_BENCH" --mode events --target "127.0.0.1:$GW_OADR" --api "127.0.0.1:$GW_API" \
    --redis "127.0.0.1:$REDIS_PORT" --vens "$n" --pids "$(bn_pids_arg)" --json \
    --ven-groups $(((n + GROUP_SIZE - 1) / GROUP_SIZE)) "$@" "${EXTRA[@]}")
  brc=$?
  [ -z "$watch" ] || wait "$watch" || brc=1
  set -e
  echo "=== $name ==="
  printf '%s\n' "$out" | sed '$d'
  printf '%s\n' "$out" | tail -1 >"$BN_LOGDIR/$name.json"
  [ "$brc" = 0 ] || rc=1
  for p in "$GW_PID" "${WORKER_PIDS[@]}" "$REDIS_PID"; do
    bn_alive "$p" || { bn_say "process $p died during the run"; rc=1; }
  done
}

# callgrind_watch: in the background while vtn-bench runs. Waits for the
# CONFIG RESETSTAT that starts the measured polls, switches counting on, and
# dumps every process twice, 3 s and 23 s later, each dump bracketed by reads
# of the LLEN calls (one per oadrPoll): the second dump's count over the polls
# between the two is the instructions per poll, without the set-up or the
# ends of the phase.
callgrind_watch() {
  local p i
  llen() { redis-cli -p "$REDIS_PORT" INFO commandstats | sed -n 's/^cmdstat_llen:calls=\([0-9]*\),.*/\1/p'; }
  for i in $(seq 3000); do
    redis-cli -p "$REDIS_PORT" INFO commandstats | grep -q '^cmdstat_config|resetstat:' && break
    sleep 0.1
  done
  for p in "$REDIS_PID" "$GW_PID" "${WORKER_PIDS[@]}"; do callgrind_control -i on "$p" >/dev/null; done
  for i in 1 2; do
    sleep $((i == 1 ? 3 : 20))
    for p in "$REDIS_PID" "$GW_PID" "${WORKER_PIDS[@]}"; do
      echo "$p $i $(llen) $(callgrind_control -d "$p" >/dev/null; llen)"
    done
  done >"$BN_LOGDIR/callgrind.polls"
}

# callgrind_report NAME: instructions per poll of each process role (Ir of
# the second dump over the polls between the midpoints of its two brackets).
callgrind_report() {
  python3 - "$BN_LOGDIR" "$1" <<'EOF' || rc=1
import glob, json, sys
d, name, bad = sys.argv[1], sys.argv[2], 0
marks = {}
for l in open(f"{d}/callgrind.polls"):
    pid, i, a, b = l.split()
    marks[(pid, int(i))] = (int(a) + int(b)) / 2
per, polls = {}, []
for f in glob.glob(f"{d}/callgrind.*.*.2"):
    role, pid = f.rsplit("/", 1)[1].split(".")[1:3]
    ir = 0
    for l in open(f):
        if l.startswith(("summary:", "totals:")):
            ir = int(l.split()[1])
    n = marks[(pid, 2)] - marks[(pid, 1)]
    if n <= 0:
        sys.exit("callgrind: no polls between the dumps")
    polls.append(n)
    per[role] = per.get(role, 0) + ir / n
if not per:
    sys.exit("callgrind: no counts")
if json.load(open(f"{d}/{name}.json"))["errors"]:
    print("callgrind        WARNING: polls failed (the machine too loaded for valgrind?): not a clean count")
    bad = 1
order = [r for r in ("gateway", "worker", "redis") if r in per]
print(f"callgrind        instructions per measured poll (Ir, {min(polls):,.0f} polls counted): "
      + ", ".join(f"{r} {per[r]:,.0f}" for r in order) + f", total {sum(per.values()):,.0f}")
sys.exit(bad)
EOF
}

# commands NAME: Redis commands per measured poll (INFO commandstats, reset
# by vtn-bench when the measured polls start), as run-poll.sh prints them.
commands() {
  { cat "$BN_LOGDIR/$1.json"; redis-cli -p "$REDIS_PORT" INFO commandstats; } | python3 -c '
import json, sys
lines = sys.stdin.read().splitlines()
polls = json.loads(lines[0])["measured_polls"]["ok"] or 1
calls = {}
for l in lines[1:]:
    if l.startswith("cmdstat_"):
        name, rest = l[8:].split(":", 1)
        calls[name] = int(rest.split(",")[0].split("=")[1])
total = sum(calls.values())
top = ", ".join(f"{c} {n / polls:.2f}" for c, n in sorted(calls.items(), key=lambda x: -x[1])
                if n * 20 >= polls)
print(f"redis            {total / polls:.2f} commands per measured poll ({top})")
' || true
}

# verdict NAME: the target lines of a scenario from its JSON line.
verdict() {
  python3 - "$1" "$BN_LOGDIR/$1.json" "$INTERVAL" <<'EOF' || rc=1
import json, sys
name, path, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
j = json.load(open(path))
ok = True
def line(what, value, limit, unit):
    global ok
    met = value is not None and value <= limit
    ok &= met
    shown = "-" if value is None else f"{value:.1f}" if unit != "ms" else f"{value:.2f}"
    print(f"target           {what} {shown} {unit} <= {limit:g}: {'met' if met else 'NOT met'}")
line("errors (and missing VENs)", j["errors"], 0, "")
if name == "fanout":
    line("event created in", max(j["create_ms"] or [None]), 10, "ms")
    line("100 % received within", j["received_s"]["100%"], interval + 2, "s")
    line("100 % answered within", j["answered_s"]["100%"], interval + 3, "s")
elif name in ("nothing-new", "distribute"):
    limit = 41 if name == "nothing-new" else 150
    line("CPU per poll", j["cpu_us_per_poll"].get("total"), limit, "µs")
elif name == "memory":
    line("Redis memory per VEN per event", j["mem_per_ven_event"], 100, "B")
sys.exit(0 if ok else 1)
EOF
}

want() { [ "$SCENARIO" = all ] || [ "$SCENARIO" = "$1" ]; }

if want fanout; then
  run fanout "$VENS" --rate "$(python3 -c "print(1 / $INTERVAL)")" --events 1 --follow 60s
  verdict fanout
  bn_stop_all
fi
if want nothing-new; then
  # Polls every second until every VEN has its 10 events and answered them,
  # then 10 s of closed-loop polls that find nothing new.
  GROUP_SIZE=$((NN_VENS / 10)) run nothing-new "$NN_VENS" --rate 1 --events 100 --spread --follow 60s --measure "$MEASURE"
  commands nothing-new
  if [ "$CALLGRIND" = 1 ]; then callgrind_report nothing-new; else verdict nothing-new; fi
  bn_stop_all
fi
if want distribute; then
  run distribute 200 --rate 1 --events 3 --no-answer --follow 60s --measure 10s
  commands distribute
  verdict distribute
  bn_stop_all
fi
if want memory; then
  run memory "$VENS" --rate "$(python3 -c "print(1 / $INTERVAL)")" --events 10 --follow 120s
  verdict memory
  # Where it goes: each event's participation, 1,024 small hashes
  # (layout: docs/redis-keys.md). Summed over the shards of three events.
  echo "participation (MEMORY USAGE summed over an event's shards, bytes per entry):"
  cli() { redis-cli -p "$REDIS_PORT" "$@"; }
  for id in $(cli ZRANGE vtn:events 0 2); do
    keys=$(cli --scan --pattern "vtn:event:$id:vens:*" 2>/dev/null || true)
    [ -n "$keys" ] || continue
    n=$(printf '%s\n' "$keys" | sed 's/^/HLEN /' | cli | awk '{s += $1} END {print s + 0}')
    m=$(printf '%s\n' "$keys" | sed 's/^/MEMORY USAGE /; s/$/ SAMPLES 0/' | cli |
      awk '{s += $1} END {print s + 0}')
    [ "$n" -gt 0 ] || continue
    printf '  %-40s %s shards, %s entries, %s bytes = %s per entry\n' "$id" \
      "$(printf '%s\n' "$keys" | wc -l)" "$n" "$m" "$((m / n))"
  done
  bn_stop_all
fi
exit "$rc"
