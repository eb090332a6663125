#!/usr/bin/env bash
# Runs openvtn as one local pod with `podman kube play` (deploy/pod/openvtn.yaml:
# Redis with a replica and three Sentinels, two gateways, three workers, two
# schedulers), from the images deploy/container/build.sh --redis made.
#
#   deploy/pod/pod.sh up   [--name NAME] [--port-offset N] [--pki DIR]
#   deploy/pod/pod.sh down [--name NAME]
#   deploy/pod/pod.sh status [--name NAME]
#   deploy/pod/pod.sh pki  [--pki DIR] [--vens N]
#
# up makes a development PKI in DIR (default run/pod-pki) on first use, with
# vtnctl from the image (deploy/dev-pki.sh, plus a shared ticket key file),
# fills in openvtn.yaml (PKI folder, a random API token unless VTN_API_TOKEN
# is set, host ports moved by --port-offset), plays it under NAME (default
# openvtn) and waits until both gateways are ready (a worker connected). It
# prints where everything is. down stops and removes the pod NAME: nothing
# else. The filled-in file (it holds the token) is run/NAME.yaml. pki only
# makes the PKI (what up does first), with VEN certificates ven2..venN too
# when --vens N is given (deploy/pod/test.sh, deploy/pod/overlay-test.sh).
#
# Published on 127.0.0.1 (plus the offset): 18080 and 18180 the gateways'
# OpenADR listeners (mutual TLS), 18081 the management API, 19100 and 19200
# the gateways' ops ports, 19111 and 19112 the schedulers' ops ports.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUN=$ROOT/run
NAME=openvtn
OFFSET=0
VENS=1
PKI=$RUN/pod-pki
IMAGE=localhost/openvtn:latest
REDIS_IMAGE=localhost/openvtn-redis:latest

say() { printf 'pod: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }

[ $# -ge 1 ] || { usage >&2; exit 2; }
CMD=$1
shift
while [ $# -gt 0 ]; do
  case "$1" in
  -h | --help) usage; exit 0 ;;
  --name) [ $# -ge 2 ] || die "--name needs a value"; NAME=$2; shift 2 ;;
  --port-offset) [ $# -ge 2 ] || die "--port-offset needs a value"; OFFSET=$2; shift 2 ;;
  --pki) [ $# -ge 2 ] || die "--pki needs a folder"; PKI=$2; shift 2 ;;
  --vens) [ $# -ge 2 ] || die "--vens needs a number"; VENS=$2; shift 2 ;;
  *) say "unknown argument $1 (see --help)"; exit 2 ;;
  esac
done
case "$NAME" in '' | *[!a-z0-9-]*) die "--name: lower-case letters, digits and '-' only" ;; esac
case "$OFFSET" in '' | *[!0-9]*) die "--port-offset must be a number" ;; esac
[ "$OFFSET" -le 40000 ] || die "--port-offset must be at most 40000"
case "$VENS" in '' | *[!0-9]*) die "--vens must be a number" ;; esac
[ "$VENS" -le 100 ] || die "--vens must be at most 100"

export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/deploy/container/containers.conf}
command -v podman >/dev/null || die "podman is not installed: run deploy/setup.sh --deploy (as root)"

port() { echo $(($1 + OFFSET)); }

make_pki() {
  [ -f "$PKI/tls.env" ] && return 0
  say "making a development PKI in $PKI (test-only keys)"
  mkdir -p "$(dirname "$PKI")"
  local parent base
  parent=$(cd "$(dirname "$PKI")" && pwd)
  base=$(basename "$PKI")
  # vtnctl runs in the image; the files are handed to the image's user.
  podman run --rm --user 0 -v "$parent:/out" -v "$ROOT/deploy/dev-pki.sh:/dev-pki.sh:ro" \
    "$IMAGE" sh -c "sh /dev-pki.sh --vtnctl /usr/local/bin/vtnctl /out/$base >/dev/null &&
      vtnctl ticket-keys rotate --file /out/$base/ticket-keys >/dev/null &&
      chown -R 10001:10001 /out/$base" || die "making the PKI failed"
}

