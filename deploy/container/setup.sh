#!/usr/bin/env bash
# Installs what building and checking the container image and the manifests
# need, from Debian's packages: podman with the runc runtime, mmdebstrap (the
# base image is made locally), yamllint and shellcheck. Idempotent: returns
# at once when everything is there. Run as root (or through sudo).
#
# kubectl (for `kubectl kustomize`) is taken from the PATH when present;
# otherwise Debian's kubernetes-client is installed. The JavaScript schema
# validator comes from npm (deploy/k8s/check/package-lock.json), installed by
# deploy/k8s/check.sh itself.
set -euo pipefail

PKGS=(podman runc conmon containernetworking-plugins golang-github-containernetworking-plugin-dnsname
  iptables slirp4netns uidmap mmdebstrap yamllint shellcheck nodejs npm)

say() { printf 'container-setup: %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { say "run as root (or install sudo)"; exit 1; }
  SUDO="sudo"
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node and npm may come from elsewhere than Debian (then they are on the PATH).
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do
    case "$p" in nodejs | npm) ;; *) filtered+=("$p") ;; esac
  done
  missing=("${filtered[@]}")
fi
command -v kubectl >/dev/null || missing+=(kubernetes-client)

if [ "${#missing[@]}" -gt 0 ]; then
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
say "ready (podman $(podman --version | awk '{print $3}'), kubectl $(kubectl version --client 2>/dev/null | head -n 1 | awk '{print $3}'))"
