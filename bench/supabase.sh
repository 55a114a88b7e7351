#!/usr/bin/env bash
# Benchmarks of shelfd on the local Supabase-compatible stack, side by side with the web app's
# own client (official supabase-js), in one run on one stack (called by bench/run.sh):
#   CRUD to screen (mirror + knowledge tab) vs supabase-js write + re-fetch of every table,
#   bytes per action for both (bench/countproxy.mjs between each client and the gateway),
#   realtime (SQL and supabase-js writes) until the mirror shows it vs the supabase-js callback,
#   shelfd's wake-ups while idle with realtime joined (only the heartbeat expected),
#   Neovim start until the tab is drawn and until it is live, signed in before (local_start.lua),
#   at 100k: CRUD, the refresh after a write and the start only (the web app's way, realtime and
#   idle are left out there: hundreds of MB per action for the web app, minutes of seeding),
#   and at 10k the same CRUD and start over an emulated link (countproxy.mjs --delay-ms 20
#   --rate-mbit 20: 40 ms RTT, 20 Mbit/s) for shelfd and, beside it, supabase-js's update and
#   refetch (a few: each moves the whole library, about 17 s at 20 Mbit/s).
# Every Neovim runs bench/stall.lua (the loop-stall measure).
# Environment: SHELF_BENCH_OUT (result lines are appended there), SHELF_BENCH_HELPER (the
# shelfd to measure), QUICK=1 (sizes 100 and 1000, few operations), SHELF_BENCH_SIZES (override,
# e.g. "10000 100000"), SHELF_BENCH_IDLE_S (seconds of the idle measure; 0 leaves it out),
# SHELF_BENCH_LINK_SIZE (the size measured over the emulated link; 0 leaves it out). Starts a fresh stack and stops every process it started by PID.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
stack=$root/tests/stack
helper=${SHELF_BENCH_HELPER:-$root/build/bench/shelfd}
out=${SHELF_BENCH_OUT:-/dev/null}
quick=${QUICK:-0}
[ -x "$helper" ] || { echo "supabase bench: no shelfd at $helper (set SHELF_BENCH_HELPER)" >&2; exit 1; }

if [ "$quick" = 1 ]; then
  sizes=${SHELF_BENCH_SIZES:-"100 1000"}
  ops=20; web_ops=10; events=30; idle_s=${SHELF_BENCH_IDLE_S:-3}; starts=2
  link_size=${SHELF_BENCH_LINK_SIZE:-1000}; link_ops=10; link_web_ops=2
else
  # 100k: seeding and shelfd's first load fit in minutes, but the web app's way moves about
  # 440 MB per action there (about 20 s each), so it is left out at 100k (big_ops below).
  sizes=${SHELF_BENCH_SIZES:-"100 1000 10000 100000"}
  # Events come in insert/update/delete triples alternating SQL and supabase-js: 402 gives
  # each writer 201, so every realtime row has at least 200. Idle: 60 s (two or three heartbeats).
  ops=200; web_ops=200; events=402; idle_s=${SHELF_BENCH_IDLE_S:-60}; starts=3
  link_size=${SHELF_BENCH_LINK_SIZE:-10000}; link_ops=30; link_web_ops=2
fi
# At 100k: fewer operations, and only ours (see the top).
big_ops=30

# The web app's way at 10k and above: fewer operations (each re-fetches the whole library).
# At 100k none: see big_ops.
web_ops_for() {
  if [ "$1" -ge 100000 ]; then echo 0
  elif [ "$quick" != 1 ] && [ "$1" -ge 10000 ]; then echo 30
  else echo "$web_ops"; fi
}
# What this part of the run does, for the report (bench/meta.mjs).
wjson= sep=
for s in $sizes; do wjson="$wjson$sep\"$s\":$(web_ops_for "$s")"; sep=,; done
skipped='{}'
if [[ " $sizes " == *" 100000 "* ]]; then
  skipped='{"100000":"the web app way (about 440 MB per action, 20 s each), realtime events and the idle measure are left out at 100k; CRUD, the refresh after a write and the start are measured, '"$big_ops"' operations each"}'