# ven2..venN next to the PKI's ven1 (one certificate each), when missing.
issue_vens() {
  [ "$VENS" -ge 2 ] || return 0
  podman run --rm --user 0 -v "$(cd "$PKI" && pwd):/pki" -e VENS="$VENS" "$IMAGE" sh -c \
    'n=2; while [ "$n" -le "$VENS" ]; do
       [ -f /pki/ven$n.pem ] || vtnctl cert issue --ca-dir /pki/ca-ecc --cn ven$n --out-dir /pki --key ec >/dev/null || exit 1
       n=$((n + 1))
     done
     chown -R 10001:10001 /pki' || die "issuing VEN certificates failed"
}

wait_ready() { # wait_ready <url> <seconds>
  local until=$((SECONDS + $2))
  while [ $SECONDS -lt "$until" ]; do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    sleep 0.5
  done
  return 1
}

up() {
  for img in "$IMAGE" "$REDIS_IMAGE"; do
    podman image exists "$img" || die "image $img is missing: run deploy/container/build.sh --redis"
  done
  if podman pod exists "$NAME"; then
    die "pod $NAME exists already: deploy/pod/pod.sh down --name $NAME first"
  fi
  make_pki
  local pki token file
  pki=$(cd "$PKI" && pwd)
  token=${VTN_API_TOKEN:-$(openssl rand -hex 24)}
  mkdir -p "$RUN"
  file=$RUN/$NAME.yaml
  (umask 077 && sed -e "s|@PKI_DIR@|$pki|" -e "s|@API_TOKEN@|$token|" \
    -e "s|^  name: openvtn$|  name: $NAME|" \
    -e "s|hostPort: \([0-9]*\)$|hostPort: @\1@|" "$HERE/openvtn.yaml" >"$file.tmp")
  local p
  for p in 18080 18180 18081 19100 19200 19111 19112; do
    sed -i "s|hostPort: @$p@|hostPort: $(port $p)|" "$file.tmp"
  done
  mv "$file.tmp" "$file"
  say "playing $file as pod $NAME"
  podman kube play "$file" >/dev/null || die "podman kube play failed"
  local ops
  for ops in 19100 19200; do
    if ! wait_ready "http://127.0.0.1:$(port $ops)/readyz" 60; then
      say "gateway ops port $(port $ops) not ready after 60 s; the containers' last lines:"
      podman pod logs --tail 5 "$NAME" >&2 || true
      exit 1
    fi
  done
  cat <<EOM
pod $NAME is up (deploy/pod/pod.sh down --name $NAME stops it)
  OpenADR (mutual TLS)  https://127.0.0.1:$(port 18080)/OpenADR2/Simple/2.0b  and  :$(port 18180)
  management API        http://127.0.0.1:$(port 18081)/api/v1   (token in $file)
  gateway ops           http://127.0.0.1:$(port 19100)/metrics  and  :$(port 19200)
  scheduler ops         http://127.0.0.1:$(port 19111)/metrics  and  :$(port 19112)
  VEN ven1              --cert $pki/ven1.pem --key $pki/ven1.key --cacert $pki/client-ca.pem
  logs                  podman pod logs $NAME   (or podman logs $NAME-gateway-1)
EOM
}

down() {
  if ! podman pod exists "$NAME"; then
    say "no pod $NAME"
    return 0
  fi
  # The gateways drain on SIGTERM within VTN_REQUEST_TIMEOUT + 0.5 s.
  podman pod stop --time 15 "$NAME" >/dev/null
  podman pod rm --force "$NAME" >/dev/null
  say "pod $NAME removed"
}

case "$CMD" in
up) up ;;
down) down ;;
pki) make_pki && issue_vens ;;
status) podman pod ps --filter "name=^$NAME\$" && podman ps --pod --filter "pod=$NAME" ;;
-h | --help) usage ;;
*) say "unknown command $CMD (up, down, status or pki)"; exit 2 ;;
esac
