#!/usr/bin/env bash
# The memory run (docs/bench.md): starts the same throwaway VTN as
# run-poll.sh, registers N VENs (default 10,000) through the gateway and
# reports how much Redis memory one registered, idle VEN costs: the change in
# INFO memory's used_memory divided by the VENs registered. Target: <= 2 KB.
#
#   bench/run-memory.sh [--vens N] [--connections C] [--workers W]
#                       [--build-dir DIR] [--keep-logs]
set -euo pipefail

VENS=${BENCH_VENS:-10000}
CONNS=${BENCH_CONNECTIONS:-64}
WORKERS=${BENCH_WORKERS:-2}
BUILD_DIR=${BENCH_BUILD_DIR:-}
BN_LOG_LEVEL=${BENCH_LOG_LEVEL:-info}

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --vens) VENS=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --keep-logs) BN_KEEP_LOGS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
# shellcheck source=stack.sh
. "$(dirname "$0")/stack.sh"
bn_check_workers "$WORKERS"
BN_LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/vtn-bench.XXXXXX")
bn_build "${BUILD_DIR:-$BN_ROOT/build-bench}"
bn_start_stack "$WORKERS"

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
mem_field() { rcli INFO memory | tr -d '\r' | sed -n "s/^$1://p"; }

mem0=$(mem_field used_memory)
data0=$(mem_field used_memory_dataset)
keys0=$(rcli DBSIZE)

set +e
out=$("$BN_BENCH" --target "127.0.0.1:$GW_OADR" --mode register --vens "$VENS" \
  --connections "$CONNS" --pids "$(bn_pids_arg)" --json)
rc=$?
set -e
printf '%s\n' "$out" | sed '$d'
registered=$(printf '%s\n' "$out" | tail -1 | python3 -c \
  'import json, sys; print(json.load(sys.stdin)["registration"]["registered"])')

mem1=$(mem_field used_memory)
data1=$(mem_field used_memory_dataset)
keys1=$(rcli DBSIZE)
[ "$registered" -gt 0 ] || bn_die "no VEN registered"

python3 - "$registered" "$mem0" "$mem1" "$data0" "$data1" "$keys0" "$keys1" <<'EOF'
import sys
n, m0, m1, d0, d1, k0, k1 = (int(x) for x in sys.argv[1:])
per = (m1 - m0) / n
print(f"Redis used_memory       {m0} -> {m1} bytes (+{m1 - m0})")
print(f"Redis dataset memory    {d0} -> {d1} bytes (+{d1 - d0})")
print(f"keys                    {k0} -> {k1} ({(k1 - k0) / n:.2f} per VEN)")
print(f"Redis memory per VEN    {per:.0f} bytes right after registration (used_memory delta / {n} VENs); "
      f"target <= 2048: {'met' if per <= 2048 else 'NOT met'}")
EOF

# Keys with a TTL (e.g. vtn:req:<rid>, kept 300 s for retries) are not part of
# an idle VEN's steady state: remove them in this throwaway Redis, measure again.
volatile=$(rcli EVAL "local c, n = '0', 0
repeat
  local r = redis.call('SCAN', c, 'COUNT', 1000)
  c = r[1]
  for _, k in ipairs(r[2]) do
    if redis.call('PTTL', k) > 0 then redis.call('DEL', k); n = n + 1 end
  end
until c == '0'
return n" 0)
mem2=$(mem_field used_memory)
keys2=$(rcli DBSIZE)
python3 - "$registered" "$mem0" "$mem2" "$keys0" "$keys2" "$volatile" <<'EOF'
import sys
n, m0, m2, k0, k2, vol = (int(x) for x in sys.argv[1:])
per = (m2 - m0) / n
print(f"without the {vol} keys that expire by themselves (TTL): +{k2 - k0} keys, "
      f"{(k2 - k0) / n:.2f} per VEN")
print(f"Redis memory per idle VEN {per:.0f} bytes (steady state); "
      f"target <= 2048: {'met' if per <= 2048 else 'NOT met'}")
EOF

# What one VEN costs key by key (layout: docs/redis-keys.md; absent keys are skipped).
ven_key=$(rcli --scan --pattern 'ven:{*' 2>/dev/null | head -1 || true)
if [ -n "$ven_key" ]; then
  ven_id=${ven_key#ven:\{}
  ven_id=${ven_id%\}}
  name=$(rcli HGET "$ven_key" n)
  reg=$(rcli HGET "$ven_key" r)
  echo "one VEN's keys (MEMORY USAGE, bytes):"
  for k in "$ven_key" "venq:{$ven_id}" "vtn:venname:$name" "vtn:venreg:$reg"; do
    [ "$(rcli EXISTS "$k")" = 1 ] || continue
    printf '  %-50s %-6s %s\n' "$k" "$(rcli TYPE "$k")" "$(rcli MEMORY USAGE "$k" SAMPLES 0)"
  done
  printf '  %-50s %-6s %s (%s members)\n' "vtn:vens" "$(rcli TYPE vtn:vens)" \
    "$(rcli MEMORY USAGE vtn:vens SAMPLES 0)" "$(rcli ZCARD vtn:vens)"
fi
exit "$rc"
