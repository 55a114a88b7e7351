#!/usr/bin/env bash
# `make run`: Neovim with the plugin from this checkout, on a demo library kept
# in build/demo (a normal setup() never seeds anything); $SHELF_NVIM names
# another Neovim (`make run NVIM=...`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/build/demo"
exec "${SHELF_NVIM:-nvim}" --cmd "set rtp^=$root" --cmd "let g:shelf_demo_dir = '$root/build/demo'" \
  -c "luafile $root/scripts/demo.lua"
