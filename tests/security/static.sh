#!/usr/bin/env bash
# Static checks of the source: nothing is handed to a shell, and SQL is only
# ever formatted with quoted identifiers (values are bound with ?).
# Usage: static.sh ROOT          check the tree at ROOT
#        static.sh --selftest    plant each kind of violation in a copy and
#                                check that every one is caught
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

check() {
  local root=$1 bad=0 hits
  # 1. C: no shell, no other programs.
  if hits=$(grep -nE '(^|[^_[:alnum:]])(system|popen|execl|execlp|execle|execv|execvp|execvpe|fork|vfork|posix_spawnp?|wordexp)[[:space:]]*\(' \
      "$root"/csrc/*.c "$root"/csrc/*.h); then
    printf 'shell or process call in csrc:\n%s\n' "$hits"; bad=1
  fi
  # 2. Lua: no shell either. system() with a list runs the program itself,
  # without a shell.
  local luafiles=("$root"/lua/shelf/*.lua "$root"/lua/shelf/*/*.lua "$root"/plugin/*.lua)
  if hits=$(grep -nE 'os\.execute|io\.popen|vim\.fn\.system(list)?[[:space:]]*\([[:space:]]*[^{[:space:]]|termopen|uv\.spawn|loop\.spawn|vim\.system|(vim\.cmd|nvim_command|nvim_exec)[[:space:]]*\(?[[:space:]]*["'"'"'\[]+[[:space:]]*(silent!?[[:space:]]*)?(!|r(ead)?[[:space:]]*!|w(rite)?[[:space:]]*!)' \
      "${luafiles[@]}"); then
    printf 'shell call in Lua:\n%s\n' "$hits"; bad=1
  fi
  # jobstart with a string runs it through a shell: never. With an argv list
  # it runs the program itself: a list written out ({ ... }) is fine
  # anywhere; a list in a variable only in client.lua, which builds shelfd's
  # argv (args_for). Any other use (an alias, a variable) hides which it is.
  if hits=$(grep -nE 'jobstart[[:space:]]*([(,][[:space:]]*)?(["'"'"']|\[=*\[)' "${luafiles[@]}"); then
    printf 'jobstart with a string (that runs a shell):\n%s\n' "$hits"; bad=1
  fi
  if hits=$(perl -ne 'print "$ARGV:$.:$_" if /jobstart(?!\s*(?:[(,]\s*)?\{)/; close ARGV if eof' "${luafiles[@]}" |
      grep -v '/lua/shelf/client\.lua:'); then
    printf 'jobstart outside client.lua without an argv list written out:\n%s\n' "$hits"; bad=1
  fi
  # 3. SQL: a string literal holding SQL may format only quoted identifiers
  # ("%s" inside double quotes) and integers; never a value.
  local sqlfiles=("$root"/csrc/store_sqlite*.c)
  if hits=$(grep -nE '"([^"\\]|\\.)*(SELECT|INSERT|UPDATE|DELETE|PRAGMA|FROM|WHERE|VALUES|SET|REPLACE)([^"\\]|\\.)*"' "${sqlfiles[@]}" |
      grep -E '%[-0-9.]*[a-ce-z]' | grep -vE '^[^"]*"([^"%]|\\")*$' |
      perl -ne 'my $l = $_; $l =~ s/%%//g; $l =~ s/\\"%s\\"//g; $l =~ s/%[0-9]*d//g; $l =~ s/%[0-9]+\$s//g; print $_ if $l =~ /"([^"\\]|\\.)*(SELECT|INSERT|UPDATE|DELETE|PRAGMA|FROM|WHERE|VALUES|SET)([^"\\]|\\.)*%([^%]|$)/' | grep .); then
    printf 'SQL formatted with a value (use ? and sqlite3_bind_*):\n%s\n' "$hits"; bad=1
  fi
  if hits=$(grep -nE 'sqlite3_(v?s?n?mprintf)' "${sqlfiles[@]}"); then
    printf 'sqlite3_mprintf builds SQL from values (bind them instead):\n%s\n' "$hits"; bad=1
  fi
  # The SQL that is formatted takes identifiers only from constants.
  if hits=$(grep -nE 'util_printf\("(SELECT|INSERT|UPDATE|DELETE|PRAGMA)' "${sqlfiles[@]}" |
      grep -vE ', (name|store_default_table_name\(\(?[a-z_]+\)?[a-z_>.-]*\))\);?$' | grep -vE '"\s*$'); then
    printf 'formatted SQL with an argument that is not a table-name constant:\n%s\n' "$hits"; bad=1
  fi
  return $bad
}

if [ "${1:-}" != "--selftest" ]; then
  root=${1:-$here/../..}
  if check "$root"; then
    echo "static: no shell calls in csrc or lua/shelf; SQL formats only quoted identifiers"
    exit 0
  fi
  exit 1
fi

# --selftest: the real tree passes, and each planted violation fails.
root=$here/../..
check "$root" >/dev/null || { echo "selftest: the tree itself fails" >&2; exit 1; }
d=$(mktemp -d "${TMPDIR:-/tmp}/shelf-static.XXXXXX")
trap 'rm -rf "$d"' EXIT
fails=0
plant() { # FILE LINE
  rm -rf "$d/t" && mkdir -p "$d/t" && cp -r "$root/csrc" "$root/lua" "$root/plugin" "$d/t/"
  printf '%s\n' "$2" >>"$d/t/$1"
  if check "$d/t" >/dev/null; then
    echo "selftest: not caught in $1: $2" >&2
    fails=$((fails + 1))
  fi
}
plant csrc/util.c 'static void x(void) { system("rm -rf /"); }'
plant csrc/http.c '  FILE *p = popen(cmd, "r");'
plant csrc/main.c '  execvp(argv[0], argv);'
plant lua/shelf/tab/init.lua "os.execute('ls ' .. name)"
plant lua/shelf/edit.lua "local out = vim.fn.system('cat ' .. path)"
plant lua/shelf/picker.lua "vim.cmd('silent !open ' .. url)"
plant lua/shelf/insert.lua "local h = io.popen('date')"
plant lua/shelf/health.lua "local v = vim.fn.system(path .. ' --version')"
plant lua/shelf/tab/actions.lua "vim.fn.jobstart('xdg-open ' .. url)"
plant lua/shelf/login.lua "local ok, job = pcall(vim.fn.jobstart, cmd .. ' ' .. url, { detach = true })"
plant lua/shelf/login.lua "local job = vim.fn.jobstart(argv, { detach = true })"
plant lua/shelf/picker.lua "local start = vim.fn.jobstart"
plant lua/shelf/client.lua "local ok, chan = pcall(vim.fn.jobstart, 'shelfd --log ' .. log, { rpc = true })"
plant lua/shelf/client.lua "vim.fn.jobstart[[shelfd]]"
plant csrc/store_sqlite.c '  char *q = util_printf("SELECT * FROM prompts WHERE title = '"'"'%s'"'"'", title);'
plant csrc/store_sqlite.c '  char *q = util_printf("DELETE FROM \"%s\" WHERE id = %s", name, id);'
plant csrc/store_sqlite.c '  char *q = sqlite3_mprintf("UPDATE prompts SET title=%Q", t);'
plant csrc/store_sqlite.c '  char *q = util_printf("SELECT * FROM \"%s\"", user_table);'
# What is allowed stays allowed: an argv list written out, anywhere.
allowed() { # FILE LINE
  rm -rf "$d/t" && mkdir -p "$d/t" && cp -r "$root/csrc" "$root/lua" "$root/plugin" "$d/t/"
  printf '%s\n' "$2" >>"$d/t/$1"
  if ! check "$d/t" >/dev/null; then
    echo "selftest: refused in $1, though allowed: $2" >&2
    fails=$((fails + 1))
  fi
}
allowed lua/shelf/tab/actions.lua "local ok, job = pcall(vim.fn.jobstart, { 'xdg-open', url }, { detach = true })"
allowed lua/shelf/picker.lua "vim.fn.jobstart({ 'open', url })"
[ $fails = 0 ] && echo "static selftest: 18 planted violations caught, 2 allowed uses pass, the tree is clean"
exit $fails
