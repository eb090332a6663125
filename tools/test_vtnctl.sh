#!/bin/sh
# vtnctl end to end, checked with the openssl CLI as an independent verifier:
# a CA issues a VEN certificate that `openssl verify` accepts; after revoke +
# crl publish, `openssl verify -crl_check` refuses it; the fingerprints match
# `openssl x509 -fingerprint -sha256` (last 10 bytes); keys are mode 0600;
# sign-csr, the RSA path, usage errors and deploy/dev-pki.sh idempotence.
#   test_vtnctl.sh VTNCTL DEV_PKI_SH
set -eu
V="$1"
DEVPKI="$2"
T="$(mktemp -d "${TMPDIR:-/tmp}/vtnctl-test.XXXXXX")"
trap 'rm -rf "$T"' EXIT INT TERM
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

# the OpenADR fingerprint as the openssl CLI sees it: last 10 bytes
cli_fp() {
    openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//' | cut -d: -f23-32
}

mode() { stat -c %a "$1"; }

# --- CA and a VEN certificate -----------------------------------------------
"$V" ca create --dir "$T/ca" >"$T/out" || fail "ca create"
[ "$(mode "$T/ca/ca.key")" = 600 ] && ok "CA key mode 0600" || fail "CA key mode $(mode "$T/ca/ca.key")"
openssl x509 -in "$T/ca/ca.pem" -noout -text | grep -q "CA:TRUE" && ok "CA:TRUE" || fail "CA basicConstraints"
openssl x509 -in "$T/ca/ca.pem" -noout -text | grep -q "ASN1 OID: prime256v1" && ok "CA is P-256" || fail "CA key type"

if "$V" ca create --dir "$T/ca" >/dev/null 2>&1; then fail "second ca create succeeded"; else ok "ca create refuses an existing CA"; fi
"$V" ca create --dir "$T/pki/ca-ecc" >/dev/null && [ -f "$T/pki/ca-ecc/ca.pem" ] && ok "ca create makes missing parents" || fail "ca create in a new pki/ folder"
[ "$(mode "$T/pki/ca-ecc")" = 700 ] && ok "CA folder mode 0700" || fail "CA folder mode $(mode "$T/pki/ca-ecc")"

"$V" cert issue --ca-dir "$T/ca" --cn ven1 --out-dir "$T/vens" >"$T/issue.out" || fail "cert issue"
[ "$(mode "$T/vens/ven1.key")" = 600 ] && ok "VEN key mode 0600" || fail "VEN key mode"
openssl verify -CAfile "$T/ca/ca.pem" "$T/vens/ven1.pem" >/dev/null && ok "openssl verify accepts the VEN certificate" || fail "openssl verify"
openssl verify -purpose sslclient -CAfile "$T/ca/ca.pem" "$T/vens/ven1.pem" >/dev/null && ok "usable as a TLS client certificate" || fail "purpose sslclient"
openssl pkey -in "$T/vens/ven1.key" -pubout >"$T/k.pub" && openssl x509 -in "$T/vens/ven1.pem" -noout -pubkey | cmp -s - "$T/k.pub" && ok "key matches certificate" || fail "key/cert mismatch"

want="$(cli_fp "$T/vens/ven1.pem")"
got="$("$V" fingerprint "$T/vens/ven1.pem")"
[ "$got" = "$want" ] && ok "fingerprint $got matches openssl" || fail "fingerprint: vtnctl $got, openssl $want"
grep -q "^fingerprint $want\$" "$T/issue.out" && ok "cert issue prints the fingerprint" || fail "cert issue output: $(cat "$T/issue.out")"
openssl x509 -in "$T/vens/ven1.pem" -outform DER -out "$T/ven1.der"
[ "$("$V" fingerprint "$T/ven1.der")" = "$want" ] && ok "fingerprint of DER input" || fail "DER fingerprint"

if "$V" cert issue --ca-dir "$T/ca" --cn ven1 --out-dir "$T/vens" >/dev/null 2>&1; then fail "overwrote ven1 without --force"; else ok "no overwrite without --force"; fi

