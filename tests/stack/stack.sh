#!/usr/bin/env bash
# The local Supabase-compatible test stack: a throwaway PostgreSQL 15 cluster plus the Node
# gateway (PostgREST + Auth + Realtime subsets), all on 127.0.0.1, ports chosen at run time.
#
#   stack.sh install            install what is missing (Debian packages, npm ci), saying what
#   stack.sh start DIR          create DIR (if needed), start everything, write DIR/env, return
#                               once PostgreSQL and the gateway answer
#   stack.sh stop DIR           stop the gateway and PostgreSQL by their PIDs; removes nothing
#   stack.sh gateway-stop DIR [KILL]   stop only the gateway (SIGTERM, or SIGKILL with KILL)
#   stack.sh gateway-start DIR  start the gateway again on the same port (rewrites DIR/env)
#   stack.sh gateway-restart DIR SECONDS [KILL]   stop the gateway, wait, start it again
#   stack.sh pg-restart DIR [SECONDS]   stop PostgreSQL (fast: sessions are cut), keep it down
#                               SECONDS (default 0), start it again on the same port
#   stack.sh pg-stop DIR        stop PostgreSQL (fast) and return once it is down
#   stack.sh pg-start DIR       start it again on the same port
#   stack.sh status DIR         say what runs
#
# DIR/env is shell-sourceable: SHELF_SUPABASE_URL SHELF_SUPABASE_ANON_KEY SERVICE_ROLE_KEY
# SHELF_SUPABASE_PUBLISHABLE_KEY SHELF_SUPABASE_SECRET_KEY (the new-style keys) JWT_SECRET PGHOST
# PGPORT PGUSER DATABASE_URL STACK_ADMIN_SECRET GATEWAY_PID GATEWAY_PORT PG_DATA STACK_DIR
# STACK_SITE_URL. Settings read from the environment at start: STACK_JWT_EXP (access token
# lifetime, s, default 3600), STACK_JWT_LEEWAY (PostgREST's clock skew, s, default 30),
# STACK_REFRESH_REUSE_INTERVAL (s, default 10), STACK_PGRST_VERSION (13 or 12), STACK_RT_POLL_MS,
# STACK_SITE_URL (Auth's Site URL, default http://localhost:<gateway port>/site/, the web app
# stand-in), STACK_REDIRECT_URLS (Auth's redirect allow-list, comma-separated globs).
# DIR/issued-secrets lists every secret of a sign-in the gateway handed out or received (auth
# codes, code verifiers, email tokens and codes), for the secrets check.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
JWT_SECRET_DEFAULT="super-secret-jwt-token-with-at-least-32-characters-long"

say() { echo "stack: $*" >&2; }
die() { echo "stack: error: $*" >&2; exit 1; }

# Run a PostgreSQL server binary: as the postgres user when we are root (initdb and postgres
# refuse to run as root), as ourselves otherwise.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

cmd_install() {
  # One install at a time: parallel tests may all find the packages missing.
  exec 9>"$HERE/.install.lock"
  flock 9
  local want=(postgresql-15 postgresql-15-wal2json nodejs npm) missing=() pkg
  for pkg in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  # nodejs/npm may come from elsewhere than Debian; only their commands matter.
  if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
    local m=(); for pkg in "${missing[@]}"; do [ -n "$pkg" ] && m+=("$pkg"); done; missing=("${m[@]+"${m[@]}"}")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
      sudo=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq </dev/null
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
  fi
  if [ ! -d "$HERE/node_modules/pg" ] || [ ! -d "$HERE/node_modules/ws" ] || [ ! -d "$HERE/node_modules/@supabase/supabase-js" ] \
     || [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
    say "installing npm packages (npm ci in tests/stack)"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error </dev/null >/dev/null 2>"$HERE/.npm-ci.log") \
      || { cat "$HERE/.npm-ci.log" >&2; die "npm ci failed"; }
    rm -f "$HERE/.npm-ci.log"
  fi
}

