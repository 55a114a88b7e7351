-- Benchmark (prints figures, asserts nothing): shelfd on the local Supabase-compatible stack.
-- Run by bench/supabase.sh in a headless Neovim with the plugin on its runtimepath:
--   1. CRUD to screen: shelf.update/create/delete until the mirror holds the result and the
--      knowledge tab has redrawn (our User ShelfChanged autocmd is defined after the tab's, so
--      it runs once the tab's render returned); then, before the next operation, until the
--      refresh that follows has finished. Bytes are counted by bench/countproxy.mjs.
--   2. Realtime: bench/supabase_rt.mjs commits changes (SQL and supabase-js) and reports the
--      supabase-js subscription callback; we take the wall-clock time the mirror (and tab) show it.
--   3. Idle: nothing happens for BENCH_IDLE_S seconds with realtime joined and the tab open.
--      shelfd's context switches (each a wake-up) are sampled every 100 ms and grouped in bursts
--      (switches less than a second apart); a burst during which the proxy saw shelfd's traffic
--      move is the realtime heartbeat (every 25 s), one without traffic would be a poll.
-- Environment: BENCH_STACK_ENV (the stack's env file), BENCH_URL (the proxy port for shelfd),
-- BENCH_JS_URL (the proxy port for supabase-js), BENCH_CONTROL (proxy control port),
-- BENCH_SIZE, BENCH_OPS, BENCH_EVENTS, BENCH_IDLE_S, BENCH_RAW (where the raw samples go, JSON).
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local out = io.stderr
local root = vim.env.SHELF_ROOT
-- The loop-stall measure (bench/stall.lua), when the runner loaded it.
local stall = _G.shelf_bench_stall or { phase = function() end }

local env = {}
for line in io.lines(vim.env.BENCH_STACK_ENV) do
  local k, v = line:match("^export ([%w_]+)='([^']*)'")
  if k then
    env[k] = v
  end
end
local size = tonumber(vim.env.BENCH_SIZE)
local ops = tonumber(vim.env.BENCH_OPS or '200')
local events = tonumber(vim.env.BENCH_EVENTS or '200')

local function die(msg)
  out:write('supabase_bench: ' .. msg .. '\n')
  pcall(client._stop_and_wait, 5000)
  os.exit(1)
end

local function wait(cond, what, ms)
  if not vim.wait(ms or 120000, cond, 1) then
    die('timed out waiting for ' .. what)
  end
end

local function now()
  return vim.loop.hrtime() / 1e6
end

local function wall()
  local s, us = vim.loop.gettimeofday()
  return s * 1000 + us / 1000
end

-- The proxy's counters, read over its HTTP control port (a plain GET; it closes after).
local function counts(both)
  local body, done = {}, false
  local tcp = vim.loop.new_tcp()
  tcp:connect('127.0.0.1', tonumber(vim.env.BENCH_CONTROL), function(err)
    if err then
      done = err
      return
    end
    tcp:read_start(function(rerr, chunk)
      if chunk then
        table.insert(body, chunk)
      else
        tcp:close()
        done = rerr or true
      end
    end)
    tcp:write('GET /counts HTTP/1.0\r\nHost: x\r\n\r\n')
  end)
  wait(function() return done end, 'the proxy counters', 10000)
  local text = table.concat(body)
  local json = text:match('\r\n\r\n(.*)$')
  if not json then
    die('bad answer from the proxy: ' .. text)
  end
  local c = vim.json.decode(json).shelfd
  if both then
    return c.up, c.down
  end
  return c.up + c.down
end

-- Sign in through the proxy and wait for the first load and the realtime join.
stall.phase('sign-in and first load')
local t_start = now()
local function setup(cache)
  shelf.setup({
    backend = 'supabase',
    supabase = { url = vim.env.BENCH_URL, anon_key = env.SHELF_SUPABASE_ANON_KEY, cache = cache },
    helper = { log = vim.env.BENCH_LOG },
  })
end
setup(true)
local login_err
local logged = false
shelf.login('ada@example.com', 'ada-password', function(err)
  login_err, logged = err, true
end)
wait(function() return logged end, 'sign-in')
if login_err then
  die('sign-in failed: ' .. tostring(login_err))
end
-- A load that keeps failing (shelfd retries it) is given a minute, not the ten a slow one gets.
local failing_since
wait(function()
  local st = client.status()
  if st.error and st.error ~= vim.NIL then
    failing_since = failing_since or now()
    if now() - failing_since > 60000 then
      die('the first load keeps failing: ' .. tostring(st.error))
    end
  else
    failing_since = nil
  end
  return st.ready and st.signed_in and st.loading == nil and st.realtime == 'joined'
end, 'the first load and the realtime join', 600000)
local load_ms = now() - t_start
-- The full comparison that follows the join runs in the background; the measures start after it.
wait(function() return not client.status().checking end, 'the full check after the join', 600000)
-- So does the build of the local copy's search index after a big first load (status
-- `indexing`; meanwhile a refresh reads the rows it needs from the server, not the copy, and
-- the build takes a core): the measures start after it, as a user's first minutes end.
local index_wait = now()
wait(function() return client.status().indexing ~= true end, 'the search index of the local copy', 900000)
local index_ms = now() - t_start - load_ms
out:write(string.format('  (the local copy indexed for search %.1f s after the first load; the measures waited %.1f s)\n',
  index_ms / 1000, (now() - index_wait) / 1000))
local held = #mirror.items('prompt') + #mirror.items('block') + #mirror.items('project')
if held ~= size then
  die(string.format('the mirror holds %d items, the database %d', held, size))
end
-- Two probes: one defined before the tab's ShelfChanged handler (the tab module loads with
-- shelf.open()), so it sees the mirror before the tab redraws; one after it.
local probe, probe_at, mirror_at
if package.loaded['shelf.tab'] then
  die('the tab module loaded before the mirror probe was defined')