# --- revoke + CRL -----------------------------------------------------------
"$V" crl publish --ca-dir "$T/ca" --out "$T/crl0.pem" >/dev/null || fail "crl publish (empty)"
openssl verify -crl_check -CAfile "$T/ca/ca.pem" -CRLfile "$T/crl0.pem" "$T/vens/ven1.pem" >/dev/null && ok "valid with an empty CRL" || fail "verify with empty CRL"

"$V" cert revoke --ca-dir "$T/ca" --cert "$T/vens/ven1.pem" --reason keyCompromise >/dev/null || fail "cert revoke"
"$V" cert revoke --ca-dir "$T/ca" --cert "$T/vens/ven1.pem" | grep -q "already revoked" && ok "revoking twice says so" || fail "second revoke"
"$V" crl publish --ca-dir "$T/ca" --out "$T/crl.pem" >/dev/null || fail "crl publish"
if openssl verify -crl_check -CAfile "$T/ca/ca.pem" -CRLfile "$T/crl.pem" "$T/vens/ven1.pem" >"$T/verify.out" 2>&1; then
    fail "openssl verify -crl_check accepted a revoked certificate"
else
    grep -q "certificate revoked" "$T/verify.out" && ok "openssl verify -crl_check: certificate revoked" || fail "unexpected verify error: $(cat "$T/verify.out")"
fi
serial="$(openssl x509 -in "$T/vens/ven1.pem" -noout -serial | sed 's/serial=//')"
openssl crl -in "$T/crl.pem" -noout -text >"$T/crl.txt"
grep -q "$serial" "$T/crl.txt" && ok "CRL lists serial $serial" || fail "serial missing from CRL"
grep -q "Key Compromise" "$T/crl.txt" && ok "CRL carries the reason" || fail "reason missing"
grep -A1 "CRL Number" "$T/crl.txt" | grep -q " 2$" && ok "CRL number increments" || fail "CRL number: $(grep -A1 'CRL Number' "$T/crl.txt")"
openssl crl -in "$T/crl.pem" -noout -CAfile "$T/ca/ca.pem" 2>&1 | grep -q "verify OK" && ok "CRL signature verifies" || fail "CRL signature"

# another VEN of the same CA is unaffected by the CRL
"$V" cert issue --ca-dir "$T/ca" --cn ven2 --out-dir "$T/vens" >/dev/null || fail "issue ven2"
"$V" crl publish --ca-dir "$T/ca" --out "$T/crl.pem" >/dev/null || fail "crl republish"
openssl verify -crl_check -CAfile "$T/ca/ca.pem" -CRLfile "$T/crl.pem" "$T/vens/ven2.pem" >/dev/null && ok "unrevoked VEN passes -crl_check" || fail "ven2 refused"

# revoke by serial (lower case, with colons) works too
s2="$(openssl x509 -in "$T/vens/ven2.pem" -noout -serial | sed 's/serial=//' | tr 'A-F' 'a-f' | sed 's/../&:/g; s/:$//')"
"$V" cert revoke --ca-dir "$T/ca" --serial "$s2" >/dev/null && ok "revoke --serial $s2" || fail "revoke by serial"
[ "$("$V" cert list --ca-dir "$T/ca" | cut -f1 | tr -d '\n')" = "RR" ] && ok "cert list shows both revoked" || fail "cert list: $("$V" cert list --ca-dir "$T/ca")"

