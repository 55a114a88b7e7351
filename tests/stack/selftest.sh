#!/usr/bin/env bash
# Runs the stack's own test with the official supabase-js client: installs what is missing
# (Debian packages, npm ci), then `node --test selftest.mjs` (which starts and stops a stack).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$HERE/stack.sh" install
cd "$HERE"
exec node --test --test-force-exit selftest.mjs </dev/null
