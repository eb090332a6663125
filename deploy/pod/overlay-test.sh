#!/usr/bin/env bash
# CI test of the production overlay's own objects under podman: renders
# deploy/k8s/overlays/production (`kubectl kustomize`), turns the rendered
# objects into what `podman kube play` (4.3) runs with from-overlay.py (each
# change documented there and in docs/deploy.md), makes the Secrets the
# overlay expects (a development PKI, ticket keys, an API token and a Redis
# password, with the image's vtnctl and openssl), plays them in a podman
# network of its own, checks that Redis and Sentinel refuse a client
# without the password, then runs a VEN through registration and polls over
# mutual TLS (ven_check.py) and the faults under load (failover.py: the
# Redis primary killed, a gateway SIGTERMed, the scheduler leader killed).
# Prints "redis-auth: ...", "pod: ..." and "failover: N passed, M failed".
# Everything it made (pods, podman secrets, volumes, the network) is removed
# by name at the end, also on failure or interruption; every wait is bounded
# (the play 300 s, readiness 120 s, the checks 300 s, the faults 900 s).
# Needs the images (deploy/container/build.sh --redis), kubectl and the
# official schema (VTN_OFFICIAL_SCHEMA, default ../shared/oadr20b-schema/).
#
#   deploy/pod/overlay-test.sh [--keep]    --keep leaves everything running
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KEEP=0
for arg in "$@"; do
  case "$arg" in
  --keep) KEEP=1 ;;
  -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) echo "overlay-test: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf 'overlay-test: %s\n' "$*" >&2; }
# shellcheck source-path=SCRIPTDIR source=test-env.sh
. "$HERE/test-env.sh"
IMAGE=localhost/openvtn:latest
REDIS_IMAGE=localhost/openvtn-redis:latest
for img in "$IMAGE" "$REDIS_IMAGE"; do
  podman image exists "$img" || { say "image $img is missing: run deploy/container/build.sh --redis"; exit 2; }
done

RUN=kube-ci-$$
WORK=$(mktemp -d)
OUT=$WORK/play
MANIFEST=$OUT/manifest.json

# Reads the manifest from-overlay.py wrote: jq-like access without jq.
manifest() { python3 -c "import json,sys; m=json.load(open(sys.argv[1])); $1" "$MANIFEST"; }

# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
  if [ "$KEEP" = 1 ]; then
    say "kept: pods $RUN-*, network $RUN, files in $WORK (run without --keep to see what is removed)"
    return
  fi
  local p s v
  # Pods by the names from-overlay.py gave them; when it did not get that
  # far, none exists. The gateways drain within 5.5 s of SIGTERM.
  if [ -f "$MANIFEST" ]; then
    for p in $(manifest 'print(" ".join(p["pod"] for p in m["pods"]))'); do
      podman pod exists "$p" && podman pod stop --time 10 "$p" >/dev/null 2>&1 &
    done
    wait
    for p in $(manifest 'print(" ".join(p["pod"] for p in m["pods"]))'); do
      podman pod exists "$p" && podman pod rm --force "$p" >/dev/null
    done
    for s in $(manifest 'print(" ".join(s["name"] for s in m["secrets"]))'); do
      podman secret rm "$s" >/dev/null 2>&1 || true
    done
    for v in $(manifest 'print(" ".join(sorted(set(m["volumes"]))))'); do
      podman volume exists "$v" && podman volume rm --force "$v" >/dev/null
    done
  fi
  podman network exists "$RUN" && podman network rm "$RUN" >/dev/null
  rm -rf "$WORK"
  say "removed the pods, secrets, volumes and network $RUN"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

t0=$SECONDS
kubectl kustomize "$ROOT/deploy/k8s/overlays/production" >"$WORK/rendered.yaml" 2>"$WORK/kustomize.err" ||
  { cat "$WORK/kustomize.err" >&2; exit 1; }

# The Secrets the overlay references (docs/deploy.md, step 1), one folder
# each with a file per key, from a development PKI with VENs ven1..ven6.
PKI=$WORK/pki
"$HERE/pod.sh" pki --pki "$PKI" --vens 6 >/dev/null
(umask 077 && mkdir -p "$WORK/secrets")
mkdir -p "$WORK/secrets/openvtn-gateway-tls" "$WORK/secrets/openvtn-ticket-keys" "$WORK/secrets/openvtn-api-token"
for f in server-ecc.pem server-ecc.key server-rsa.pem server-rsa.key client-ca.pem crl-ecc.pem crl-rsa.pem; do
  cp "$PKI/$f" "$WORK/secrets/openvtn-gateway-tls/"
done
cp "$PKI/ticket-keys" "$WORK/secrets/openvtn-ticket-keys/"
TOKEN=$(openssl rand -hex 24)
printf '%s' "$TOKEN" >"$WORK/secrets/openvtn-api-token/token"
mkdir -p "$WORK/secrets/openvtn-redis-auth"
openssl rand -hex 24 | tr -d '\n' >"$WORK/secrets/openvtn-redis-auth/password"

# A network of its own (CNI bridge with dnsname); static pod IPs from .10 on.
podman network create "$RUN" >/dev/null
subnet=$(podman network inspect --format '{{range .Subnets}}{{.Subnet}} {{end}}' "$RUN" | awk '{print $1}')
ip_base=$(python3 -c 'import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1])[10])' "$subnet")

