#!/usr/bin/env bash
# Runs one end-to-end test file in a fresh headless Neovim with the plugin on
# its runtimepath, its own XDG folders, and the shelfd of the test build
# ($SHELF_TEST_HELPER), on the Neovim $SHELF_NVIM names (default: nvim on PATH).
# Usage: tests/nvim/run.sh tests/nvim/test_api.lua
set -euo pipefail
test_file=$(realpath "$1")
root=${SHELF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shelf-test.XXXXXX")
# With $SHELF_LOG_KEEP set (the test build sets it), shelfd's logs and the
# editor's messages are kept there for tests/security/secrets.sh.
keep_logs() {
  [ -n "${SHELF_LOG_KEEP:-}" ] || return 0
  local dest
  dest=$SHELF_LOG_KEEP/$(basename "$test_file" .lua).$$
  mkdir -p "$dest"
  (cd "$tmp" && find . -type f \( -name '*.log' -o -name 'messages.txt' \) -print0 |
    xargs -0 -r cp --parents -t "$dest") || true
  # The tokens of any session left behind are what to look for, not a leak.
  mkdir -p "$SHELF_LOG_KEEP/.tokens"
  find "$tmp" -name 'supabase-session.json*' -type f -exec cat {} + 2>/dev/null |
    grep -o '"\(access\|refresh\)_token":"[^"]*"' | cut -d'"' -f4 \
    >>"$SHELF_LOG_KEEP/.tokens/$(basename "$dest")" || true
}
cleanup() { keep_logs; rm -rf "$tmp"; }
trap cleanup EXIT
export XDG_DATA_HOME=$tmp/data XDG_STATE_HOME=$tmp/state XDG_CONFIG_HOME=$tmp/config \
  XDG_CACHE_HOME=$tmp/cache
# The harness says where a file is stuck shortly before the timeout ends it.
export SHELF_TEST_LIMIT_S=${SHELF_TEST_LIMIT_S:-280}
export SHELF_TEST_TMP=$tmp SHELF_TEST_FILE=$test_file SHELF_ROOT=$root
export SHELF_HELPER=${SHELF_TEST_HELPER:-$root/bin/shelfd}
# A sanitizer report makes shelfd exit non-zero, and goes to a file of its
# own ($tmp/sanitizer.PID): the plugin keeps only stderr's last lines, and
# the harness prints every such file and fails the test file on it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}:log_path=$tmp/sanitizer
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}:log_path=$tmp/sanitizer
cd "$tmp"
timeout -k 5 "$SHELF_TEST_LIMIT_S" "${SHELF_NVIM:-nvim}" --headless -u NONE -i NONE -n \
  --cmd "set rtp^=$root" --cmd "runtime plugin/shelf.lua" \
  -c "luafile $root/tests/nvim/harness.lua"
