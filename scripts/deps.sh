#!/usr/bin/env bash
# Installs what shelf.nvim needs that this Debian machine does not have yet,
# saying what it installs. Usage: scripts/deps.sh build|run|test|bench
set -euo pipefail

want=(cmake make gcc pkg-config libuv1-dev libmsgpack-dev libcjson-dev libsqlite3-dev
  libcurl4-openssl-dev libwebsockets-dev libwebsockets-evlib-uv libssl-dev)
case "${1:-build}" in
  build) ;;
  run) want+=(neovim) ;;
  test | bench)
    want+=(neovim sqlite3 tmux valgrind openssl postgresql-15 postgresql-15-wal2json nodejs clang libclang-rt-14-dev)
    # What the relocatable Neovim 0.10/0.11 builds the tests also run on link to.
    [ "$1" = test ] && want+=(libluajit-5.1-2 lua-luv lua-lpeg libunibilium4 libuv1 libmsgpackc2)
    [ "$1" = bench ] && want+=(gnuplot-nox procps) ;;
  *) echo "usage: $0 build|run|test|bench" >&2; exit 2 ;;
esac

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "shelf: installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "shelf: need root (or sudo) to install: ${missing[*]}" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# The tests' stand-in servers need their npm packages before any test starts:
# not only the stack tests use them, and parallel tests must not race to install.
case "${1:-build}" in
  test | bench) "$(dirname "$0")/../tests/stack/stack.sh" install ;;
esac
