#!/usr/bin/env bash
# The help builds and `:help shelf` works after a plain `make`, as after a
# native-package install: runs the Makefile's doc/tags rule on a copy of the
# Makefile and doc/ (the rule fails on duplicate or broken tags), then asks a
# Neovim with only that copy on 'runtimepath' for the help.
# Usage: tests/doc/helptags.sh ROOT NVIM
set -euo pipefail
root=$1 nvim=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/shelf-helptags.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cp "$root/Makefile" "$dir/" && cp -r "$root/doc" "$dir/" && rm -f "$dir/doc/tags"
# The rule runs the nvim on PATH, as a user's `make` does.
PATH=$(dirname "$nvim"):$PATH make -s -C "$dir" doc/tags
[ -s "$dir/doc/tags" ] || { echo "make doc/tags built no doc/tags" >&2; exit 1; }
"$nvim" --headless -u NONE -i NONE -n --cmd "set rtp^=$dir" \
  -c 'try | help shelf | catch | echo v:exception | cquit 1 | endtry' \
  -c 'if &buftype !=# "help" || expand("%:t") !=# "shelf.txt" | cquit 1 | endif' -c 'qa!'
echo "make doc/tags: :help shelf opens doc/shelf.txt"
