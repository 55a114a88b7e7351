-- Benchmark (prints figures, asserts nothing) on the seeded SQLite library of
-- BENCH_SIZE items in BENCH_DB: Neovim started as a user's would be, each time
-- a fresh process (bench/start_child.lua):
--   Neovim start until the knowledge tab is drawn with the library (a big
--   library's folders are drawn while its items are still read), and until
--   every item is in and drawn;
--   the tab opened right after the library loaded (:Shelf until drawn);
--   shelfd's resident memory (VmRSS) and its peak (VmHWM) then;
--   what the plugin adds to Neovim's memory: Lua heap (collectgarbage
--   'count', before any load and after the tab, with and without a full
--   collection) and resident memory;
--   the longest loop stall in those Neovims (bench/stall.lua).
-- On Supabase (BENCH_BACKEND=supabase, run by bench/supabase.sh after a
-- sign-in in the same state directory): Neovim start until the tab is drawn
-- and until it is live, signed in before.
-- env: BENCH_DB, BENCH_SIZE, BENCH_RUNS, SHELF_BENCH_OUT, QUICK; on Supabase
-- BENCH_BACKEND, BENCH_URL, BENCH_ANON_KEY, BENCH_NAMES (top-level folder
-- names, '|' between them), BENCH_LABEL (goes into the rows' names).
local L = dofile(vim.env.SHELF_ROOT .. '/bench/lib.lua')
local supabase = vim.env.BENCH_BACKEND == 'supabase'
local db = vim.env.BENCH_DB or ''
assert(supabase or db ~= '', 'BENCH_DB')
local n = tonumber(vim.env.BENCH_SIZE or '100')
local runs = tonumber(vim.env.BENCH_RUNS or (L.quick and '2' or (n >= 100000 and '3' or '5')))
local dir = vim.fn.tempname()
vim.fn.mkdir(dir, 'p')

-- The tab sorts folders by name: the first few top-level prompt folders are
-- in its first lines whether folders are drawn open or closed.
local names
if supabase then
  names = vim.split(vim.env.BENCH_NAMES or '', '|', { plain = true, trimempty = true })
else
  names = L.unmeasured(vim.fn.systemlist, { 'sqlite3', db,
    'select name from prompt_projects where parent_id is null order by lower(name) limit 3' })
  if vim.v.shell_error ~= 0 then
    names = {}
  end
end
if #names == 0 then
  L.fail('no folder names to find in the tab')
end
local label = (vim.env.BENCH_LABEL or '') ~= '' and vim.env.BENCH_LABEL or nil

local function child(mode, i)
  local out = string.format('%s/%s-%d.json', dir, mode, i)
  local stall = string.format('%s/%s-%d.stall', dir, mode, i)
  local env = {
    BENCH_BACKEND = supabase and 'supabase' or 'sqlite', BENCH_DB = db,
    BENCH_LOG = supabase and (dir .. '/shelfd.log') or (db .. '.start.log'), BENCH_MODE = mode,
    BENCH_NAMES = table.concat(names, '|'), BENCH_CHILD_OUT = out, BENCH_STALL_OUT = stall,
    BENCH_SCRIPT = 'start_child.lua', BENCH_T0 = string.format('%.3f', L.wall()),
  }
  local code
  local job = vim.fn.jobstart({ 'nvim', '--headless', '-u', 'NONE', '-i', 'NONE', '-n',
    '--cmd', 'set rtp^=' .. L.root,
    '--cmd', "lua _G.shelf_bench_stall = dofile('" .. L.root .. "/bench/stall.lua')",
    '--cmd', 'runtime plugin/shelf.lua', '-c', 'luafile ' .. L.root .. '/bench/start_child.lua' },
    { env = env, on_exit = function(_, c) code = c end })
  if job <= 0 then
    L.fail('cannot start a child Neovim')
  end
  L.wait(function() return code ~= nil end, 'the child Neovim (' .. mode .. ')', 600000)
  local res = vim.json.decode(L.read(out) or 'null') or {}
  if code ~= 0 then
    L.fail(string.format('the child Neovim (%s) failed (exit %d): %s', mode, code, tostring(res.error)))
  end
  res.stall = vim.json.decode(L.read(stall) or 'null')
  return res
end

local tab_ms, open_ms, live_ms, loaded_ms = {}, {}, {}, {}
local shelfd_rss, shelfd_hwm, lua_gc, lua_nogc, rss_add, lua_notab = {}, {}, {}, {}, {}, {}
local worst
local function stall_of(r)
  if r.stall and (not worst or r.stall.max > worst.max) then
    worst = r.stall
    worst.mode = r.mode
  end
end
for i = 1, runs do
  local r = child('start', i)
  table.insert(tab_ms, r.tab_ms)
  table.insert(live_ms, r.live_ms)
  table.insert(loaded_ms, r.loaded_ms)
  table.insert(shelfd_rss, (r.shelfd_rss_kib or 0) / 1024)
  table.insert(shelfd_hwm, (r.shelfd_hwm_kib or 0) / 1024)
  table.insert(lua_gc, (r.lua_after_gc_kib - r.lua_before_kib) / 1024)
  table.insert(lua_nogc, (r.lua_after_kib - r.lua_before_kib) / 1024)
  table.insert(rss_add, (r.rss_after_kib - r.rss_before_kib) / 1024)
  stall_of(r)
  if supabase then
    L.say('  run %d: start -> tab %.0f ms (%d lines), live %.0f ms', i, r.tab_ms, r.tab_lines or -1, r.live_ms or -1)
  else
    local o = child('after_load', i)
    table.insert(open_ms, o.open_ms)
    table.insert(lua_notab, (o.lua_loaded_gc_kib - o.lua_before_kib) / 1024)
    stall_of(o)
    L.say('  run %d: start -> tab %.0f ms (%d lines), every item in %.0f ms, open after the load %.1f ms', i,
      r.tab_ms, r.tab_lines or -1, r.loaded_ms, o.open_ms)
  end
end

local function emit(group, name, unit, samples, extra)
  L.row(group, name, n, unit, samples, extra)
end
-- SQLite rows keep their plain names (issue 12's table is on SQLite).
local sb = supabase and (' (supabase' .. (label and (', ' .. label) or '') .. ')') or ''
if supabase then
  local sfx = ' (supabase, signed in before' .. (label and (', ' .. label) or '') .. ')'
  emit('startup', 'Neovim start -> tab drawn' .. sfx, 'ms', tab_ms)
  emit('startup', 'Neovim start -> live' .. sfx, 'ms', live_ms)
  emit('startup', 'Neovim start -> every item in the tab' .. sfx, 'ms', loaded_ms)
else
  emit('startup', 'Neovim start -> tab drawn with the library', 'ms', tab_ms)
  emit('startup', 'Neovim start -> every item in the tab', 'ms', loaded_ms)
  emit('render', 'tab open right after a load (:Shelf -> drawn)', 'ms', open_ms)
end
emit('memory', 'shelfd VmRSS (Neovim start + tab drawn)' .. sb, 'MiB', shelfd_rss)
emit('memory', 'shelfd VmHWM, peak (Neovim start + tab drawn)' .. sb, 'MiB', shelfd_hwm)
emit('memory', 'Neovim Lua heap the plugin adds (after a full GC)' .. sb, 'MiB', lua_gc)
emit('memory', 'Neovim Lua heap the plugin adds (no GC)' .. sb, 'MiB', lua_nogc)
emit('memory', 'Neovim RSS the plugin adds' .. sb, 'MiB', rss_add)
if #lua_notab > 0 then
  emit('memory', 'Neovim Lua heap the plugin adds, library loaded, no tab (after a full GC)', 'MiB', lua_notab)
end
if worst then
  L.emit({ group = 'stall', name = 'longest loop stall (start_child.lua: Neovim start, tab' .. (supabase and (', ' .. sb:sub(3, -2)) or '') .. ')',
    size = n, unit = 'ms', ours = { n = worst.ticks, max = worst.max }, stall = worst })
end
vim.fn.delete(dir, 'rf')
os.exit(0)
