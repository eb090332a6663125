#!/usr/bin/env bash
# Builds openvtn's container image with podman: one image that runs every
# process (vtn-gateway, vtn-worker, vtn-scheduler, vtnctl).
#
#   deploy/container/build.sh [--tag NAME] [--rebuild-base] [--help]
#
# 1. The base image the Dockerfile's FROM names (debian:trixie-slim) is made
#    locally when it is absent: mmdebstrap --variant=minbase trixie from the
#    Debian archive this machine's apt uses (VTN_DEBIAN_MIRROR overrides it),
#    then podman import under that name. No image registry is needed.
# 2. The multi-stage Dockerfile is built with --pull=never: a builder stage
#    with the compilers and -dev packages, a final stage with the runtime
#    libraries only, running as uid 10001. Labels: org.opencontainers.image
#    version (CMakeLists.txt's project version), source (VTN_IMAGE_SOURCE,
#    default the git remote "origin", else "openvtn"), revision (git HEAD).
# 2b. Before it, the operator console is built on the host into console/dist
#    (npm ci, then vite build; needs node and npm, which deploy/setup.sh
#    installs) and the Dockerfile copies it into share/openvtn/ui.
# 3. With --redis, also builds openvtn-redis (Dockerfile.redis: Debian's
#    redis-server, Sentinel included), which the local pod uses.
# 4. Prints the images' names and sizes.
#
# Options:
#   --tag NAME       image name (default openvtn); tagged NAME:VERSION and NAME:latest
#   --redis          also build the openvtn-redis image (deploy/pod needs it)
#   --rebuild-base   make the base image again even when it exists
#   -h, --help       this text
#
# podman reads deploy/container/containers.conf (runc, no ulimit changes)
# unless CONTAINERS_CONF is set. Idempotent: a second run reuses the base
# image and podman's layer cache. Needs podman, runc and mmdebstrap
# (deploy/setup.sh --deploy installs them).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TAG=openvtn
REBUILD_BASE=0
REDIS=0
MIRROR=${VTN_DEBIAN_MIRROR:-}

say() { printf 'build: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }

trap 'say "failed at line $LINENO (status $?)"' ERR

while [ $# -gt 0 ]; do
  case "$1" in
  -h | --help) usage; exit 0 ;;
  --tag) [ $# -ge 2 ] || { say "--tag needs a name"; exit 2; }
    TAG=$2; shift 2 ;;
  --tag=*) TAG=${1#--tag=}; shift ;;
  --rebuild-base) REBUILD_BASE=1; shift ;;
  --redis) REDIS=1; shift ;;
  *) say "unknown argument $1 (see --help)"; exit 2 ;;
  esac
done
case "$TAG" in
'' | *[!a-z0-9._/-]*) say "--tag: lower-case letters, digits, '.', '_', '-', '/' only"; exit 2 ;;
esac

export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/containers.conf}
command -v podman >/dev/null || die "podman is not installed: run deploy/setup.sh --deploy (as root)"
podman info >/dev/null 2>&1 || die "podman cannot run here: $(podman info 2>&1 | tail -n 1)"

DOCKERFILE=$HERE/Dockerfile
BASE=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' "$DOCKERFILE" | head -n 1)
[ -n "$BASE" ] || die "no FROM line in $DOCKERFILE"
case "$BASE" in */*) ;; *) BASE=docker.io/library/$BASE ;; esac
SUITE=${BASE##*:}
SUITE=${SUITE%-slim}

t0=$SECONDS
if [ "$REBUILD_BASE" = 1 ] || ! podman image exists "$BASE"; then
  command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed: run deploy/setup.sh --deploy (as root)"
  if [ -z "$MIRROR" ]; then
    # The first Debian archive in apt's sources (deb822 or one-line format).
    MIRROR=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | awk '
      /^(URIs:|deb )/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\/.*\/debian\/?$/) { print $i; exit } }' || true)
    [ -n "$MIRROR" ] || die "no Debian archive found in apt's sources: set VTN_DEBIAN_MIRROR"
  fi
  say "making the base image $BASE (mmdebstrap --variant=minbase $SUITE from $MIRROR)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # --quiet keeps the log short; errors still print.
  nice -n 19 mmdebstrap --quiet --variant=minbase "$SUITE" "$tmp/base.tar" "$MIRROR" ||
    die "mmdebstrap failed (is $MIRROR reachable?)"
  podman import --quiet --change 'CMD ["/bin/bash"]' "$tmp/base.tar" "$BASE" >/dev/null ||
    die "podman import of the base image failed"
  rm -rf "$tmp"
  trap - EXIT
  say "base image ready in $((SECONDS - t0)) s"
fi

VERSION=$(sed -n 's/^project(openvtn VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
[ -n "$VERSION" ] || die "no project version in CMakeLists.txt"
REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE=${VTN_IMAGE_SOURCE:-$(git -C "$ROOT" config --get remote.origin.url 2>/dev/null || echo openvtn)}

command -v npm >/dev/null || die "npm is not installed (the console is built on the host): run deploy/setup.sh"
say "building the console into console/dist"
(cd "$ROOT/console" && npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
  VTN_UI_OUT="$ROOT/console/dist" npm run build --silent >/dev/null) ||
  die "the console's build failed (cd console && npm ci && npm run build)"
[ -f "$ROOT/console/dist/index.html" ] || die "no console/dist/index.html after the console's build"

say "building $TAG:$VERSION (revision ${REVISION:0:12})"
t1=$SECONDS
nice -n 19 podman build --pull=never --layers --file "$DOCKERFILE" \
  --build-arg VERSION="$VERSION" --build-arg SOURCE="$SOURCE" --build-arg REVISION="$REVISION" \
  --tag "$TAG:$VERSION" --tag "$TAG:latest" "$ROOT" ||
  die "podman build failed (see above)"

# The image must run and must not run as root.
user=$(podman image inspect --format '{{.Config.User}}' "$TAG:$VERSION")
case "$user" in '' | 0 | 0:* | root | root:*) die "the image runs as root ($user)" ;; esac
podman run --rm "$TAG:$VERSION" vtn-worker --version >/dev/null ||
  die "the image does not run vtn-worker --version"

say "built $TAG:$VERSION in $((SECONDS - t1)) s"

if [ "$REDIS" = 1 ]; then
  say "building openvtn-redis:latest"
  nice -n 19 podman build --pull=never --layers --file "$HERE/Dockerfile.redis" \
    --tag openvtn-redis:latest "$HERE" || die "podman build of openvtn-redis failed (see above)"
fi

say "done in $((SECONDS - t0)) s"
images=("$TAG:$VERSION")
[ "$REDIS" = 1 ] && images+=(openvtn-redis:latest)
for img in "${images[@]}"; do
  size=$(podman image inspect --format '{{.Size}}' "$img")
  printf 'image %s size %s bytes (%s MB)\n' "$img" "$size" "$((size / 1000000))"
done