# Writes DIR/env from the variables set by start / gateway-start.
write_env() {
  local dir=$1 tmp
  tmp="$dir/env.tmp"
  cat >"$tmp" <<ENV
# written by tests/stack/stack.sh; source it
export STACK_DIR='$dir'
export SHELF_SUPABASE_URL='http://127.0.0.1:$GATEWAY_PORT'
export SHELF_SUPABASE_ANON_KEY='$ANON_KEY'
export SERVICE_ROLE_KEY='$SERVICE_ROLE_KEY'
export SHELF_SUPABASE_PUBLISHABLE_KEY='$PUBLISHABLE_KEY'
export SHELF_SUPABASE_SECRET_KEY='$SECRET_KEY'
export STACK_SITE_URL='${STACK_SITE_URL:-http://localhost:$GATEWAY_PORT/site/}'
export JWT_SECRET='$JWT_SECRET'
export STACK_ADMIN_SECRET='$STACK_ADMIN_SECRET'
export PGHOST='127.0.0.1'
export PGPORT='$PGPORT'
export PGUSER='postgres'
export PGDATABASE='postgres'
export DATABASE_URL='postgresql://postgres@127.0.0.1:$PGPORT/postgres'
export PG_DATA='$dir/pgdata'
export GATEWAY_PORT='$GATEWAY_PORT'
export GATEWAY_PID='$GATEWAY_PID'
ENV
  # Gateway settings given at start are kept, so gateway-start restarts it the same way.
  local v
  for v in STACK_JWT_EXP STACK_JWT_LEEWAY STACK_REFRESH_REUSE_INTERVAL STACK_PGRST_VERSION STACK_RT_POLL_MS STACK_WS_IDLE_MS STACK_DEBUG STACK_REDIRECT_URLS; do
    if [ -n "${!v:-}" ]; then echo "export $v='${!v}'" >>"$tmp"; fi
  done
  mv "$tmp" "$dir/env"
}

start_gateway() {
  local dir=$1
  [ -f "$HERE/node_modules/ws/package.json" ] || die "npm packages missing; run: $0 install"
  # setsid: the gateway outlives this script and gets no terminal signals; stdin from /dev/null.
  STACK_PORT="$GATEWAY_PORT" STACK_PGHOST=127.0.0.1 STACK_PGPORT="$PGPORT" \
  STACK_JWT_SECRET="$JWT_SECRET" STACK_ADMIN_SECRET="$STACK_ADMIN_SECRET" \
  STACK_SITE_URL="${STACK_SITE_URL:-}" STACK_REDIRECT_URLS="${STACK_REDIRECT_URLS:-}" \
  STACK_ISSUED_FILE="$dir/issued-secrets" \
    setsid node "$HERE/gateway.js" </dev/null >>"$dir/gateway.log" 2>&1 &
  GATEWAY_PID=$!
  echo "$GATEWAY_PID" >"$dir/gateway.pid"
  local i
  for i in $(seq 1 200); do
    if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
      tail -n 20 "$dir/gateway.log" >&2
      die "the gateway exited during start (log: $dir/gateway.log)"
    fi
    if node -e 'require("http").get(process.argv[1],r=>process.exit(r.statusCode===200?0:1)).on("error",()=>process.exit(1))' \
        "http://127.0.0.1:$GATEWAY_PORT/auth/v1/health" 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  die "the gateway did not answer within 10 s (log: $dir/gateway.log)"
}

pg_start() {
  local dir=$1
  as_pg "$PGBIN/pg_ctl" -D "$dir/pgdata" -l "$dir/postgres.log" -w -t 30 -o \
    "-c listen_addresses=127.0.0.1 -p $PGPORT -k $dir/pgsock -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20 -c fsync=off -c full_page_writes=off -c synchronous_commit=on -c timezone=UTC -c log_timezone=UTC" \
    start >/dev/null || { tail -n 20 "$dir/postgres.log" >&2; die "postgres did not start"; }
}

cmd_start() {
  local dir=${1:?usage: stack.sh start DIR}
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [ -x "$PGBIN/initdb" ] || die "PostgreSQL 15 is not installed; run: $0 install"
  [ -f "$PGBIN/../lib/wal2json.so" ] || [ -f "/usr/lib/postgresql/15/lib/wal2json.so" ] || die "wal2json is not installed; run: $0 install"
  [ ! -f "$dir/pgdata/postmaster.pid" ] || die "a cluster seems to run in $dir already (stop it first)"

  JWT_SECRET="${JWT_SECRET:-$JWT_SECRET_DEFAULT}"
  STACK_ADMIN_SECRET="$(node -e 'console.log(require("crypto").randomBytes(16).toString("hex"))')"
  { read -r ANON_KEY; read -r SERVICE_ROLE_KEY; read -r PUBLISHABLE_KEY; read -r SECRET_KEY; } < <(node "$HERE/jwt.js" keys "$JWT_SECRET")

  # The postgres user must reach DIR (a mktemp -d folder is 0700) and own what it writes.
  chmod a+rx "$dir"
  mkdir -p "$dir/pgdata" "$dir/pgsock"
  : >"$dir/postgres.log"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir/pgdata" "$dir/pgsock" "$dir/postgres.log"; fi
  chmod 700 "$dir/pgdata"

  as_pg "$PGBIN/initdb" -D "$dir/pgdata" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }

  PGPORT="$(free_port)"
  # wal_level=logical for the Realtime change stream (wal2json); synchronous_commit stays on,
  # because logical decoding only sees flushed WAL (off would delay events by ~200 ms).
  # fsync/full_page_writes off: a test cluster need not survive a power cut.
  pg_start "$dir"

  local psql=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres)
  "${psql[@]}" -f "$HERE/supabase-base.sql" >/dev/null || die "loading supabase-base.sql failed"
  "${psql[@]}" -f "$ROOT/sql/schema.sql" >/dev/null || die "loading sql/schema.sql failed"

  GATEWAY_PORT="$(free_port)"
  start_gateway "$dir"
  write_env "$dir"
  say "up: gateway http://127.0.0.1:$GATEWAY_PORT (pid $GATEWAY_PID), postgres 127.0.0.1:$PGPORT; env in $dir/env"
}

