#!/usr/bin/env bash
# Checks the deployment files without a cluster:
#   1. yamllint on every YAML file under deploy/ (deploy/k8s/.yamllint)
#   2. shellcheck on every shell script under deploy/ and .ci/
#   3. every kustomize overlay rendered (`kubectl kustomize`: the kustomize
#      v5 of current kubectl and the v2 of Debian 12's kubernetes-client
#      render the same objects) and every
#      object validated offline against the Kubernetes API schemas (npm
#      kubernetes-models, pinned in check/package-lock.json; `npm ci` is
#      the only network use, skipped when node_modules is up to date)
# Ends with "k8s-check: N passed, M failed" (one check per file linted,
# per script, per overlay); exit 1 on any failure.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PASSED=0
FAILED=0

say() { printf 'k8s-check: %s\n' "$*" >&2; }
ok() { PASSED=$((PASSED + 1)); }
bad() { FAILED=$((FAILED + 1)); say "FAIL $*"; }

for tool in yamllint shellcheck kubectl node npm; do
  command -v "$tool" >/dev/null || { say "$tool is missing: run deploy/setup.sh --deploy"; exit 2; }
done

cd "$ROOT" || exit 2
while IFS= read -r f; do
  if yamllint -c "$HERE/.yamllint" "$f"; then ok; else bad "yamllint $f"; fi
done < <(find deploy -path '*/node_modules' -prune -o \( -name '*.yaml' -o -name '*.yml' \) -print | sort)

while IFS= read -r f; do
  if shellcheck -x "$f"; then ok; else bad "shellcheck $f"; fi
done < <({ find deploy -path '*/node_modules' -prune -o -name '*.sh' -print; echo .ci/run; } | sort)

if [ ! -f "$HERE/check/node_modules/.package-lock.json" ] ||
  [ "$HERE/check/package-lock.json" -nt "$HERE/check/node_modules/.package-lock.json" ]; then
  (cd "$HERE/check" && npm ci --no-audit --no-fund --silent) || { bad "npm ci in deploy/k8s/check"; }
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for dir in "$HERE"/base "$HERE"/overlays/*/; do
  dir=${dir%/}
  name=${dir#"$HERE"/}
  if ! kubectl kustomize "$dir" >"$out/render.yaml" 2>"$out/err"; then
    bad "kubectl kustomize $name: $(cat "$out/err")"
    continue
  fi
  if node "$HERE/check/validate.mjs" "$name" <"$out/render.yaml"; then ok; else bad "schema $name"; fi
done

echo "k8s-check: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