# --- RSA CA, server certificate, CSR ---------------------------------------
"$V" ca create --dir "$T/rsa" --key rsa --cn "test RSA CA" >/dev/null || fail "RSA CA"
openssl x509 -in "$T/rsa/ca.pem" -noout -text | grep -q "Public-Key: (2048 bit)" && ok "RSA CA is 2048 bit" || fail "RSA CA size"
"$V" cert issue --ca-dir "$T/rsa" --cn localhost --name srv --out-dir "$T/srv" --key rsa --server --san DNS:localhost,IP:127.0.0.1 >/dev/null || fail "server cert"
openssl verify -purpose sslserver -verify_hostname localhost -CAfile "$T/rsa/ca.pem" "$T/srv/srv.pem" >/dev/null && ok "RSA server certificate for localhost" || fail "server cert verify"
openssl verify -verify_ip 127.0.0.1 -CAfile "$T/rsa/ca.pem" "$T/srv/srv.pem" >/dev/null && ok "server certificate for 127.0.0.1" || fail "server cert IP SAN"
openssl x509 -in "$T/srv/srv.pem" -noout -text | grep -q "Key Encipherment" && ok "RSA leaf allows key encipherment (AES128-SHA256)" || fail "RSA key usage"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/csr.key" -subj "/O=Example Utility/CN=ven-csr" -out "$T/ven.csr" 2>/dev/null
"$V" cert sign-csr --ca-dir "$T/ca" --csr "$T/ven.csr" --out "$T/ven-csr.pem" >"$T/csr.out" || fail "sign-csr"
openssl verify -CAfile "$T/ca/ca.pem" "$T/ven-csr.pem" >/dev/null && ok "signed CSR verifies" || fail "signed CSR verify"
openssl x509 -in "$T/ven-csr.pem" -noout -subject -nameopt RFC2253 | grep -q "CN=ven-csr" && ok "CSR subject kept" || fail "CSR subject"
grep -q "^fingerprint $(cli_fp "$T/ven-csr.pem")\$" "$T/csr.out" && ok "sign-csr prints the fingerprint" || fail "sign-csr fingerprint"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/csr2.key" -subj "/CN=evil" -addext "basicConstraints=critical,CA:TRUE" -out "$T/evil.csr" 2>/dev/null
"$V" cert sign-csr --ca-dir "$T/ca" --csr "$T/evil.csr" --out "$T/evil.pem" >/dev/null || fail "sign-csr evil"
openssl x509 -in "$T/evil.pem" -noout -text | grep -q "CA:FALSE" && ok "CSR cannot ask for CA:TRUE" || fail "CSR extensions copied"

# a certificate from another CA cannot be revoked here
if "$V" cert revoke --ca-dir "$T/ca" --cert "$T/srv/srv.pem" >/dev/null 2>&1; then fail "revoked a foreign certificate"; else ok "foreign certificate refused"; fi

# --- usage errors: exit code 2 and a message --------------------------------
set +e
"$V" cert issue --ca-dir "$T/ca" --out-dir "$T/x" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--cn is required" "$T/err" && ok "missing --cn: exit 2" || fail "missing --cn: rc=$rc $(cat "$T/err")"
"$V" cert issue --ca-dir "$T/ca" --cn x --out-dir "$T/x" --key dsa >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "bad --key: exit 2" || fail "bad --key rc=$rc"
"$V" bogus >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "unknown command: exit 2" || fail "unknown command rc=$rc"
"$V" cert issue --ca-dir "$T/nope" --cn x --out-dir "$T/x" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "not a CA directory" "$T/err" && ok "missing CA: exit 1" || fail "missing CA rc=$rc $(cat "$T/err")"
for c in "ca create" "cert issue" "cert sign-csr" "cert revoke" "cert list" "crl publish" "fingerprint"; do
    # shellcheck disable=SC2086
    "$V" $c --help | grep -q "^usage: vtnctl $c" || fail "$c --help"
done
ok "--help for every subcommand"
set -e

