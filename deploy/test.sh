#!/usr/bin/env bash
# Sets up, builds and runs every test (what CI runs through .ci/run):
#   1. build/       RelWithDebInfo, ctest on everything
#   2. build-asan/  -DVTN_SANITIZE=ON (ASan + UBSan), ctest -L 'unit|protocol|e2e'
#   3. build-fuzz/  clang, -DVTN_FUZZ=ON -DVTN_SANITIZE=ON, ctest -L fuzz (short
#                   bounded sessions)
#   4. deploy       deploy/k8s/check.sh (yamllint, shellcheck, every kustomize
#                   overlay rendered and validated offline), then the container
#                   images built (deploy/container/build.sh --redis), the local
#                   pod file tested (deploy/pod/test.sh) and the production
#                   overlay's objects played and put through the failover test
#                   (deploy/pod/overlay-test.sh); the image part is skipped,
#                   saying why, only when podman cannot run here
# Every stage runs even when an earlier one failed; the last line is
# "N passed, M failed" summed over the stages, and the exit status is non-zero
# when anything failed (a build that fails counts as one failure).
#
# Settings: VTN_JOBS (parallel jobs, default 2), VTN_TEST_STAGES (default
# "default asan fuzz deploy"), VTN_SKIP_SETUP=1 (do not run deploy/setup.sh),
# VTN_CTEST_ARGS (extra ctest arguments, e.g. "-R protocol").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${VTN_JOBS:-2}
STAGES=${VTN_TEST_STAGES:-default asan fuzz deploy}
read -r -a CTEST_EXTRA <<<"${VTN_CTEST_ARGS:-}"

say() { printf '\n=== test: %s\n' "$*" >&2; }

PASSED=0
FAILED=0
REPORT=()

if [ "${VTN_SKIP_SETUP:-0}" != 1 ]; then
  say "setup"
  "$ROOT/deploy/setup.sh"
fi

# Every OpenADR message the VTN emits in the tests is validated against the
# official 2.0b schema set, which is not part of this repository.
SCHEMA=${VTN_OFFICIAL_SCHEMA:-$ROOT/../shared/oadr20b-schema/oadr_20b.xsd}
if [ ! -f "$SCHEMA" ]; then
  say "the official OpenADR 2.0b schema is not at $SCHEMA: put the schema set" \
    "(oadr_20b.xsd and the files it imports) there, or set VTN_OFFICIAL_SCHEMA"
  exit 2
fi

# stage <name> <build dir> <ctest label regex or ""> <cmake args...>
stage() {
  local name=$1 dir=$2 labels=$3
  shift 3
  local t0=$SECONDS log="$dir/ctest.log"
  say "$name: configure and build in ${dir#"$ROOT"/}"
  if ! cmake -S "$ROOT" -B "$dir" -DVTN_OFFICIAL_SCHEMA="$SCHEMA" "$@" >/dev/null || ! cmake --build "$dir" -j"$JOBS"; then
    FAILED=$((FAILED + 1))
    REPORT+=("$name: build FAILED")
    return 0
  fi
  say "$name: ctest${labels:+ -L $labels}"
  local args=(--test-dir "$dir" --output-on-failure -j"$JOBS" --no-tests=error)
  [ -n "$labels" ] && args+=(-L "$labels")
  set +e
  ctest "${args[@]}" "${CTEST_EXTRA[@]}" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  # "97% tests passed, 1 tests failed out of 40"
  local line total failed skipped
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [ -z "$line" ]; then
    FAILED=$((FAILED + 1))
    REPORT+=("$name: ctest did not run (status $rc)")
    return 0
  fi
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  failed=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  skipped=$(grep -c '\*\*\*Skipped' "$log" || true)
  PASSED=$((PASSED + total - failed - skipped))
  FAILED=$((FAILED + failed))
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    FAILED=$((FAILED + 1)) # ctest itself failed
  fi
  REPORT+=("$name: $((total - failed - skipped)) passed, $failed failed, $skipped skipped ($((SECONDS - t0)) s)")
}

