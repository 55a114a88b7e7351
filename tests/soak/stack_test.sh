#!/usr/bin/env bash
# The long form of tests/nvim/run_stack.sh + run.sh: runs one end-to-end test
# file against a fresh local stack, without run.sh's 280 s cap (a soak runs
# for many minutes). Usage: tests/soak/stack_test.sh FILE [MAX_SECONDS]
# Needs SHELF_TEST_HELPER (the test build's shelfd); SHELF_SOAK etc. pass
# through. Stops everything it started by PID.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${SHELF_ROOT:-$(cd "$here/../.." && pwd)}
stack=$root/tests/stack
test_file=$(realpath "$1")
max=${2:-3600}
dir=$(mktemp -d "${TMPDIR:-/tmp}/shelf-soak-stack.XXXXXX")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shelf-soak-test.XXXXXX")
nvim_pid=
cleanup() {
  if [ -n "$nvim_pid" ] && kill -0 "$nvim_pid" 2>/dev/null; then kill -TERM "$nvim_pid" 2>/dev/null || true; fi
  "$stack/stack.sh" stop "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir" "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$stack/stack.sh" install >/dev/null
STACK_JWT_EXP=${STACK_JWT_EXP:-8} STACK_JWT_LEEWAY=0 "$stack/stack.sh" start "$dir" >/dev/null
node "$stack/admin.js" --env "$dir/env" create-user ada@example.com ada-password >/dev/null
node "$stack/admin.js" --env "$dir/env" create-user bob@example.com bob-password >/dev/null
export SHELF_STACK_ENV=$dir/env SHELF_STACK_DIR=$dir
export XDG_DATA_HOME=$tmp/data XDG_STATE_HOME=$tmp/state XDG_CONFIG_HOME=$tmp/config \
  XDG_CACHE_HOME=$tmp/cache
export SHELF_TEST_TMP=$tmp SHELF_TEST_FILE=$test_file SHELF_ROOT=$root
export SHELF_HELPER=${SHELF_TEST_HELPER:-$root/bin/shelfd}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$tmp"
timeout -k 5 "$max" "${SHELF_NVIM:-nvim}" --headless -u NONE -i NONE -n \
  --cmd "set rtp^=$root" --cmd "runtime plugin/shelf.lua" \
  -c "luafile $root/tests/nvim/harness.lua" &
nvim_pid=$!
rc=0
wait "$nvim_pid" || rc=$?
nvim_pid=
exit "$rc"
