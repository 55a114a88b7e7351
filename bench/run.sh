#!/usr/bin/env bash
# The benchmark runner (`make bench`). Runs the local (SQLite) benchmarks at
# each library size, then bench/supabase.sh when it is there, all appending
# to one results file under build/bench/, and prints one table
# (bench/report.mjs). QUICK=1: sizes 100 and 1k, fewer operations, under a
# minute. Without QUICK the report also rewrites bench/RESULTS.md and
# bench/latency.png. Benchmarks print figures; they assert nothing.
# env: SHELF_BENCH_HELPER (the optimised shelfd), QUICK, BENCH_SIZES (override
# the local sizes), BENCH_LOCAL_ONLY=1 (leave the Supabase stack out).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
helper=${SHELF_BENCH_HELPER:-$root/build/bench/shelfd}
if [ ! -x "$helper" ]; then
  echo "bench: no shelfd at $helper; run 'make bench' (it builds one) or set SHELF_BENCH_HELPER" >&2
  exit 1
fi
quick=${QUICK:-}
[ "$quick" = 0 ] && quick=
[ -n "$quick" ] && quick=1
export QUICK=$quick
mkdir -p "$root/build/bench"
out=$root/build/bench/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl
: >"$out"
ln -sfn "$(basename "$out")" "$root/build/bench/results-latest.jsonl"
export SHELF_BENCH_OUT=$out SHELF_ROOT=$root SHELF_HELPER=$helper

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shelf-bench.XXXXXX")
pids=()
cleanup() {
  # Stop whatever of ours is still running (each program stops its own
  # shelfd; this is for an interrupted run), then remove the libraries.
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export XDG_DATA_HOME=$tmp/data XDG_STATE_HOME=$tmp/state XDG_CONFIG_HOME=$tmp/config XDG_CACHE_HOME=$tmp/cache

# Run one Lua benchmark program in a fresh headless Neovim with the plugin.
lua_bench() {
  local file=$1
  shift
  env "$@" timeout -k 5 900 nvim --headless -u NONE -i NONE -n \
    --cmd "set rtp^=$root" --cmd "runtime plugin/shelf.lua" \
    -c "luafile $root/bench/$file" &
  pids+=($!)
  wait $! || echo "bench: $file failed (exit $?); its figures are missing" >&2
}

started=$(date +%s)
if [ -n "$quick" ]; then
  sizes=${BENCH_SIZES:-"100 1000"}
else
  sizes=${BENCH_SIZES:-"100 1000 10000 100000"}
fi
echo "bench: shelfd $helper; sizes $sizes${quick:+ (quick)}; results in $out" >&2

echo "bench: start-up" >&2
lua_bench local_startup.lua

for n in $sizes; do
  db=$tmp/lib-$n/library.db
  mkdir -p "$(dirname "$db")"
  # Fewer operations where one takes long: every action redraws the tab.
  ops=
  if [ -z "$quick" ] && [ "$n" -ge 100000 ]; then
    ops=50
    echo "bench: $n items: 50 operations per measure instead of 200 (each redraws a $n-line tab)" >&2
  fi
  echo "bench: $n items" >&2
  lua_bench local_seed.lua BENCH_DB="$db" BENCH_SIZE="$n"
  lua_bench local_tab.lua BENCH_DB="$db" BENCH_SIZE="$n" ${ops:+BENCH_OPS=$ops}
  lua_bench local_editors.lua BENCH_DB="$db" BENCH_SIZE="$n" ${ops:+BENCH_OPS=$ops}
  rm -rf "$(dirname "$db")"
done
echo "bench: local benchmarks took $(( $(date +%s) - started )) s" >&2

if [ -n "${BENCH_LOCAL_ONLY:-}" ]; then
  echo "bench: BENCH_LOCAL_ONLY set; the Supabase figures are left out" >&2
elif [ -x "$root/bench/supabase.sh" ]; then
  echo "bench: Supabase stack" >&2
  "$root/bench/supabase.sh" &
  pids+=($!)
  wait $! || echo "bench: supabase.sh failed (exit $?); its figures are missing" >&2
else
  echo "bench: no bench/supabase.sh; the Supabase figures are left out" >&2
fi

if [ -n "$quick" ]; then
  node "$root/bench/report.mjs" "$out"
else
  node "$root/bench/report.mjs" "$out" --write "$root/bench"
fi
echo "bench: done in $(( $(date +%s) - started )) s" >&2
