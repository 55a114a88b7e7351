#!/usr/bin/env bash
# Bulk changes made by another program while the knowledge tab is open
# (bench/local_bulk.lua): prints the figures, asserts nothing.
# Usage: bench/bulk.sh [SIZE] (default 100000); env SHELF_BENCH_HELPER.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
helper=${SHELF_BENCH_HELPER:-$root/build/release/shelfd}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shelf-bulk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export XDG_DATA_HOME=$tmp/data XDG_STATE_HOME=$tmp/state XDG_CONFIG_HOME=$tmp/config XDG_CACHE_HOME=$tmp/cache
SHELF_ROOT=$root SHELF_HELPER=$helper BENCH_DB=$tmp/library.db BENCH_SIZE=${1:-100000} \
  timeout -k 5 900 nvim --headless -u NONE -i NONE -n --cmd "set rtp^=$root" \
  --cmd "runtime plugin/shelf.lua" -c "luafile $root/bench/local_bulk.lua"