end
vim.api.nvim_create_autocmd('User', {
  pattern = 'ShelfChanged',
  callback = function()
    if probe and not mirror_at and probe() then
      mirror_at = now()
    end
  end,
})
shelf.open()
vim.api.nvim_create_autocmd('User', {
  pattern = 'ShelfChanged',
  callback = function()
    if probe and not probe_at and probe() then
      probe_at = now()
    end
  end,
})

local function settle()
  wait(function() return client.status().loading == nil end, 'the refresh after an action')
end

local raw = { size = size, load_ms = load_ms, index_ms = index_ms, crud = {}, rt = {} }
-- The bench's own lists (a sort of 50k prompts at 100k: 100-150 ms in one
-- go) are not the plugin's stall.
if stall.pause then
  stall.pause()
end
local prompts = mirror.items('prompt')
table.sort(prompts, function(a, b) return a.id < b.id end)
local folders = {}
for _, p in ipairs(mirror.items('project')) do
  if p.type == 'prompts' then
    table.insert(folders, p.id)
  end
end
table.sort(folders)
if stall.resume then
  stall.resume()
end
local filler = string.rep('Benchmark content line with a few words. ', 30) -- ~1.3 KB

local function measure(label, n, action)
  local ms, mirror_ms, settled_ms = {}, {}, {}
  stall.phase(label)
  local phase = now()
  settle()
  local before = counts()
  for i = 1, n do
    probe_at, mirror_at = nil, nil
    local done, err = false, nil
    local start = now()
    probe = action(i, function(e)
      done, err = true, e
    end)
    wait(function() return done and probe_at end, label .. ' ' .. i, 30000)
    if err then
      die(label .. ' failed: ' .. tostring(err))
    end
    table.insert(ms, probe_at - start)
    table.insert(mirror_ms, (mirror_at or probe_at) - start)
    probe = nil
    settle()
    table.insert(settled_ms, now() - start)
  end
  -- Let the realtime echo of the last write arrive before the counters are read.
  vim.wait(50)
  raw.crud[label] = { ms = ms, mirror_ms = mirror_ms, settled_ms = settled_ms, bytes = (counts() - before) / n }
  out:write(string.format('  (%s: %d operations in %.1f s)\n', label, n, (now() - phase) / 1000))
end

