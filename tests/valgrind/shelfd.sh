#!/usr/bin/env bash
# Stands in for shelfd: runs the unsanitized build under valgrind, one log
# file per process in $SHELF_VALGRIND_LOGS.
exec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
  --log-file="$SHELF_VALGRIND_LOGS/shelfd.%p.log" "$SHELF_VALGRIND_TARGET" "$@"