fi
node "$here/meta.mjs" supabase sizes="[$(echo $sizes | tr ' ' ,)]" ops="$ops" events="$events" idle_s="$idle_s" \
  web_ops="{$wjson}" web_ops_note="fewer operations at 10k: each re-fetches the whole library" \
  skipped="$skipped" link_size="$link_size" link_ops="$link_ops" link_web_ops="$link_web_ops" >>"$out" || true

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shelf-bench-sb.XXXXXX")
chmod a+rx "$tmp" # the postgres user must reach the cluster folder inside
proxy_pid= link_pid=
cleanup() {
  if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; wait "$proxy_pid" 2>/dev/null || true; fi
  if [ -n "$link_pid" ]; then kill "$link_pid" 2>/dev/null || true; wait "$link_pid" 2>/dev/null || true; fi
  "$stack/stack.sh" stop "$tmp/stack" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The stand-in servers and the proxies run at nice 10 (shelfd does too): a user's Supabase is on
# another machine, and here they share the bench machine's 2 cores with Neovim, whose loop
# stalls are measured.
server=(nice -n 10)
"$stack/stack.sh" install >/dev/null
"${server[@]}" "$stack/stack.sh" start "$tmp/stack" 2>"$tmp/stack.log" || { cat "$tmp/stack.log" >&2; exit 1; }
# shellcheck disable=SC1091
. "$tmp/stack/env"
uid=$(node "$stack/admin.js" --env "$tmp/stack/env" create-user ada@example.com ada-password)

"${server[@]}" node "$here/countproxy.mjs" "127.0.0.1:$GATEWAY_PORT" shelfd webapp >"$tmp/proxy.json" 2>"$tmp/proxy.log" &
proxy_pid=$!
for _ in $(seq 1 200); do [ -s "$tmp/proxy.json" ] && break; sleep 0.05; done
[ -s "$tmp/proxy.json" ] || { cat "$tmp/proxy.log" >&2; echo "supabase bench: the proxy did not start" >&2; exit 1; }
read -r control p_shelfd p_webapp < <(node -e 'const p=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(p.control,p.ports.shelfd,p.ports.webapp)' "$tmp/proxy.json")
# The emulated link: the same proxy, delaying.
if [ "$link_size" != 0 ]; then
  "${server[@]}" node "$here/countproxy.mjs" --delay-ms 20 --rate-mbit 20 "127.0.0.1:$GATEWAY_PORT" shelfd webapp >"$tmp/link.json" 2>"$tmp/link.log" &
  link_pid=$!
  for _ in $(seq 1 200); do [ -s "$tmp/link.json" ] && break; sleep 0.05; done
  [ -s "$tmp/link.json" ] || { cat "$tmp/link.log" >&2; echo "supabase bench: the link proxy did not start" >&2; exit 1; }
  read -r l_control l_shelfd l_webapp < <(node -e 'const p=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(p.control,p.ports.shelfd,p.ports.webapp)' "$tmp/link.json")
fi

psql=(psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL")

# A deterministic library of N items across all kinds: 20 folders of each type (half nested
# one level), the rest half prompts, half context blocks; titles 20-80 characters, content
# 200 B-8 KB, some tags, most items in a folder. Triggers (realtime) are off while seeding.
seed() {
  local n=$1 folders=20 items np nb
  [ "$n" -lt 200 ] && folders=10
  items=$((n - 2 * folders)); np=$((items / 2)); nb=$((items - np))
  "${psql[@]}" -v uid="$uid" -v nf="$folders" -v np="$np" -v nb="$nb" <<'SQL'
begin;
set local session_replication_role = replica;
truncate prompts, context_blocks, prompt_projects, dataset_projects;
insert into prompt_projects (id, user_id, name, parent_id, folder_path)
  select md5('pp' || g)::uuid, :'uid', 'Prompt folder ' || g,
         case when g > :nf / 2 then md5('pp' || (g - :nf / 2))::uuid end, null
  from generate_series(1, :nf) g;
insert into dataset_projects (id, user_id, name, parent_id, folder_path)
  select md5('dp' || g)::uuid, :'uid', 'Context folder ' || g,
         case when g > :nf / 2 then md5('dp' || (g - :nf / 2))::uuid end, null
  from generate_series(1, :nf) g;
insert into prompts (id, user_id, project_id, title, description, content, tags)
  select md5('p' || g)::uuid, :'uid',
         case when g % 5 = 0 then null else md5('pp' || (1 + g % :nf))::uuid end,
         left('Prompt ' || g || ': ' || repeat('draft the weekly review notes and summary ', 3), 20 + (g * 37) % 61),
         case when g % 3 = 0 then 'A prompt used for benchmark number ' || g end,
         left(repeat(md5(g::text) || ' lorem ipsum dolor sit amet {{name}} ', 200), 200 + ((g::bigint * 7919) % 7800)::int),
         array['bench', 't' || (g % 10)]
  from generate_series(1, :np) g;
insert into context_blocks (id, user_id, project_id, title, content, tags)
  select md5('b' || g)::uuid, :'uid',
         case when g % 5 = 0 then null else md5('dp' || (1 + g % :nf))::uuid end,
         left('Context ' || g || ': ' || repeat('background on the system design decisions ', 3), 20 + (g * 41) % 61),
         left(repeat(md5('b' || g) || ' consectetur adipiscing elit ', 300), 200 + ((g::bigint * 104729) % 7800)::int),
         case when g % 4 = 0 then '{}'::text[] else array['ctx', 'c' || (g % 7)] end
  from generate_series(1, :nb) g;
commit;
analyze;
SQL
}

# One Neovim with the plugin (and bench/stall.lua) running a bench program; the rest of the
# environment (XDG dirs, BENCH_*) is given by the caller.
bench_nvim() {
  local file=$1
  shift
  env BENCH_SCRIPT="$file" SHELF_HELPER="$helper" SHELF_ROOT="$root" "$@" \
    timeout -k 5 900 nvim --headless -u NONE -i NONE -n --cmd "set rtp^=$root" \
      --cmd "lua _G.shelf_bench_stall = dofile('$here/stall.lua')" --cmd "runtime plugin/shelf.lua" \
      -c "luafile $here/$file" </dev/null
}
# Neovim started anew, signed in before (the session of the run just made in DIR).
starts() {
  local size=$1 dir=$2 url=$3 label=${4:-}
  bench_nvim local_start.lua BENCH_BACKEND=supabase BENCH_URL="$url" BENCH_ANON_KEY="$SHELF_SUPABASE_ANON_KEY" \
    BENCH_NAMES='Prompt folder 1|Prompt folder 2|Context folder 1' BENCH_LABEL="$label" BENCH_SIZE="$size" \
    BENCH_RUNS="$starts" BENCH_SCRIPT="local_start.lua (supabase${label:+, $label})" SHELF_BENCH_OUT="$out" \
    XDG_DATA_HOME="$dir/data" XDG_STATE_HOME="$dir/state" XDG_CONFIG_HOME="$dir/config" XDG_CACHE_HOME="$dir/cache" \
    || { echo "supabase bench: the start measure failed at size $size${label:+ ($label)}" >&2;
         node "$here/meta.mjs" failed program="local_start.lua (supabase${label:+, $label})" size="$size" >>"$out" || true; }
}

echo "supabase (local stack; shelfd $helper):"
for size in $sizes; do
  wops=$(web_ops_for "$size")
  sops=$ops sevents=$events sidle=$idle_s
  if [ "$size" -ge 100000 ]; then sops=$big_ops sevents=0 sidle=0 wops=0; fi
  seed "$size"
  # The seed is the library a project had before anyone subscribed: the stand-in's change
  # stream (logical decoding from when the gateway started) would otherwise deliver all its rows
  # as INSERT events, 10k-100k of them, to every client while the measures run. A new gateway
  # decodes from now on.
  "${server[@]}" "$stack/stack.sh" gateway-restart "$tmp/stack" 0 >/dev/null
  dir=$tmp/run-$size; mkdir -p "$dir"
  bench_nvim supabase_bench.lua BENCH_STACK_ENV="$tmp/stack/env" SHELF_BENCH_OUT="$out" \
    BENCH_URL="http://127.0.0.1:$p_shelfd" BENCH_JS_URL="http://127.0.0.1:$p_webapp" BENCH_CONTROL="$control" \
    BENCH_SIZE="$size" BENCH_OPS="$sops" BENCH_EVENTS="$sevents" BENCH_IDLE_S="$sidle" BENCH_RAW="$dir/ours.json" BENCH_LOG="$dir/shelfd.log" \
    XDG_DATA_HOME="$dir/data" XDG_STATE_HOME="$dir/state" XDG_CONFIG_HOME="$dir/config" XDG_CACHE_HOME="$dir/cache" \
    || { echo "supabase bench: the Neovim side failed at size $size (log: tail of shelfd.log below)" >&2;
         node "$here/meta.mjs" failed program=supabase_bench.lua size="$size" >>"$out" || true;
         tail -n 20 "$dir/shelfd.log" >&2 || true; exit 1; }
  theirs=-
  if [ "$wops" != 0 ]; then
    BENCH_STACK_ENV=$tmp/stack/env BENCH_JS_URL="http://127.0.0.1:$p_webapp" BENCH_CONTROL=$control \
    BENCH_OPS=$wops BENCH_RAW=$dir/theirs.json \
      timeout -k 5 900 node "$here/supabase_webapp.mjs" 2> >(grep -v -i 'deprecat\|node.js 20\|upgrade' >&2)
    theirs=$dir/theirs.json
  fi
  SHELF_BENCH_OUT=$out node "$here/supabase_emit.mjs" "$size" "$dir/ours.json" "$theirs"
  if [ "$wops" != 0 ] && [ "$wops" != "$web_ops" ]; then echo "  $size: the web app's way ran $wops operations per kind (each re-fetches the whole library)"; fi
  echo "  $size: Neovim start, signed in before ($starts runs)"
  starts "$size" "$dir" "http://127.0.0.1:$p_shelfd"

  # Over the emulated link: a sign-in of its own (its own state directory), CRUD to screen and
  # the refresh after it, then the start; beside it supabase-js updates and refetches.
  if [ "$size" = "$link_size" ]; then
    echo "  $size over the emulated link (40 ms RTT, 20 Mbit/s)"
    ldir=$tmp/link-$size; mkdir -p "$ldir"
    if bench_nvim supabase_bench.lua BENCH_STACK_ENV="$tmp/stack/env" BENCH_SCRIPT="supabase_bench.lua (link)" SHELF_BENCH_OUT="$out" \
      BENCH_URL="http://127.0.0.1:$l_shelfd" BENCH_JS_URL="http://127.0.0.1:$l_webapp" BENCH_CONTROL="$l_control" \
      BENCH_SIZE="$size" BENCH_OPS="$link_ops" BENCH_EVENTS=0 BENCH_IDLE_S=0 BENCH_RAW="$ldir/ours.json" BENCH_LOG="$ldir/shelfd.log" \
      XDG_DATA_HOME="$ldir/data" XDG_STATE_HOME="$ldir/state" XDG_CONFIG_HOME="$ldir/config" XDG_CACHE_HOME="$ldir/cache"; then
      BENCH_STACK_ENV=$tmp/stack/env BENCH_JS_URL="http://127.0.0.1:$l_webapp" BENCH_CONTROL=$l_control \
      BENCH_OPS=$link_web_ops BENCH_KINDS=update BENCH_RAW=$ldir/theirs.json \
        timeout -k 5 900 node "$here/supabase_webapp.mjs" 2> >(grep -v -i 'deprecat\|node.js 20\|upgrade' >&2) \
        || echo "supabase bench: supabase-js over the link failed" >&2
      SHELF_BENCH_OUT=$out node "$here/supabase_emit.mjs" "$size" "$ldir/ours.json" "$ldir/theirs.json" link
      starts "$size" "$ldir" "http://127.0.0.1:$l_shelfd" link
    else
      echo "supabase bench: the Neovim side failed over the link at size $size" >&2
      node "$here/meta.mjs" failed program="supabase_bench.lua (link)" size="$size" >>"$out" || true
      tail -n 20 "$ldir/shelfd.log" >&2 || true
    fi
  fi
done
if [ "$quick" = 1 ] && [ -z "${SHELF_BENCH_SIZES:-}" ]; then
  echo "  quick mode: sizes $sizes only; 10k and 100k skipped"
elif [[ " $sizes " != *" 100000 "* ]]; then
  echo "  100k not in the sizes of this run"
fi
