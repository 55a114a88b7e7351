#!/usr/bin/env bash
# shelfd's own descriptors at start-up and exit: no descriptor is closed twice
# (a second close can hit a file another part has opened under the same
# number meanwhile), and a start with no descriptors to spare fails with a
# message instead of running on a half-made event loop.
# Usage: fds.sh SHELFD
set -u
shelfd=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0

# 1. A normal start and stop (the editor closes the channel): every close()
#    must find its descriptor open.
# LeakSanitizer cannot run under ptrace; the leak checks are elsewhere.
true | ASAN_OPTIONS=detect_leaks=0 strace -f -qq -e trace=close -o "$dir/trace" "$shelfd" --sqlite "$dir/lib.db" \
  2>"$dir/err1" | cat >/dev/null
rc=${PIPESTATUS[1]}
if [ "$rc" -ne 0 ]; then
  echo "FAIL: shelfd exited $rc after the channel closed"; cat "$dir/err1"; fail=1
fi
if ! grep -q 'close(' "$dir/trace"; then
  echo "FAIL: strace saw no close() at all (the check would prove nothing)"; fail=1
fi
if grep 'EBADF' "$dir/trace"; then
  echo "FAIL: shelfd closed a descriptor that was already closed"; fail=1
fi

# 2. No descriptor left for the event loop: 0-2 are stdio and shelfd's copy
#    of stdout takes 3, so with a limit of 4 the loop's epoll cannot open.
(
  exec </dev/null >/dev/null 2>"$dir/err2"
  # Whatever the test runner left open is closed first, so 4 means 4.
  for f in /proc/$BASHPID/fd/*; do
    n=${f##*/}
    [ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null
  done
  ulimit -n 4
  exec "$shelfd" --sqlite "$dir/lib2.db"
)
rc=$?
if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then
  echo "FAIL: with no descriptors to spare shelfd exited $rc (want a plain failure)"
  cat "$dir/err2"; fail=1
fi
if ! grep -q 'cannot start the event loop' "$dir/err2"; then
  echo "FAIL: the message does not say the event loop could not start:"; cat "$dir/err2"; fail=1
fi

[ "$fail" -eq 0 ] && echo "ok: descriptors"
exit "$fail"