# --- ticket-keys rotate -----------------------------------------------------
K="$T/ticket-keys"
keys() { grep -v '^#' "$1" | grep -c .; }
"$V" ticket-keys rotate --file "$K" >/dev/null || fail "ticket-keys rotate (new file)"
[ "$(mode "$K")" = 600 ] && ok "ticket key file mode 0600" || fail "ticket key file mode $(mode "$K")"
[ "$(keys "$K")" = 1 ] && grep -v '^#' "$K" | grep -qxE '[0-9a-f]{160}' && ok "a new file holds one key of 160 hex digits" || fail "new ticket key file"
first="$(grep -v '^#' "$K" | head -n 1)"
"$V" ticket-keys rotate --file "$K" >/dev/null || fail "ticket-keys rotate (again)"
[ "$(keys "$K")" = 2 ] && [ "$(grep -v '^#' "$K" | sed -n 2p)" = "$first" ] && [ "$(grep -v '^#' "$K" | head -n 1)" != "$first" ] && ok "rotation puts a new key first and keeps the old one second" || fail "ticket key rotation"
"$V" ticket-keys rotate --file "$K" >/dev/null && [ "$(keys "$K")" = 2 ] && ok "--keep 1 (the default) drops the oldest" || fail "ticket keys kept"
"$V" ticket-keys rotate --file "$K" --keep 0 >/dev/null && [ "$(keys "$K")" = 1 ] && ok "--keep 0 leaves only the new key" || fail "--keep 0"
printf 'not a key\n' >"$T/bad-keys"
if "$V" ticket-keys rotate --file "$T/bad-keys" >/dev/null 2>"$T/err"; then fail "rotate accepted a file that is not a key file"; else grep -q "line 1 is not a ticket key" "$T/err" && grep -qx 'not a key' "$T/bad-keys" && ok "a malformed key file is refused and left alone" || fail "malformed key file: $(cat "$T/err")"; fi
rc=0; "$V" ticket-keys rotate --file "$K" --keep 8 >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] && ok "--keep 8 is a usage error" || fail "--keep 8: exit $rc"

# --- deploy/dev-pki.sh ------------------------------------------------------
sh "$DEVPKI" --vtnctl "$V" "$T/dev" >"$T/dev.out" || fail "dev-pki"
D="$T/dev"
for f in server-ecc.pem server-ecc.key server-rsa.pem server-rsa.key ven1.pem ven1.key client-ca.pem crl-ecc.pem crl-rsa.pem tls.env; do
    [ -f "$D/$f" ] || fail "dev-pki: $f missing"
done
openssl x509 -in "$D/server-ecc.pem" -noout -text | grep -q "prime256v1" && ok "dev-pki ECC server certificate" || fail "dev ECC server"
openssl x509 -in "$D/server-rsa.pem" -noout -text | grep -q "(2048 bit)" && ok "dev-pki RSA server certificate" || fail "dev RSA server"
for s in server-ecc server-rsa; do
    openssl verify -purpose sslserver -verify_hostname localhost -CAfile "$D/client-ca.pem" "$D/$s.pem" >/dev/null || fail "dev $s verify"
done
cat "$D/crl-ecc.pem" "$D/crl-rsa.pem" >"$T/crls.pem"
openssl verify -crl_check -CAfile "$D/client-ca.pem" -CRLfile "$T/crls.pem" "$D/ven1.pem" >/dev/null && ok "dev-pki VEN verifies with CRL checking" || fail "dev ven1 verify"
grep -q "$(cli_fp "$D/ven1.pem")" "$T/dev.out" && ok "dev-pki prints the VEN fingerprint" || fail "dev-pki output"
# inode and change time (ns) of every file: any rewrite or replacement shows
snapshot() { find "$1" -exec stat -c '%n %i %z' {} + | sort | md5sum; }
before="$(snapshot "$D")"
sh "$DEVPKI" --vtnctl "$V" "$T/dev" >"$T/dev2.out" || fail "dev-pki second run"
[ "$(snapshot "$D")" = "$before" ] && grep -q "nothing changed" "$T/dev2.out" && ok "dev-pki is idempotent" || fail "dev-pki changed an existing PKI"
( . "$D/tls.env"; [ -n "$VTN_TLS_CERTS" ] && [ -n "$VTN_TLS_CLIENT_CA" ] && [ -n "$VTN_TLS_CRL" ] ) && ok "tls.env sets the gateway's settings" || fail "tls.env"
mkdir "$T/foreign" && touch "$T/foreign/x"
if sh "$DEVPKI" --vtnctl "$V" "$T/foreign" >/dev/null 2>&1; then fail "dev-pki wrote into a foreign directory"; else ok "dev-pki refuses a non-empty foreign directory"; fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all vtnctl checks passed"
