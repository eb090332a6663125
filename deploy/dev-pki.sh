#!/bin/sh
# Creates a development PKI for the local VTN with vtnctl (test-only: these
# keys are unprotected files; never use them outside a dev machine).
#
#   deploy/dev-pki.sh [--vtnctl PATH] DIR
#
# DIR gets two CAs (ECC P-256 and RSA 2048, like the OpenADR PKI's two
# roots), a localhost server certificate from each (ECC and RSA, so VENs
# offering only one OpenADR suite connect), one VEN certificate, a CRL per
# CA, and tls.env with the VTN_TLS_* settings for the gateway.
# One CA per key type serves both sides, as the OpenADR roots issue both VTN
# and VEN certificates: it issues the VTN's server certificate and the VENs'
# client certificates, so client-ca.pem is what the gateway trusts for VENs
# and what a VEN trusts for the VTN. Its CN says so: "openvtn dev CA".
# Idempotent: when DIR/tls.env exists nothing is changed; the files are
# built in a temporary directory next to DIR and moved into place at the end,
# so an interrupted run leaves no half PKI behind.
# vtnctl is taken from --vtnctl, $VTNCTL, the PATH, or the repo's build/.
set -eu

usage() {
    sed -n '2,18s/^# \{0,1\}//p' "$0"
}

vtnctl="${VTNCTL:-}"
dir=""
while [ $# -gt 0 ]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --vtnctl) [ $# -ge 2 ] || { echo "dev-pki: --vtnctl needs a path" >&2; exit 2; }
        vtnctl="$2"; shift 2 ;;
    --vtnctl=*) vtnctl="${1#--vtnctl=}"; shift ;;
    -*) echo "dev-pki: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$dir" ] || { echo "dev-pki: one DIR only" >&2; exit 2; }
        dir="$1"; shift ;;
    esac
done
[ -n "$dir" ] || { usage >&2; exit 2; }

if [ -z "$vtnctl" ]; then
    repo="$(cd "$(dirname "$0")/.." && pwd)"
    if command -v vtnctl >/dev/null 2>&1; then
        vtnctl="$(command -v vtnctl)"
    elif [ -x "$repo/build/tools/vtnctl" ]; then
        vtnctl="$repo/build/tools/vtnctl"
    else
        echo "dev-pki: vtnctl not found: build it (cmake --build build --target vtnctl) or pass --vtnctl" >&2
        exit 1
    fi
fi
[ -x "$vtnctl" ] || { echo "dev-pki: $vtnctl is not executable" >&2; exit 1; }

print_usage() {
    d="$1"
    fp="$("$vtnctl" fingerprint "$d/ven1.pem")"
    cat <<EOM
Development PKI in $d (test-only keys)
  gateway:    . $d/tls.env   (sets VTN_TLS_CERTS, VTN_TLS_CLIENT_CA, VTN_TLS_CRL)
  VEN ven1:   certificate $d/ven1.pem, key $d/ven1.key
              OpenADR fingerprint $fp
              trusts the VTN through $d/client-ca.pem (the dev CAs issue
              both the server and the VEN certificates)
  try it:     curl --cacert $d/client-ca.pem --cert $d/ven1.pem --key $d/ven1.key \\
                -H 'Content-Type: application/xml' --data-binary @request.xml \\
                https://localhost:8080/OpenADR2/Simple/2.0b/EiRegisterParty
  more VENs:  $vtnctl cert issue --ca-dir $d/ca-ecc --cn ven2 --out-dir $d
  revoke:     $vtnctl cert revoke --ca-dir $d/ca-ecc --cert $d/ven1.pem
              $vtnctl crl publish --ca-dir $d/ca-ecc --out $d/crl-ecc.pem   (then SIGHUP the gateway)
EOM
}

if [ -f "$dir/tls.env" ]; then
    d="$(cd "$dir" && pwd)"
    echo "dev-pki: $d exists already; nothing changed"
    print_usage "$d"
    exit 0
fi
if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    echo "dev-pki: $dir exists but holds no tls.env (an unfinished or foreign PKI?); remove it or choose another DIR" >&2
    exit 1
fi

parent="$(dirname "$dir")"
mkdir -p "$parent"
tmp="$(mktemp -d "$parent/.dev-pki.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT INT TERM

q() { "$vtnctl" "$@" >/dev/null; }
q ca create --dir "$tmp/ca-ecc" --key ec --cn "openvtn dev CA, server and client (ECC)"
q ca create --dir "$tmp/ca-rsa" --key rsa --cn "openvtn dev CA, server and client (RSA)"
q cert issue --ca-dir "$tmp/ca-ecc" --cn localhost --name server-ecc --out-dir "$tmp" \
    --key ec --server --san DNS:localhost,IP:127.0.0.1,IP:::1
q cert issue --ca-dir "$tmp/ca-rsa" --cn localhost --name server-rsa --out-dir "$tmp" \
    --key rsa --server --san DNS:localhost,IP:127.0.0.1,IP:::1
q cert issue --ca-dir "$tmp/ca-ecc" --cn ven1 --out-dir "$tmp" --key ec
q crl publish --ca-dir "$tmp/ca-ecc" --out "$tmp/crl-ecc.pem"
q crl publish --ca-dir "$tmp/ca-rsa" --out "$tmp/crl-rsa.pem"
cat "$tmp/ca-ecc/ca.pem" "$tmp/ca-rsa/ca.pem" >"$tmp/client-ca.pem"
chmod 0700 "$tmp"

[ -d "$dir" ] && rmdir "$dir"
mv "$tmp" "$dir"
trap - EXIT INT TERM
d="$(cd "$dir" && pwd)"
# tls.env last: its presence says the PKI is complete
cat >"$d/tls.env.tmp" <<EOM
# Development PKI settings for vtn-gateway (test-only keys)
export VTN_TLS_CERTS='$d/server-ecc.pem:$d/server-ecc.key,$d/server-rsa.pem:$d/server-rsa.key'
export VTN_TLS_CLIENT_CA='$d/client-ca.pem'
export VTN_TLS_CRL='$d/crl-ecc.pem,$d/crl-rsa.pem'
EOM
mv "$d/tls.env.tmp" "$d/tls.env"
print_usage "$d"
