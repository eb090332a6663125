#!/usr/bin/env bash
# CI test of the local pod: plays deploy/pod/openvtn.yaml from the built
# images under its own pod name and free host ports, runs a VEN through
# registration and polls over mutual TLS on both gateways (ven_check.py),
# prints "pod: N passed, M failed" and removes the pod by its name, also when
# interrupted. With --failover it then runs failover.py: VENs keep polling
# while a gateway gets SIGTERM, the scheduler leader is killed and (when the
# processes read VTN_REDIS_SENTINELS) the Redis primary is killed and
# Sentinel fails over. Needs the images (deploy/container/build.sh --redis)
# and the official schema (VTN_OFFICIAL_SCHEMA, default
# ../shared/oadr20b-schema/).
#
#   deploy/pod/test.sh [--keep] [--failover]   --keep leaves the pod running
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KEEP=0
FAILOVER=0
for arg in "$@"; do
  case "$arg" in
  --keep) KEEP=1 ;;
  --failover) FAILOVER=1 ;;
  -h | --help) sed -n '2,14s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) echo "pod-test: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf 'pod-test: %s\n' "$*" >&2; }
# shellcheck source-path=SCRIPTDIR source=test-env.sh
. "$HERE/test-env.sh"

NAME=openvtn-ci-$$
WORK=$(mktemp -d)
PKI=$WORK/pki

# A free block of host ports: the pod publishes offset+{18080,18180,18081,19100,19200,19111,19112}.
OFFSET=$(python3 - <<'PY'
import random, socket
ports = (18080, 18180, 18081, 19100, 19200, 19111, 19112)
for _ in range(200):
    off = random.randrange(0, 40000, 10)
    socks = []
    try:
        for p in ports:
            s = socket.socket()
            s.bind(("127.0.0.1", p + off))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(off)
    break
else:
    raise SystemExit("no free ports")
PY
)

# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
  if [ "$KEEP" = 1 ]; then
    say "kept pod $NAME (deploy/pod/pod.sh down --name $NAME), files in $WORK"
    return
  fi
  "$HERE/pod.sh" down --name "$NAME" || true
  rm -rf "$WORK" "$ROOT/run/$NAME.yaml"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

t0=$SECONDS
export VTN_API_TOKEN
VTN_API_TOKEN=$(openssl rand -hex 24)
"$HERE/pod.sh" up --name "$NAME" --port-offset "$OFFSET" --pki "$PKI" >"$WORK/up.log" ||
  { cat "$WORK/up.log" >&2; exit 1; }
say "pod $NAME up in $((SECONDS - t0)) s (host ports +$OFFSET)"

fp=$(podman run --rm -v "$PKI:/pki:ro" localhost/openvtn:latest vtnctl fingerprint /pki/ven1.pem)
rc=0
python3 "$HERE/ven_check.py" --pki "$PKI" --schema "$SCHEMA" --token "$VTN_API_TOKEN" \
  --fingerprint "$fp" --oadr $((18080 + OFFSET)) $((18180 + OFFSET)) \
  --ops $((19100 + OFFSET)) $((19200 + OFFSET)) --api $((18081 + OFFSET)) || rc=$?
if [ "$FAILOVER" = 1 ] && [ "$rc" -eq 0 ]; then
  # ven1 exists; ven2..ven6 for more VENs (one certificate each).
  "$HERE/pod.sh" pki --pki "$PKI" --vens 6 || exit 1
  sentinel=()
  if podman run --rm localhost/openvtn:latest vtn-worker --help | grep -q VTN_REDIS_SENTINELS; then
    sentinel=(--sentinel "$NAME-sentinel-0" --redis-primary "$NAME-redis-0")
  fi
  python3 "$HERE/failover.py" --pki "$PKI" --schema "$SCHEMA" "${sentinel[@]}" \
    --oadr $((18080 + OFFSET)) $((18180 + OFFSET)) --ops $((19100 + OFFSET)) $((19200 + OFFSET)) \
    --gateways "$NAME-gateway-1" "$NAME-gateway-2" \
    --scheduler-ops $((19111 + OFFSET)) $((19112 + OFFSET)) --schedulers "$NAME-scheduler-1" "$NAME-scheduler-2" || rc=$?
fi
if [ "$rc" -ne 0 ]; then
  say "the last lines of each container:"
  for c in $(podman ps -a --pod --filter "pod=$NAME" --format '{{.Names}}'); do
    printf -- '--- %s\n' "$c" >&2
    podman logs --tail 8 "$c" >&2 2>&1 || true
  done
fi
say "done in $((SECONDS - t0)) s"
exit "$rc"
