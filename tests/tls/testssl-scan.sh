#!/bin/sh
# testssl.sh scan of vtn-gateway's OpenADR TLS listener. Not part of ctest
# (it takes a minute or two); the result is recorded in docs/tls.md.
#
#   tests/tls/testssl-scan.sh [BUILD_DIR]
#
# Makes a fresh development PKI (deploy/dev-pki.sh), starts redis-server and
# vtn-gateway on free 127.0.0.1 ports with that PKI, runs
# `testssl -p -E` (protocols offered, and the suites offered per protocol;
# the server-side checks need no client certificate) against the OpenADR
# listener, prints the result, and stops both processes by pid.
# VTN_TLS_PROTOCOLS=TLSv1.2,TLSv1.3 in the environment scans with TLS 1.3 on.
set -eu

repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$repo/build}"
gateway="$build/gateway/vtn-gateway"
vtnctl="$build/tools/vtnctl"
testssl="$(command -v testssl || command -v testssl.sh || true)"
[ -x "$gateway" ] || { echo "testssl-scan: $gateway not built" >&2; exit 1; }
[ -x "$vtnctl" ] || { echo "testssl-scan: $vtnctl not built" >&2; exit 1; }
[ -n "$testssl" ] || { echo "testssl-scan: testssl not installed (Debian package testssl.sh)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "testssl-scan: redis-server not installed" >&2; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/vtn-testssl.XXXXXX")"
gw_pid=""
redis_pid=""
cleanup() {
    for p in $gw_pid $redis_pid; do
        kill "$p" 2>/dev/null || true
    done
    for p in $gw_pid $redis_pid; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# five distinct free ports, bound together and released
set -- $(python3 -c 'import socket
s=[socket.socket() for _ in range(5)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
oadr=$1 api=$2 ops=$3 zmq=$4 redis=$5

"$repo/deploy/dev-pki.sh" --vtnctl "$vtnctl" "$tmp/pki" >/dev/null
. "$tmp/pki/tls.env"

redis-server --port "$redis" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$tmp" --daemonize no >"$tmp/redis.log" 2>&1 &
redis_pid=$!
VTN_OADR_LISTEN="127.0.0.1:$oadr" VTN_API_LISTEN="127.0.0.1:$api" \
VTN_OPS_LISTEN="127.0.0.1:$ops" VTN_ZMQ_BIND="tcp://127.0.0.1:$zmq" \
VTN_REDIS_URL="redis://127.0.0.1:$redis/0" "$gateway" >"$tmp/gateway.log" 2>&1 &
gw_pid=$!

i=0
until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$ops),1).close()" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$gw_pid" 2>/dev/null; then
        echo "testssl-scan: the gateway did not start:" >&2
        cat "$tmp/gateway.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "# vtn-gateway OpenADR listener 127.0.0.1:$oadr, VTN_TLS_PROTOCOLS=${VTN_TLS_PROTOCOLS:-default}"
echo "# $("$testssl" --version 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | grep -m1 -o 'testssl *[0-9][0-9.]*' | tr -s ' ')"
"$testssl" --quiet --warnings batch --color 0 -p -E "127.0.0.1:$oadr"
