#!/usr/bin/env bash
# Proves secrets.sh can fail: it must pass on clean logs and fail on each
# planted secret (a password, a JWT, a collected refresh token or sign-in code,
# a secret API key).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
d=$(mktemp -d "${TMPDIR:-/tmp}/shelf-secrets.XXXXXX")
trap 'rm -rf "$d"' EXIT
clean() {
  rm -rf "$d/keep"
  mkdir -p "$d/keep/test_x.1/cache/shelf" "$d/keep/.tokens"
  printf '2026-01-01 shelfd info: shelfd ready (http://127.0.0.1:5000)\nsigned in as ada@example.com\n' \
    >"$d/keep/test_x.1/cache/shelf/shelfd.log"
  printf 'backend supabase\nuser ada@example.com\n' >"$d/keep/test_x.1/messages.txt"
  # A token kept for the search is not itself a leak.
  printf 'Zq9rT4mW2xK7vB1n\n' >"$d/keep/.tokens/test_x.1"
}
b64() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }
jwt="$(b64 '{"alg":"HS256","typ":"JWT"}').$(b64 '{"sub":"someone","role":"authenticated"}').c2lnbmF0dXJlLWJ5dGVz"
fails=0
clean
"$here/secrets.sh" "$d/keep" >/dev/null || { echo "selftest: clean logs were reported" >&2; fails=1; }
for plant in "login failed for ada-password" "Authorization: Bearer $jwt" "refresh Zq9rT4mW2xK7vB1n used" \
             "crash: bob-password" "apikey sb_secret_jKaB5CnbtwP6Sf2qVHbQrN_TydLvPxW" \
             "callback /auth/callback?state=x&code=Zq9rT4mW2xK7vB1n"; do
  clean
  printf '%s\n' "$plant" >>"$d/keep/test_x.1/cache/shelf/shelfd.log"
  if "$here/secrets.sh" "$d/keep" >/dev/null 2>&1; then
    echo "selftest: a planted secret was NOT found (plant #$((++fails)))" >&2
  fi
done
clean
printf 'x %s\n' "$jwt" >"$d/extra.log"
if "$here/secrets.sh" "$d/keep" "$d/extra.log" >/dev/null 2>&1; then
  echo "selftest: a JWT in an extra file was NOT found" >&2
  fails=$((fails + 1))
fi
clean
rm -rf "$d/keep"/*
if "$here/secrets.sh" "$d/keep" >/dev/null 2>&1; then
  echo "selftest: an empty folder passed" >&2
  fails=$((fails + 1))
fi
[ $fails = 0 ] && echo "secrets selftest: clean passes, 7 planted secrets and an empty folder fail"
exit $fails
