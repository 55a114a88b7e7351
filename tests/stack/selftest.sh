#!/usr/bin/env bash
# Runs the stack's own test with the official supabase-js client: installs what is missing
# (Debian packages, npm ci), then `node --test` on selftest.mjs (REST, Auth with a password,
# Realtime) and selftest-auth.mjs (OAuth with PKCE, email link and code, the new API keys);
# each starts and stops its own stack.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$HERE/stack.sh" install
cd "$HERE"
exec node --test --test-force-exit selftest.mjs selftest-auth.mjs </dev/null
