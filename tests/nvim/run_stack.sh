#!/usr/bin/env bash
# Runs an end-to-end test file against a fresh local Supabase-compatible stack:
# starts it in a temp folder, creates two users, runs the test with the
# stack's env file in $SHELF_STACK_ENV, and stops every process it started.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stack=$here/../stack
dir=$(mktemp -d "${TMPDIR:-/tmp}/shelf-stack.XXXXXX")
# Every refresh token the stack issued, every secret of a sign-in it handed out or received
# (auth codes, code verifiers, email tokens) and the project's secret keys, for
# tests/security/secrets.sh to hunt.
keep_tokens() {
  [ -n "${SHELF_LOG_KEEP:-}" ] && [ -f "$dir/env" ] || return 0
  mkdir -p "$SHELF_LOG_KEEP/.tokens"
  local out=$SHELF_LOG_KEEP/.tokens/stack.$(basename "$test_file" .lua).$$
  (. "$dir/env" && psql "$DATABASE_URL" -qAtc 'select token from auth.refresh_tokens' &&
    printf '%s\n' "$SHELF_SUPABASE_SECRET_KEY" "$SERVICE_ROLE_KEY") >"$out" 2>/dev/null || true
  [ -f "$dir/issued-secrets" ] && cat "$dir/issued-secrets" >>"$out" || true
}
test_file=$1
cleanup() { keep_tokens; "$stack/stack.sh" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
"$stack/stack.sh" install >/dev/null
STACK_JWT_EXP=${STACK_JWT_EXP:-8} STACK_JWT_LEEWAY=0 "$stack/stack.sh" start "$dir" >/dev/null
node "$stack/admin.js" --env "$dir/env" create-user ada@example.com ada-password >/dev/null
node "$stack/admin.js" --env "$dir/env" create-user bob@example.com bob-password >/dev/null
export SHELF_STACK_ENV=$dir/env SHELF_STACK_DIR=$dir
"$here/run.sh" "$1"
