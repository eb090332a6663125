#!/usr/bin/env bash
# The push run (docs/bench.md): P push-mode VENs (HTTPS endpoints with mutual
# TLS inside the benchmark process) and one event for all of them, then the
# same over reused connections, then with U of them unreachable. See
# bench/push_bench.py for what each line measures.
#   bench/run-push.sh [--vens P] [--unreachable U] [--build-dir DIR]
set -euo pipefail
ulimit -n 20000 2>/dev/null || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec python3 "$ROOT/bench/push_bench.py" "$@"
