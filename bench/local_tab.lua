-- Benchmark (prints figures, asserts nothing) on a seeded SQLite library of
-- BENCH_SIZE items in BENCH_DB, with the knowledge tab open in this headless
-- Neovim: first full load, shelfd RSS, idle wake-ups, tab full render, tab
-- open, picker open, and CRUD to screen: from shelf.create/update/delete to
-- the mirror holding the result and the tab redrawn; plus the incremental
-- render each update causes. env: BENCH_DB, BENCH_SIZE, BENCH_OPS,
-- BENCH_IDLE_S, SHELF_BENCH_OUT, QUICK.
local L = dofile(vim.env.SHELF_ROOT .. '/bench/lib.lua')
local db = assert(vim.env.BENCH_DB, 'BENCH_DB')
local n = tonumber(vim.env.BENCH_SIZE or '100')
local ops = tonumber(vim.env.BENCH_OPS or (L.quick and '50' or '200'))
local idle_s = tonumber(vim.env.BENCH_IDLE_S or (L.quick and '5' or '20'))
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local now = L.now

local function emit(group, name, unit, samples, extra)
  L.row(group, name, n, unit, samples, extra)
end

local function count()
  return mirror.count('prompt') + mirror.count('block')
end

-- ---- first full load: spawn to ready with the whole library mirrored ----------------
shelf.setup({ sqlite = { path = db }, helper = { log = db .. '.log' } })
L.stall.phase('first full load')
local loads = {}
local runs = L.quick and 2 or (n >= 100000 and 3 or 5)
for i = 1, runs do
  local t0 = now()
  client.start()
  L.wait(function() return client.status().ready == true end, 'the first load', 300000)
  table.insert(loads, now() - t0)
  if count() ~= n then
    L.fail(string.format('mirror holds %d items, the library %d', count(), n))
  end
  if i < runs then
    client._stop_and_wait(10000)
  end
end
emit('startup', 'first full load (spawn -> mirror ready)', 'ms', loads)

-- ---- memory and idle ---------------------------------------------------------------------
local pid = client.pid()
vim.wait(300, function() return false end)
emit('memory', 'shelfd RSS after load', 'MiB', { L.rss_mib(pid) })
emit('memory', 'shelfd VmHWM (peak) after load', 'MiB', { L.hwm_mib(pid) })

-- Made before the tab's own (it is required below), so it runs first: the
-- moment the mirror holds an operation's result, before any redraw.
local pending = nil
vim.api.nvim_create_autocmd('User', { pattern = 'ShelfChanged', callback = function()
  if pending and pending.check and not pending.mirror_at and pending.check() then
    pending.mirror_at = now()
  end
end })

L.stall.phase('tab open after the load')
local tab = require('shelf.tab')
tab.open()
L.stall.phase('idle, tab open')
-- Nothing happens now: a program that polls shows up as context switches.
local c0, threads = L.ctx_switches(pid)
local t0 = now()
vim.wait(idle_s * 1000, function() return false end, 50)
local c1 = L.ctx_switches(pid)
local per_min = (c1 - c0) / ((now() - t0) / 60000)
emit('memory', 'shelfd idle wake-ups (tab open)', '/min', { per_min },
  { idle = { seconds = idle_s, wakeups = c1 - c0, threads = threads } })
L.say('  (%d wake-ups in %d s, %d thread(s))', c1 - c0, idle_s, threads)

-- ---- rendering -------------------------------------------------------------------------------
-- Wrap what the ShelfChanged autocmd calls through the module table (a patch
-- of the lines shown, or a full render): time each call and tell a waiting
-- operation when its result is on screen. Behaviour is unchanged.
local st = tab._state()
local orig_render = tab.render
local orig_changed = tab.changed
local render_ms = {}
tab.changed = function(...)
  local t = now()
  local r = orig_changed(...)
  local e = now()
  table.insert(render_ms, e - t)
  if pending and pending.check and not pending.done_at and pending.check() then
    pending.done_at = e
  end
  return r
end

local function lines()
  return vim.api.nvim_buf_line_count(st.buf)
end

local full = {}
local rounds = L.quick and 10 or (n >= 100000 and 5 or 30)
-- Full renders forced back to back from an emptied buffer: a measure of the
-- renderer, not a path the plugin takes, so not counted as stalls.
L.stall.pause()
for _ = 1, rounds do
  -- An empty buffer, no rows and no tree: the render builds the tree from
  -- the mirror and draws every line it shows.
  vim.api.nvim_buf_set_option(st.buf, 'modifiable', true)
  vim.api.nvim_buf_set_lines(st.buf, 0, -1, false, {})
  vim.api.nvim_buf_set_option(st.buf, 'modifiable', false)
  st.rows, st.built = {}, nil
  local t = now()
  orig_render()
  table.insert(full, now() - t)
end
L.stall.resume()
emit('render', 'tab full render', 'ms', full)
L.say('  (tab shows %d lines)', lines())

