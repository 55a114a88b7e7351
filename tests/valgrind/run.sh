#!/usr/bin/env bash
# Runs an end-to-end test file with every shelfd under valgrind, then fails if
# any of them reported an error or a leak.
# Usage: run.sh SHELFD TEST.lua [RUNNER]   (RUNNER defaults to tests/nvim/run.sh;
# tests/nvim/run_stack.sh runs the test against a fresh local Supabase stack)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export SHELF_VALGRIND_TARGET=$1
export SHELF_VALGRIND_LOGS
SHELF_VALGRIND_LOGS=$(mktemp -d "${TMPDIR:-/tmp}/shelf-valgrind.XXXXXX")
trap 'rm -rf "$SHELF_VALGRIND_LOGS"' EXIT
status=0
SHELF_TEST_HELPER=$here/shelfd.sh "${3:-$here/../nvim/run.sh}" "$2" || status=$?
logs=("$SHELF_VALGRIND_LOGS"/*.log)
if [ ! -e "${logs[0]}" ]; then
  echo "valgrind: no shelfd ran" >&2
  exit 1
fi
# Kept for tests/security/secrets.sh: crash output must hold no secret either.
if [ -n "${SHELF_LOG_KEEP:-}" ]; then
  mkdir -p "$SHELF_LOG_KEEP/valgrind.$(basename "$2" .lua).$$"
  cp "${logs[@]}" "$SHELF_LOG_KEEP/valgrind.$(basename "$2" .lua).$$/" || true
fi
bad=0
for log in "${logs[@]}"; do
  if [ -s "$log" ]; then
    echo "valgrind reported for $(basename "$log"):" >&2
    cat "$log" >&2
    bad=1
  fi
done
echo "valgrind: ${#logs[@]} shelfd processes checked, $([ $bad = 0 ] && echo clean || echo NOT clean)" >&2
[ $bad = 0 ] && exit $status || exit 1
