#!/usr/bin/env bash
# Runs one end-to-end test file in a fresh headless Neovim with the plugin on
# its runtimepath, its own XDG folders, and the shelfd of the test build
# ($SHELF_TEST_HELPER). Usage: tests/nvim/run.sh tests/nvim/test_api.lua
set -euo pipefail
test_file=$(realpath "$1")
root=${SHELF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shelf-test.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
export XDG_DATA_HOME=$tmp/data XDG_STATE_HOME=$tmp/state XDG_CONFIG_HOME=$tmp/config \
  XDG_CACHE_HOME=$tmp/cache
export SHELF_TEST_TMP=$tmp SHELF_TEST_FILE=$test_file SHELF_ROOT=$root
export SHELF_HELPER=${SHELF_TEST_HELPER:-$root/bin/shelfd}
# Sanitizer reports from shelfd land in its log (stderr), and make it exit
# non-zero, which the harness checks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$tmp"
exec timeout -k 5 280 nvim --headless -u NONE -i NONE -n \
  --cmd "set rtp^=$root" --cmd "runtime plugin/shelf.lua" \
  -c "luafile $root/tests/nvim/harness.lua"
