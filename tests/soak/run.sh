#!/usr/bin/env bash
# `make soak`: the long forms of the reliability tests, after `make test`.
#   tests/soak/run.sh BUILD_DIR
# 1. the chaos run for SOAK_CHAOS_SECONDS (default 600) of faults,
# 2. every tests/nvim/stack_faults*.lua with SHELF_SOAK=1 (long outages),
# 3. every fuzz target for SOAK_FUZZ_SECONDS (default 300) each, if built.
# Each uses the test build's shelfd (BUILD_DIR/test/shelfd). Logs go to
# BUILD_DIR/soak/; a failing step prints its tail. Ends with
# "N passed, N failed" and exits non-zero if anything failed. Every process
# started is stopped by its PID (its process group) on exit or interrupt.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:?usage: tests/soak/run.sh BUILD_DIR}
build=$(cd "$build" && pwd) || exit 2
helper=$build/test/shelfd
[ -x "$helper" ] || { echo "soak: $helper is missing; run 'make test' first" >&2; exit 2; }
chaos_seconds=${SOAK_CHAOS_SECONDS:-600}
fuzz_seconds=${SOAK_FUZZ_SECONDS:-300}
logs=$build/soak
mkdir -p "$logs"

export SHELF_TEST_HELPER=$helper SHELF_ROOT=$root SHELF_SOAK=1
passed=0 failed=0 failures=() step_pid=

stop_step() {
  if [ -n "$step_pid" ] && kill -0 "$step_pid" 2>/dev/null; then
    kill -TERM -- "-$step_pid" 2>/dev/null || kill -TERM "$step_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$step_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$step_pid" 2>/dev/null || true
  fi
  step_pid=
}
trap 'stop_step; echo "soak: interrupted"; echo "$passed passed, $((failed + 1)) failed"; exit 130' INT TERM

# step NAME MAX_SECONDS COMMAND...: runs COMMAND in its own process group.
step() {
  local name=$1 max=$2 log started rc=0
  shift 2
  log=$logs/$(echo "$name" | tr '/ ' '__').log
  started=$(date +%s)
  echo "soak: $name (log: $log)"
  setsid timeout -k 10 "$max" "$@" >"$log" 2>&1 </dev/null &
  step_pid=$!
  wait "$step_pid" || rc=$?
  step_pid=
  local took=$(( $(date +%s) - started ))
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "ok $name (${took} s)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "FAIL $name (exit $rc after ${took} s); log tail:"
    tail -n 40 "$log" | sed 's/^/  /'
  fi
  # The figures each long run prints, for the README's Reliability section.
  grep -E '^(chaos: |fuzz [a-z]+: )' "$log" | sed 's/^/  /' || true
}

# 1. The chaos run, long.
step nvim/stack_chaos $((chaos_seconds + 900)) \
  env SHELF_CHAOS_SECONDS="$chaos_seconds" "$here/stack_test.sh" "$root/tests/nvim/stack_chaos.lua" $((chaos_seconds + 850))

# 2. The fault tests with their slow variants.
for f in "$root"/tests/nvim/stack_faults*.lua; do
  [ -f "$f" ] || continue
  step "nvim/$(basename "$f" .lua)" 3700 "$here/stack_test.sh" "$f" 3600
done

# 3. Fuzzing for longer, if the fuzz targets were built (make test builds
# them in BUILD_DIR/fuzz).
if [ -x "$root/fuzz/run.sh" ]; then
  export SHELF_FUZZ_BIN=${SHELF_FUZZ_BIN:-$build/fuzz}
  for src in "$root"/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c); t=${t#fuzz_}
    if [ -x "$SHELF_FUZZ_BIN/fuzz_$t" ]; then
      step "fuzz/$t" $((fuzz_seconds + 600)) "$root/fuzz/run.sh" "$t" "$fuzz_seconds"
    else
      echo "soak: fuzz/$t skipped: $SHELF_FUZZ_BIN/fuzz_$t is not built"
    fi
  done
fi

[ "$failed" -eq 0 ] || echo "soak: failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
