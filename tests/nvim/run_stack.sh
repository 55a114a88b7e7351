#!/usr/bin/env bash
# Runs an end-to-end test file against a fresh local Supabase-compatible stack:
# starts it in a temp folder, creates two users, runs the test with the
# stack's env file in $SHELF_STACK_ENV, and stops every process it started.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stack=$here/../stack
dir=$(mktemp -d "${TMPDIR:-/tmp}/shelf-stack.XXXXXX")
cleanup() { "$stack/stack.sh" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
"$stack/stack.sh" install >/dev/null
STACK_JWT_EXP=${STACK_JWT_EXP:-8} STACK_JWT_LEEWAY=0 "$stack/stack.sh" start "$dir" >/dev/null
node "$stack/admin.js" --env "$dir/env" create-user ada@example.com ada-password >/dev/null
node "$stack/admin.js" --env "$dir/env" create-user bob@example.com bob-password >/dev/null
export SHELF_STACK_ENV=$dir/env SHELF_STACK_DIR=$dir
"$here/run.sh" "$1"