load_env() {
  local dir=$1
  [ -f "$dir/env" ] || die "no $dir/env (was the stack started there?)"
  # shellcheck disable=SC1091
  . "$dir/env"
  ANON_KEY=$SHELF_SUPABASE_ANON_KEY
  PUBLISHABLE_KEY=$SHELF_SUPABASE_PUBLISHABLE_KEY
  SECRET_KEY=$SHELF_SUPABASE_SECRET_KEY
}

stop_pid() { # PID SIGNAL: signal a process and wait up to 5 s for it to go
  local pid=$1 sig=${2:-TERM} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

cmd_gateway_stop() {
  local dir=${1:?usage: stack.sh gateway-stop DIR [KILL]} sig=TERM
  [ "${2:-}" = KILL ] && sig=KILL
  dir="$(cd "$dir" && pwd)"
  [ -f "$dir/gateway.pid" ] && stop_pid "$(cat "$dir/gateway.pid")" "$sig"
  rm -f "$dir/gateway.pid"
}

cmd_gateway_start() {
  local dir=${1:?usage: stack.sh gateway-start DIR}
  dir="$(cd "$dir" && pwd)"
  load_env "$dir"
  if [ -f "$dir/gateway.pid" ] && kill -0 "$(cat "$dir/gateway.pid")" 2>/dev/null; then
    die "the gateway runs already (pid $(cat "$dir/gateway.pid"))"
  fi
  start_gateway "$dir"
  write_env "$dir"
  say "gateway up again on port $GATEWAY_PORT (pid $GATEWAY_PID)"
}

cmd_gateway_restart() {
  local dir=${1:?usage: stack.sh gateway-restart DIR SECONDS [KILL]} secs=${2:-1}
  cmd_gateway_stop "$dir" "${3:-}"
  sleep "$secs"
  cmd_gateway_start "$dir"
}

cmd_pg_restart() {
  local dir=${1:?usage: stack.sh pg-restart DIR [SECONDS]} secs=${2:-0}
  cmd_pg_stop "$dir"
  sleep "$secs"
  cmd_pg_start "$dir"
}

cmd_pg_stop() {
  local dir=${1:?usage: stack.sh pg-stop DIR}
  dir="$(cd "$dir" && pwd)"
  load_env "$dir"
  as_pg "$PGBIN/pg_ctl" -D "$dir/pgdata" -m fast -w -t 30 stop >/dev/null || die "postgres did not stop"
}

cmd_pg_start() {
  local dir=${1:?usage: stack.sh pg-start DIR}
  dir="$(cd "$dir" && pwd)"
  load_env "$dir"
  pg_start "$dir"
  say "postgres up again on port $PGPORT"
}

cmd_stop() {
  local dir=${1:?usage: stack.sh stop DIR}
  [ -d "$dir" ] || die "no such folder: $dir"
  dir="$(cd "$dir" && pwd)"
  cmd_gateway_stop "$dir"
  if [ -f "$dir/pgdata/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$dir/pgdata" -m fast -w -t 30 stop >/dev/null 2>&1 \
      || stop_pid "$(head -n1 "$dir/pgdata/postmaster.pid")" TERM
  fi
  say "stopped ($dir)"
}

cmd_status() {
  local dir=${1:?usage: stack.sh status DIR}
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/gateway.pid" ] && kill -0 "$(cat "$dir/gateway.pid")" 2>/dev/null; then
    echo "gateway: running (pid $(cat "$dir/gateway.pid"))"
  else
    echo "gateway: stopped"
  fi
  if [ -f "$dir/pgdata/postmaster.pid" ] && kill -0 "$(head -n1 "$dir/pgdata/postmaster.pid")" 2>/dev/null; then
    echo "postgres: running (pid $(head -n1 "$dir/pgdata/postmaster.pid"))"
  else
    echo "postgres: stopped"
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  gateway-stop) shift; cmd_gateway_stop "$@" ;;
  gateway-start) shift; cmd_gateway_start "$@" ;;
  gateway-restart) shift; cmd_gateway_restart "$@" ;;
  pg-restart) shift; cmd_pg_restart "$@" ;;
  pg-stop) shift; cmd_pg_stop "$@" ;;
  pg-start) shift; cmd_pg_start "$@" ;;
  status) shift; cmd_status "$@" ;;
  *) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
