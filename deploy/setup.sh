#!/usr/bin/env bash
# Installs every Debian package that openvtn's build, tests and local stack
# need. Idempotent: when everything is present it returns in well under a
# second without touching apt. Run as root (or through sudo).
#
#   deploy/setup.sh [--deploy]
#
# The operator console (docs/ui.md) is built with Debian's nodejs and npm
# (unless node and npm are already on the PATH) and tested in Debian's
# chromium through chromium-driver and python3-selenium.
#
# --deploy adds what building the container image and checking the
# deployment files need (docs/deploy.md): podman with the runc runtime,
# mmdebstrap (the base image is made locally), yamllint, shellcheck,
# python3-yaml (deploy/pod/from-overlay.py), node and npm (unless already on
# the PATH), and Debian's kubernetes-client when no kubectl is on the PATH
# (for `kubectl kustomize`).
#
# llhttp must be 9.x: Debian 12's 8.1 accepts request-smuggling input
# (CVE-2023-30589). Debian 13 ships libllhttp-dev 9.2.1, which depends only on
# libc6; on Debian 12 it is fetched from Debian 13's archive through a private
# source list that the system's apt configuration never sees.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang libclang-rt-dev clang-format
  libuv1-dev libssl-dev openssl libxml2-dev libxml2-utils libhiredis-dev
  redis-server libzmq3-dev libcmocka-dev libjansson-dev
  python3 curl ca-certificates procps nginx-light testssl.sh
  chromium chromium-driver python3-selenium
)
# node and npm may come from elsewhere than Debian (the console's build).
command -v node >/dev/null || PKGS+=(nodejs)
command -v npm >/dev/null || PKGS+=(npm)
DEPLOY_PKGS=(
  podman runc conmon containernetworking-plugins golang-github-containernetworking-plugin-dnsname
  iptables slirp4netns uidmap mmdebstrap yamllint shellcheck python3-yaml
)
LLHTTP_MIN=9

say() { printf 'setup: %s\n' "$*" >&2; }

case "${1:-}" in
'') ;;
--deploy)
  PKGS+=("${DEPLOY_PKGS[@]}")
  # kubectl may come from elsewhere than Debian.
  command -v kubectl >/dev/null || PKGS+=(kubernetes-client)
  ;;
-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; exit 0 ;;
*) say "unknown argument $1 (--deploy or nothing)"; exit 2 ;;
esac

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { say "run as root (or install sudo)"; exit 1; }
  SUDO="sudo"
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

llhttp_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' libllhttp-dev 2>/dev/null || true)
  [ -n "$v" ] && [ "${v%%.*}" -ge "$LLHTTP_MIN" ] 2>/dev/null
}

export DEBIAN_FRONTEND=noninteractive
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! llhttp_ok; then
  if apt-cache policy libllhttp-dev 2>/dev/null | grep -qE 'Candidate: (9|[1-9][0-9])\.'; then
    say "installing libllhttp-dev from this system's archive"
    $SUDO apt-get install -y -qq --no-install-recommends libllhttp-dev >/dev/null
  else
    say "installing libllhttp-dev 9.x from Debian 13 (trixie)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    echo "deb [signed-by=$keyring] http://deb.debian.org/debian trixie main" >"$tmp/sources.list"
    opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=-
          -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
          -o APT::Sandbox::User=root)
    $SUDO apt-get "${opts[@]}" update -qq
    (cd "$tmp/debs" && $SUDO apt-get "${opts[@]}" download libllhttp-dev libllhttp9.2 >/dev/null)
    $SUDO dpkg -i "$tmp"/debs/*.deb >/dev/null
  fi
  llhttp_ok || { say "libllhttp-dev 9.x could not be installed"; exit 1; }
fi

# The distribution's redis-server unit is not used: every test and the local
# stack start their own redis-server on a loopback port.
say "ready (llhttp $(dpkg-query -W -f='${Version}' libllhttp-dev))"
