#!/usr/bin/env bash
# The benchmark runner (`make bench`). Runs the local (SQLite) benchmarks at
# each library size, then bench/supabase.sh when it is there, all appending
# to one results file under build/bench/, and prints one table
# (bench/report.mjs). QUICK=1: sizes 100 and 1k, fewer operations, under a
# minute. Without QUICK the results file is also kept as bench/results.jsonl
# and the report rewrites bench/RESULTS.md and bench/latency.png from it
# (`node bench/report.mjs bench/results.jsonl --write bench` does it again
# without a run). Besides the figures the results file holds records of what
# the run did (bench/meta.mjs: sizes, operation counts, the machine, failures,
# start and end). Benchmarks print figures; they assert nothing.
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
meta() { node "$root/bench/meta.mjs" "$@" >>"$out" || true; }

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
# A failure is recorded in the results file ($cur_size: the library size).
cur_size=0
lua_bench() {
  local file=$1 rc=0
  shift
  # bench/stall.lua first: the loop-stall measure covers the whole program.
  env BENCH_SCRIPT="$file" "$@" timeout -k 5 900 nvim --headless -u NONE -i NONE -n \
    --cmd "set rtp^=$root" --cmd "lua _G.shelf_bench_stall = dofile('$root/bench/stall.lua')" \
    --cmd "runtime plugin/shelf.lua" -c "luafile $root/bench/$file" &
  pids+=($!)
  wait $! || rc=$?
  if [ "$rc" != 0 ]; then
    echo "bench: $file failed (exit $rc); its figures are missing" >&2
    meta failed program="$file" size="$cur_size" exit="$rc"
  fi
}

# Operations per measure at a library size (the Lua programs' default is 200,
# 50 in quick mode): fewer where one takes long, every action redraws the tab.
ops_for() {
  if [ -z "$quick" ] && [ "$1" -ge 100000 ]; then echo 50; fi
}

started=$(date +%s)
if [ -n "$quick" ]; then
  sizes=${BENCH_SIZES:-"100 1000"}
else
  sizes=${BENCH_SIZES:-"100 1000 10000 100000"}
fi
echo "bench: shelfd $helper; sizes $sizes${quick:+ (quick)}; results in $out" >&2
ops_json= sep=
for n in $sizes; do
  o=$(ops_for "$n")
  ops_json="$ops_json$sep\"$n\":${o:-$([ -n "$quick" ] && echo 50 || echo 200)}"
  sep=,
done
meta run quick="$([ -n "$quick" ] && echo true || echo false)" sizes="[$(echo $sizes | tr ' ' ,)]" \
  ops="{$ops_json}" ops_note="fewer operations at 100k: each action redraws a 100k-line tab" \
  idle_s="${BENCH_IDLE_S:-$([ -n "$quick" ] && echo 5 || echo 20)}" \
  commit="$(git -C "$root" describe --always --dirty 2>/dev/null || echo '?')" \
  supabase="$([ -n "${BENCH_LOCAL_ONLY:-}" ] && echo false || echo true)"

echo "bench: start-up" >&2
lua_bench local_startup.lua

for n in $sizes; do
  db=$tmp/lib-$n/library.db
  mkdir -p "$(dirname "$db")"
  cur_size=$n
  ops=$(ops_for "$n")
  if [ -n "$ops" ]; then
    echo "bench: $n items: $ops operations per measure instead of 200 (each redraws a $n-line tab)" >&2
  fi
  echo "bench: $n items" >&2
  lua_bench local_seed.lua BENCH_DB="$db" BENCH_SIZE="$n"
  lua_bench local_start.lua BENCH_DB="$db" BENCH_SIZE="$n"
  lua_bench local_tab.lua BENCH_DB="$db" BENCH_SIZE="$n" ${ops:+BENCH_OPS=$ops}
  # Search and filter (content included), answered off the loop: measured by
  # bench/local_search.lua where the tree has it.
  if [ -f "$root/bench/local_search.lua" ]; then
    lua_bench local_search.lua BENCH_DB="$db" BENCH_SIZE="$n"
  else
    meta skipped program=local_search.lua size="$n" why="no bench/local_search.lua in this tree (asynchronous search not there yet)"
  fi
  lua_bench local_editors.lua BENCH_DB="$db" BENCH_SIZE="$n" ${ops:+BENCH_OPS=$ops}
  # The prompt builder with 200 of the blocks: its cost follows the blocks it
  # holds, not the library, so one size is enough.
  if [ "$n" = 1000 ]; then
    lua_bench local_builder.lua BENCH_DB="$db" BENCH_SIZE="$n"
  fi
  rm -rf "$(dirname "$db")"
done
echo "bench: local benchmarks took $(( $(date +%s) - started )) s" >&2

if [ -n "${BENCH_LOCAL_ONLY:-}" ]; then
  echo "bench: BENCH_LOCAL_ONLY set; the Supabase figures are left out" >&2
elif [ -x "$root/bench/supabase.sh" ]; then
  echo "bench: Supabase stack" >&2
  "$root/bench/supabase.sh" &
  pids+=($!)
  rc=0
  wait $! || rc=$?
  if [ "$rc" != 0 ]; then
    echo "bench: supabase.sh failed (exit $rc); its figures are missing" >&2
    meta failed program=supabase.sh exit="$rc"
  fi
else
  echo "bench: no bench/supabase.sh; the Supabase figures are left out" >&2
fi

meta end seconds=$(( $(date +%s) - started ))
if [ -n "$quick" ]; then
  node "$root/bench/report.mjs" "$out"
else
  # The raw results stay beside RESULTS.md, so the report can be made again.
  cp "$out" "$root/bench/results.jsonl"
  node "$root/bench/report.mjs" "$root/bench/results.jsonl" --write "$root/bench"
fi
echo "bench: done in $(( $(date +%s) - started )) s" >&2