# A free block of 32 loopback host ports for the published container ports.
PORT=$(python3 - <<'PY'
import random, socket
for _ in range(200):
    # below the ephemeral range (32768-60999), where outgoing connections take ports
    base = random.randrange(20000, 32736, 32)
    socks = []
    try:
        for p in range(base, base + 32):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    break
else:
    raise SystemExit("no free ports")
PY
)

python3 "$HERE/from-overlay.py" --prefix "$RUN" --ip-base "$ip_base" --secrets "$WORK/secrets" \
  --image openvtn="$IMAGE" --image redis="$REDIS_IMAGE" --publish openvtn-gateway=oadr,api,ops --publish openvtn-scheduler=ops \
  --host-port "$PORT" \
  --out "$OUT" <"$WORK/rendered.yaml"
manifest 'print("\n".join("left out: %s %s (%s)" % (o["kind"], o["name"], o["why"]) for o in m["left_out"]))' >&2
for s in $(manifest 'print(" ".join("%s=%s" % (s["name"], s["file"]) for s in m["secrets"]))'); do
  podman secret create "${s%%=*}" "${s#*=}" >/dev/null
done
ips=()
for ip in $(manifest 'print(" ".join(m["ips"]))'); do ips+=(--ip "$ip"); done
say "playing $(manifest 'print(len(m["pods"]))') pods in network $RUN ($subnet), host ports from $PORT"
timeout 300 podman kube play --network "$RUN" "${ips[@]}" "$OUT/play.yaml" >"$WORK/play.log" 2>&1 ||
  { cat "$WORK/play.log" >&2; exit 1; }

# pods_of <Deployment or StatefulSet name> <what>: one line per pod, in order.
pods_of() { manifest "print('\n'.join(str($2) for p in m['pods'] if p['of'] == '$1'))"; }
mapfile -t GW_OADR < <(pods_of openvtn-gateway 'p["ports"]["oadr"]')
mapfile -t GW_OPS < <(pods_of openvtn-gateway 'p["ports"]["ops"]')
mapfile -t GW_API < <(pods_of openvtn-gateway 'p["ports"]["api"]')
mapfile -t GW_CTR < <(pods_of openvtn-gateway 'p["containers"]["gateway"]')
mapfile -t SC_OPS < <(pods_of openvtn-scheduler 'p["ports"]["ops"]')
mapfile -t SC_CTR < <(pods_of openvtn-scheduler 'p["containers"]["scheduler"]')
mapfile -t SENTINELS < <(pods_of openvtn-sentinel 'p["containers"]["sentinel"]')
mapfile -t REDIS < <(pods_of openvtn-redis 'p["containers"]["redis"]')

# Ready as a load balancer sees it: every gateway's /readyz (a worker connected).
until_=$((SECONDS + 120))
for ops in "${GW_OPS[@]}"; do
  until curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$ops/readyz" 2>/dev/null; do
    if [ $SECONDS -ge $until_ ]; then
      say "gateway ops port $ops not ready after 120 s"
      podman ps -a --filter "name=^$RUN-" --format '{{.Names}} {{.Status}}' >&2
      exit 1
    fi
    sleep 0.5
  done
done
say "${#GW_OPS[@]} gateways ready $((SECONDS - t0)) s after the start"

rc=0
# Redis and the Sentinels refuse a client without the password (Secret
# openvtn-redis-auth; the containers' own redis-cli has it in REDISCLI_AUTH).
auth_ok=0
for target in "${REDIS[0]}:6379" "${SENTINELS[0]}:26379"; do
  out=$(podman exec "${target%:*}" env -u REDISCLI_AUTH redis-cli -p "${target##*:}" ping 2>&1 || true)
  if [[ "$out" == *NOAUTH* ]]; then
    auth_ok=$((auth_ok + 1))
  else
    say "FAIL: redis-cli without the password on ${target%:*} port ${target##*:} answered: $out"
    rc=1
  fi
done
echo "redis-auth: $auth_ok passed, $((2 - auth_ok)) failed"

fp=$(podman run --rm -v "$PKI:/pki:ro" "$IMAGE" vtnctl fingerprint /pki/ven1.pem)
[ "$rc" -ne 0 ] || timeout 300 python3 "$HERE/ven_check.py" --pki "$PKI" --schema "$SCHEMA" --token "$TOKEN" --fingerprint "$fp" \
  --oadr "${GW_OADR[0]}" "${GW_OADR[1]}" --ops "${GW_OPS[0]}" "${GW_OPS[1]}" --api "${GW_API[0]}" || rc=$?
if [ "$rc" -eq 0 ]; then
  timeout 900 python3 "$HERE/failover.py" --pki "$PKI" --schema "$SCHEMA" \
    --oadr "${GW_OADR[@]}" --ops "${GW_OPS[@]}" --gateways "${GW_CTR[@]}" \
    --scheduler-ops "${SC_OPS[@]}" --schedulers "${SC_CTR[@]}" \
    --sentinel "${SENTINELS[0]}" --redis-primary "${REDIS[0]}" || rc=$?
fi
if [ "$rc" -ne 0 ]; then
  say "the last lines of each container:"
  for c in $(podman ps -a --filter "name=^$RUN-" --format '{{.Names}}'); do
    printf -- '--- %s\n' "$c" >&2
    podman logs --tail 8 "$c" >&2 2>&1 || true
  done
fi
say "done in $((SECONDS - t0)) s"
exit "$rc"