-- A small library has fewer prompts than operations: go round them again.
local last_updated
measure('update', ops, function(i, cb)
  local p = prompts[1 + (i - 1) % #prompts]
  last_updated = p.id
  local title = string.format('Updated %d: %s', i, p.title):sub(1, 80)
  shelf.update('prompt', p.id, { title = title, content = filler .. i }, cb)
  return function()
    local m = mirror.item('prompt', p.id)
    return m and m.title == title
  end
end)

local created = {}
measure('create', ops, function(i, cb)
  local title = string.format('Created by the benchmark, number %d', i)
  shelf.create('prompt', { title = title, content = filler .. i, tags = { 'bench', 'new' },
    project_id = folders[1 + i % math.max(1, #folders)] }, function(err, item)
    if item then
      created[i] = item.id
    end
    cb(err)
  end)
  -- The mirror changes before the callback runs, so match the new row by its title.
  return function()
    local lc = mirror.last_change
    for _, id in ipairs(lc and lc.kind == 'prompt' and lc.upserted or {}) do
      local m = mirror.item('prompt', id)
      if m and m.title == title then
        return true
      end
    end
  end
end)

measure('delete', ops, function(i, cb)
  local id = created[i]
  shelf.delete('prompt', id, cb)
  return function()
    return mirror.item('prompt', id) == nil
  end
end)

-- The tab really shows what the mirror holds: the last updated title is in its buffer once its
-- folder is open (closed folders draw one line).
stall.phase('tab check')
local tab = require('shelf.tab')
tab.reveal('prompt:' .. last_updated)
local function shown()
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.bo[b].filetype == 'shelf' then
      local text = table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\n')
      if text:find(mirror.item('prompt', last_updated).title:sub(1, 30), 1, true) then
        return true
      end
    end
  end
  return false
end
raw.tab_checked = vim.wait(5000, shown, 10)

-- 2. Realtime: the driver announces each event ("want"), commits it, and reports when
-- supabase-js saw it ("done"); we answer "next" once the mirror shows it too.
-- BENCH_EVENTS=0 leaves it out (a run measuring only CRUD and the refresh).
if events > 0 then
  stall.phase('realtime events')
  local want, got_js, ev_seen, ev_mirror = nil, {}, {}, {}
  local rt_probe_id, rt_op, rt_title
  local function rt_check()
    local m = mirror.item('prompt', rt_probe_id)
    if rt_op == 'DELETE' then
      return m == nil
    end
    return m ~= nil and m.title == rt_title
  end
  vim.api.nvim_create_autocmd('User', {
    pattern = 'ShelfChanged',
    callback = function()
      if want and not ev_seen[want] and rt_check() then
        ev_seen[want] = wall()
      end
    end,
  })
  -- The mirror-only time of an event: the probe of part 1 ran before the tab; reuse it.
  probe_at, mirror_at = nil, nil
  probe = function()
    if want and not ev_mirror[want] and rt_check() then
      ev_mirror[want] = wall()
    end
    return false
  end
  local ended, rt_err = false, nil
  local partial = ''
  local job = vim.fn.jobstart({ 'node', root .. '/bench/supabase_rt.mjs' }, {
    cwd = root .. '/tests/stack',
    env = { BENCH_JS_URL = vim.env.BENCH_JS_URL, BENCH_EVENTS = tostring(events),
      BENCH_STACK_ENV = vim.env.BENCH_STACK_ENV },
    on_stdout = function(_, data)
      data[1] = partial .. data[1]
      partial = table.remove(data)
      for _, line in ipairs(data) do
        local w = vim.split(line, ' ')
        if w[1] == 'want' then
          want, rt_op, rt_probe_id, rt_title = tonumber(w[2]), w[3], w[4], w[5]
        elseif w[1] == 'done' then
          got_js[tonumber(w[2])] = { src = w[3], op = w[4], t_ref = tonumber(w[5]), t_js = tonumber(w[6]) }
        elseif w[1] == 'end' then
          ended = true
        end
      end
    end,
    on_stderr = function(_, data)
      for _, l in ipairs(data) do
        if l ~= '' then
          out:write('supabase_rt: ' .. l .. '\n')
        end
      end
    end,
    on_exit = function(_, code)
      if code ~= 0 then
        rt_err = 'supabase_rt.mjs exited with ' .. code
      end
      ended = true
    end,
  })
  if job <= 0 then
    die('could not start node')
  end
  local i = 0
  local phase = now()
  while true do
    wait(function() return ended or (got_js[i + 1] and want == i + 1) end, 'the realtime driver', 60000)
    if got_js[i + 1] == nil then
      break
    end
    i = i + 1
    -- A mirror that never shows the event counts as missing, not as a hang.
    vim.wait(10000, function() return ev_seen[i] ~= nil or rt_check() end, 1)
    local e = got_js[i]
    e.t_lua = ev_seen[i]
    e.t_mirror = ev_mirror[i]
    table.insert(raw.rt, e)
    vim.fn.chansend(job, 'next\n')
  end
  wait(function() return ended end, 'the realtime driver to end', 30000)
  out:write(string.format('  (realtime: %d events in %.1f s)\n', #raw.rt, (now() - phase) / 1000))
  if rt_err then
    die(rt_err)
  end
end

-- 3. Idle, realtime joined: wake-ups, and whether each burst of them moved realtime traffic.
local idle_s = tonumber(vim.env.BENCH_IDLE_S or '60')
if idle_s > 0 then
  stall.phase('idle, realtime joined')
  local L = dofile(root .. '/bench/lib.lua')
  settle()
  vim.wait(1000)
  if client.status().realtime ~= 'joined' then
    die('realtime is not joined before the idle measure: ' .. tostring(client.status().realtime))
  end
  local pid = client.pid()
  local samples = {}
  local t0 = now()
  while true do
    local c, threads = L.ctx_switches(pid)
    local up, down = counts(true)
    table.insert(samples, { t = now() - t0, c = c, up = up, down = down, threads = threads })
    if now() - t0 >= idle_s * 1000 then
      break
    end
    vim.wait(100)
  end
  -- Bursts: runs of sampling intervals with switches, less than 1 s apart.
  local bursts, with_traffic = {}, 0
  local cur
  for k = 2, #samples do
    if samples[k].c > samples[k - 1].c then
      if cur and samples[k - 1].t - samples[cur.last].t < 1000 then
        cur.last = k
      else
        cur = { first = k - 1, last = k }
        table.insert(bursts, cur)
      end
    end
  end
  for _, b in ipairs(bursts) do
    -- Traffic from the sample before the burst to one after it (the proxy counts a moment later).
    local e = samples[math.min(#samples, b.last + 1)]
    local s0 = samples[b.first]
    b.traffic = e.up > s0.up or e.down > s0.down
    if b.traffic then
      with_traffic = with_traffic + 1
    end
  end
  local first, last = samples[1], samples[#samples]
  -- When each burst began (s into the idle time), its wake-ups, and whether it moved traffic.
  local at = {}
  for _, b in ipairs(bursts) do
    table.insert(at, { s = math.floor(samples[b.first].t / 100 + 0.5) / 10,
      wakeups = samples[b.last].c - samples[b.first].c, traffic = b.traffic })
  end
  raw.idle = {
    bursts_at = at,
    seconds = math.floor((last.t - first.t) / 100 + 0.5) / 10,
    wakeups = last.c - first.c,
    bursts = #bursts,
    bursts_with_traffic = with_traffic,
    bytes = (last.up - first.up) + (last.down - first.down),
    threads = last.threads,
  }
  out:write(string.format('  (idle %.0f s, realtime joined: %d wake-ups in %d burst(s), %d with realtime traffic, %d bytes)\n',
    raw.idle.seconds, raw.idle.wakeups, raw.idle.bursts, with_traffic, raw.idle.bytes))
end

-- 4. A start with the session saved before (as the next Neovim does): until the tab is drawn
-- with the library (shelfd's first load applied, then the tab opened), and until live (Realtime
-- joined, the refresh after it done, and a prompt retitled by SQL while shelfd was stopped
-- shown). Without the local copy (supabase.cache = false: the first load comes from the
-- server), then with it (one unmeasured start first writes the copy).
local restarts = tonumber(vim.env.BENCH_RESTARTS or '3')
if restarts > 0 then
  local target = mirror.items('prompt')[1]
  if not target then
    die('no prompt to retitle for the restart measure')
  end
  raw.restart = { server = {}, cache = {} }
  stall.phase('restarts')
  -- The bench's own blocking psql is not the plugin's stall.
  local function psql(sql)
    if stall.pause then
      stall.pause()
    end
    local res = vim.fn.system({ 'psql', env.DATABASE_URL, '-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', sql })
    if stall.resume then
      stall.resume()
    end
    if vim.v.shell_error ~= 0 then
      die('psql: ' .. res)
    end
  end
  local function restart(mode, round, measured)
    stall.phase('restarts: stop')
    require('shelf.tab').close()
    client._stop_and_wait(10000)
    local title = string.format('Retitled while stopped %s %d', mode, round)
    psql(string.format("update prompts set title = '%s', updated_at = now() where id = '%s'", title, target.id))
    setup(mode == 'cache')
    stall.phase('restarts: spawn')
    local t0 = now()
    local _, err = client.start()
    if err then
      die('restart: ' .. err)
    end
    stall.phase('restarts: load')
    wait(function() return client.status().ready == true and not mirror.applying() end, 'the first load after a restart', 60000)
    stall.phase('restarts: tab and live')
    shelf.open()
    local tab_ms = now() - t0
    wait(function()
      local st = client.status()
      local m = mirror.item('prompt', target.id)
      return st.realtime == 'joined' and st.loading == nil and m and m.title == title
    end, 'live after a restart', 60000)
    local live_ms = now() - t0
    if measured then
      table.insert(raw.restart[mode], { tab_ms = tab_ms, live_ms = live_ms })
    end
  end
  for round = 1, restarts do
    restart('server', round, true)
  end
  restart('cache', 0, false)
  for round = 1, restarts do
    restart('cache', round, true)
  end
  local function p50(xs, key)
    local v = {}
    for _, x in ipairs(xs) do
      table.insert(v, x[key])
    end
    table.sort(v)
    return v[math.max(1, math.ceil(#v / 2))]
  end
  out:write(string.format('  (start, signed in before: tab %.0f ms and live %.0f ms from the local copy; '
    .. '%.0f and %.0f ms from the server; p50 of %d)\n', p50(raw.restart.cache, 'tab_ms'),
    p50(raw.restart.cache, 'live_ms'), p50(raw.restart.server, 'tab_ms'), p50(raw.restart.server, 'live_ms'), restarts))
end

local f = io.open(vim.env.BENCH_RAW, 'w')
f:write(vim.json.encode(raw))
f:close()
client._stop_and_wait(10000)
os.exit(0)