# count_lines <name> <log> <rc> <t0>: adds up a script's "N passed, M failed" lines.
count_lines() {
  local name=$1 log=$2 rc=$3 t0=$4 lines p=0 f=0 line
  lines=$(grep -E '(^|: )[0-9]+ passed, [0-9]+ failed' "$log" || true)
  if [ -z "$lines" ]; then
    FAILED=$((FAILED + 1))
    REPORT+=("$name: did not run to its summary (status $rc)")
    return 0
  fi
  while IFS= read -r line; do
    p=$((p + $(sed -E 's/(.*: )?([0-9]+) passed.*/\2/' <<<"$line")))
    f=$((f + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
  done <<<"$lines"
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then FAILED=$((FAILED + 1)); fi
  REPORT+=("$name: $p passed, $f failed ($((SECONDS - t0)) s)")
}

# counted <name> <log> <t0> <command...>: runs the command, its output also
# into log, and adds up its "N passed, M failed" lines (count_lines).
counted() {
  local name=$1 log=$2 t0=$3 rc
  shift 3
  set +e
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  count_lines "$name" "$log" "$rc" "$t0"
}

# The deployment files and the container images (docs/deploy.md).
deploy_stage() {
  local t0=$SECONDS dir=$ROOT/build-deploy
  mkdir -p "$dir"
  say "deploy: setup"
  if ! "$ROOT/deploy/setup.sh" --deploy; then
    FAILED=$((FAILED + 1))
    REPORT+=("deploy: setup FAILED")
    return 0
  fi
  say "deploy: manifests and scripts"
  counted "deploy: k8s-check" "$dir/check.log" "$t0" "$ROOT/deploy/k8s/check.sh"
  t0=$SECONDS
  local why
  if ! why=$(CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/deploy/container/containers.conf} podman info 2>&1 >/dev/null); then
    say "deploy: SKIPPED the image build and pod test: podman cannot run here: $(tail -n 1 <<<"$why")"
    REPORT+=("deploy: image + pod SKIPPED (podman cannot run: $(tail -n 1 <<<"$why"))")
    return 0
  fi
  say "deploy: images"
  if ! "$ROOT/deploy/container/build.sh" --redis 2>&1 | tee "$dir/build.log" | grep -E '^(build: |image )'; then
    FAILED=$((FAILED + 1))
    REPORT+=("deploy: image build FAILED (log in ${dir#"$ROOT"/}/build.log)")
    return 0
  fi
  say "deploy: pod file"
  counted "deploy: pod file (image build included)" "$dir/pod.log" "$t0" "$ROOT/deploy/pod/test.sh"
  t0=$SECONDS
  say "deploy: production overlay under podman, with faults"
  counted "deploy: production overlay" "$dir/overlay.log" "$t0" "$ROOT/deploy/pod/overlay-test.sh"
  local skipped
  skipped=$(grep -h '^SKIPPED' "$dir/pod.log" "$dir/overlay.log" || true)
  [ -z "$skipped" ] || REPORT+=("deploy: ${skipped#SKIPPED }: skipped")
}

for s in $STAGES; do
  case "$s" in
  default) stage default "$ROOT/build" "" -DCMAKE_BUILD_TYPE=RelWithDebInfo ;;
  asan) stage asan "$ROOT/build-asan" 'unit|protocol|e2e' -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVTN_SANITIZE=ON ;;
  # ASan + UBSan as well: the fuzzers then catch memory errors, not only crashes.
  fuzz) stage fuzz "$ROOT/build-fuzz" 'fuzz' -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVTN_SANITIZE=ON \
    -DCMAKE_C_COMPILER=clang -DVTN_FUZZ=ON ;;
  deploy) deploy_stage ;;
  *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done

echo
for r in "${REPORT[@]}"; do echo "  $r"; done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
