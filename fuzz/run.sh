#!/bin/sh
# fuzz/run.sh TARGET SECONDS [EXTRA libFuzzer ARGS...]
#
# Runs the libFuzzer target fuzz_TARGET (rpc, realtime, records) for SECONDS
# on a copy of fuzz/corpus/TARGET in a temp dir (the repository is never
# written), after replaying every file in fuzz/regress/TARGET. Exits non-zero
# if anything crashed, leaked, timed out or broke an invariant, and prints the
# reproducer (path, size, base64) and how to keep it as a regression input.
# Reproducers are also saved under $SHELF_FUZZ_ARTIFACTS (default: the build
# dir's fuzz-artifacts/TARGET). The binaries come from $SHELF_FUZZ_BIN
# (default build/fuzz, as `make test` builds them). Prints one summary line:
#   fuzz TARGET: N runs in S s (R/s), cov C ft F, corpus K inputs
# Set SHELF_FUZZ_KEEP_CORPUS=DIR to keep the grown corpus there.
set -u
target=${1:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer args...]}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer args...]}
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
bindir=${SHELF_FUZZ_BIN:-$root/build/fuzz}
bin=$bindir/fuzz_$target
artifacts=${SHELF_FUZZ_ARTIFACTS:-$bindir/fuzz-artifacts/$target}
if [ ! -x "$bin" ]; then
  echo "fuzz: $bin is missing; build it with:" >&2
  echo "  cmake -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DSHELF_FUZZ=ON && cmake --build build/fuzz --target fuzz" >&2
  exit 2
fi
[ -d "$root/fuzz/corpus/$target" ] || { echo "fuzz: no seed corpus fuzz/corpus/$target" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shelf-fuzz-$target.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/corpus" "$tmp/art"
cp "$root/fuzz/corpus/$target"/* "$tmp/corpus/"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# -timeout is per input and generous: the machine may be loaded.
common="-rss_limit_mb=2048 -timeout=30 -max_len=65536 -artifact_prefix=$tmp/art/ -print_final_stats=1"
dict=
[ -f "$root/fuzz/$target.dict" ] && dict="-dict=$root/fuzz/$target.dict"

report() { # $1: what happened
  echo "fuzz $target: FAILED ($1)"
  found=0
  for f in "$tmp"/art/*; do
    [ -f "$f" ] || continue
    found=1
    mkdir -p "$artifacts"
    cp "$f" "$artifacts/"
    echo "reproducer: $artifacts/$(basename "$f") ($(wc -c <"$f") bytes), base64:"
    base64 "$f"
  done
  [ $found = 1 ] && echo "keep it: cp $artifacts/<file> fuzz/regress/$target/ (replayed by every run), then fix the bug"
  exit 1
}

# 1. Known crashers and edge cases: each must now run clean.
if ls "$root/fuzz/regress/$target"/* >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  "$bin" $common "$root/fuzz/regress/$target"/* >"$tmp/regress.log" 2>&1 || {
    cat "$tmp/regress.log"; report "a regression input fails again"; }
  echo "fuzz $target: $(ls "$root/fuzz/regress/$target" | wc -l) regression inputs replayed clean"
fi

# 2. Bounded fuzzing from the seed corpus.
# shellcheck disable=SC2086
"$bin" $common $dict -max_total_time="$seconds" "$@" "$tmp/corpus" >"$tmp/fuzz.log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/fuzz.log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$tmp/fuzz.log" | tail -1)
cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$tmp/fuzz.log" | tail -1)
if [ $rc -ne 0 ]; then
  tail -n 80 "$tmp/fuzz.log"
  report "libFuzzer exit $rc"
fi
[ -n "${SHELF_FUZZ_KEEP_CORPUS:-}" ] && { mkdir -p "$SHELF_FUZZ_KEEP_CORPUS"; cp "$tmp/corpus"/* "$SHELF_FUZZ_KEEP_CORPUS/"; }
echo "fuzz $target: ${runs:-?} runs in $seconds s (${rate:-?}/s), ${cov:-cov ?}, corpus $(ls "$tmp/corpus" | wc -l) inputs"