local opens = {}
for _ = 1, math.max(3, math.floor(rounds / 3)) do
  tab.close()
  vim.cmd('silent! bwipeout! ' .. st.buf)
  L.stall.phase('tab open')
  L.stall.mark()
  local t = now()
  tab.open()
  -- A big library's tab is drawn in slices after open() returns: until drawn.
  st = tab._state()
  L.wait(function() return st.building == nil end, 'the tab drawn')
  table.insert(opens, now() - t)
end
emit('render', 'tab open (split + full render)', 'ms', opens)

-- Picker: vim.ui.select replaced by a stub that notes when it was called;
-- then the entries are formatted, as the built-in select does.
local orig_select = vim.ui.select
local picked_at, formatted_at
vim.ui.select = function(items, o)
  picked_at = now()
  -- The picker's own work (a plugin that replaced vim.ui.select), measured
  -- as "picker open + format every entry", not as the plugin's stall.
  L.stall.pause()
  for _, it in ipairs(items) do
    o.format_item(it)
  end
  L.stall.resume()
  formatted_at = now()
end
-- The first open sorts the list (in slices, the editor going on); later
-- ones find it kept.
local pick_ms, pick_fmt_ms, first_ms = {}, {}, nil
L.stall.phase('picker open')
for r = 1, rounds + 1 do
  picked_at = nil
  L.stall.mark()
  local t = now()
  vim.cmd('Shelf prompts')
  L.wait(function() return picked_at ~= nil end, ':Shelf prompts to call vim.ui.select', 60000)
  if r == 1 then
    first_ms = picked_at - t
  else
    table.insert(pick_ms, picked_at - t)
    table.insert(pick_fmt_ms, formatted_at - t)
  end
end
vim.ui.select = orig_select
emit('render', 'picker first open (:Shelf prompts -> ui.select, sorting the list)', 'ms', { first_ms })
emit('render', 'picker open (:Shelf prompts -> ui.select)', 'ms', pick_ms)
emit('render', 'picker open + format every entry', 'ms', pick_fmt_ms)

-- ---- CRUD to screen -------------------------------------------------------------------------
-- Bytes shelfd pushed to Neovim per action (msgpack of each push's payload).
local pushed = 0
local orig_receive = client._receive
client._receive = function(event, payload)
  pushed = pushed + #vim.mpack.encode({ event, payload })
  return orig_receive(event, payload)
end

local body = string.rep('Benchmark content line with some words in it.\n', 20)
local function run(label, action, check_of)
  L.stall.phase(label)
  local total, bytes, cb_ms, mirror_ms = {}, 0, {}, {}
  render_ms = {}
  for i = 1, ops do
    local cb_at, err_
    pushed = 0
    pending = { check = nil }
    local t = now()
    local arg = action(i, function(err)
      err_, cb_at = err, now()
    end)
    pending.check = check_of(i, arg)
    L.wait(function() return cb_at ~= nil end, label .. ' callback')
    if err_ then
      L.fail(label .. ': ' .. tostring(err_))
    end
    L.wait(function() return pending.done_at ~= nil end, label .. ' on screen', 30000)
    -- Let the refresh that follows an action finish before the next one.
    L.wait(L.at_rest, 'shelfd to settle')
    table.insert(total, pending.done_at - t)
    table.insert(mirror_ms, (pending.mirror_at or pending.done_at) - t)
    table.insert(cb_ms, cb_at - t)
    bytes = bytes + pushed
    pending = nil
  end
  emit('crud', label .. ' -> mirror+tab (sqlite)', 'ms', total,
    { bytes_ours = math.floor(bytes / ops) })
  emit('crud', label .. ' -> mirror only (sqlite)', 'ms', mirror_ms)
  return cb_ms
end

local created = {}
local function by_title(kind, title)
  return function()
    for _, id in ipairs((mirror.last_change or {}).upserted or {}) do
      local it = mirror.item(kind, id)
      if it and it.title == title then
        return true
      end
    end
    return false
  end
end

run('create', function(i, cb)
  local title = 'Benchmark created prompt number ' .. i
  shelf.create('prompt', { title = title, content = body, tags = { 'bench' } }, function(err, it)
    if it then
      created[i] = it.id
    end
    cb(err)
  end)
  return title
end, function(_, title)
  return by_title('prompt', title)
end)

run('update', function(i, cb)
  local title = 'Benchmark renamed prompt number ' .. i
  shelf.update('prompt', created[i], { title = title }, cb)
  return title
end, function(i, title)
  return function()
    local it = mirror.item('prompt', created[i])
    return it ~= nil and it.title == title
  end
end)
emit('render', 'tab incremental render (1 item changed)', 'ms', render_ms)

run('delete', function(i, cb)
  shelf.delete('prompt', created[i], cb)
end, function(i)
  return function()
    return mirror.item('prompt', created[i]) == nil
  end
end)

tab.changed = orig_changed
client._receive = orig_receive
client._stop_and_wait(10000)
os.exit(0)
