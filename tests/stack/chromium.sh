#!/usr/bin/env bash
# Opens URL in a headless Chromium, as a person's browser would, for the sign-in tests:
#   chromium.sh PROFILE_DIR URL [more chromium flags]
# PROFILE_DIR must be a new empty folder (the caller removes it); Chromium replaces this
# script (exec), so the caller's PID is Chromium's. It follows redirects and the stand-in
# provider's meta refresh by itself, and runs until stopped (or add --dump-dom with
# --virtual-time-budget=MS to print the page it ended on and exit).
set -euo pipefail
profile=${1:?usage: chromium.sh PROFILE_DIR URL [flags]}
url=${2:?usage: chromium.sh PROFILE_DIR URL [flags]}
shift 2
command -v chromium >/dev/null || { echo "chromium.sh: chromium is not installed (scripts/deps.sh test)" >&2; exit 127; }
# No sandbox (tests may run as root), no GPU, no QUIC, and nothing that reaches the network on
# its own (first-run pages, component updates, sync, background requests).
exec chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" "$@" "$url"
