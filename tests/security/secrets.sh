#!/usr/bin/env bash
# Fails if a secret shows up in what the test suite kept: shelfd's logs, the
# editor's messages and `:Shelf status` (tests/nvim/run.sh copies them into
# $SHELF_LOG_KEEP), and ctest's own output of this run.
# Usage: secrets.sh DIR [MORE_FILES...]
# Looked for: the test stack's passwords, anything shaped like a JWT (three
# base64url parts, as access tokens and anon keys are) or like a secret API key
# (sb_secret_...), and the exact tokens the runners collected in DIR/.tokens/:
# refresh tokens of the sessions, and every secret of a sign-in the stack handed
# out or received (auth codes, PKCE code verifiers, email link tokens) and the
# project's secret keys (tests/nvim/run_stack.sh).
set -euo pipefail
dir=$1
shift
[ -d "$dir" ] || { echo "secrets: no folder $dir: run the end-to-end tests first" >&2; exit 1; }
mapfile -d '' files < <(find "$dir" -path "$dir/.tokens" -prune -o -type f -print0)
for f in "$@"; do [ -f "$f" ] && files+=("$f"); done
if [ ${#files[@]} -eq 0 ]; then
  echo "secrets: nothing kept in $dir: run the end-to-end tests first" >&2
  exit 1
fi
patterns=$(mktemp)
trap 'rm -f "$patterns"' EXIT
printf '%s\n' ada-password bob-password >"$patterns"
if [ -d "$dir/.tokens" ]; then
  # Only tokens long enough to be secrets; each is matched as a fixed string.
  find "$dir/.tokens" -type f -exec cat {} + | awk 'length($0) >= 12' | sort -u >>"$patterns"
fi
bad=0
# Only file:line is printed: the secret itself must not reach this output.
if grep -a -n -o -F -f "$patterns" "${files[@]}" | cut -d: -f1,2 | sort -u | grep .; then
  echo "secrets: a password or a session token was found above" >&2
  bad=1
fi
# A JWT: base64url of '{"' starts every header with eyJ.
jwt='eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}'
if grep -a -n -E -o "$jwt" "${files[@]}" | cut -d: -f1,2 | sort -u | head -20 | grep .; then
  echo "secrets: a JWT-shaped token was found above" >&2
  bad=1
fi
# A new-style secret API key: it bypasses row-level security.
if grep -a -n -E -o 'sb_secret_[A-Za-z0-9_]{8,}' "${files[@]}" | cut -d: -f1,2 | sort -u | head -20 | grep .; then
  echo "secrets: a secret API key (sb_secret_...) was found above" >&2
  bad=1
fi
echo "secrets: ${#files[@]} files checked, $(wc -l <"$patterns") known secrets and the JWT and secret key shapes: $([ $bad = 0 ] && echo clean || echo LEAKED)"
exit $bad
