-- One start of Neovim with the plugin, as a user's would be (run by
-- bench/local_start.lua and bench/supabase.sh in a fresh headless Neovim,
-- bench/stall.lua loaded first). Writes one JSON object to $BENCH_CHILD_OUT.
-- BENCH_MODE=start: setup() and :Shelf at once, then the times (ms since
-- $BENCH_T0, the wall clock when the parent started this Neovim) until the
-- tab is drawn with the library, on Supabase until it is live (signed in,
-- nothing loading, realtime joined), and until every item is in and drawn;
-- memory before and after.
-- BENCH_MODE=after_load: setup(), shelfd started and the library loaded
-- first, then :Shelf until the tab is drawn (open_ms).
-- "Drawn with the library": one of $BENCH_NAMES (top-level folder names,
-- '|' between them) is in the tab's first 100 lines. Benchmarks print
-- figures; this asserts nothing but that the tab came.
-- env: BENCH_BACKEND (sqlite|supabase), BENCH_DB, BENCH_URL, BENCH_ANON_KEY,
-- BENCH_LOG, BENCH_T0, BENCH_MODE, BENCH_NAMES, BENCH_CHILD_OUT.
local uv = vim.uv or vim.loop
local function wall()
  local s, us = uv.gettimeofday()
  return s * 1000 + us / 1000
end
local function status_kib(pid, key)
  local f = io.open('/proc/' .. pid .. '/status', 'r')
  if not f then
    return nil
  end
  local s = f:read('*a')
  f:close()
  return tonumber(s:match(key .. ':%s*(%d+)'))
end
local function out(t)
  local f = assert(io.open(vim.env.BENCH_CHILD_OUT, 'w'))
  f:write(vim.json.encode(t))
  f:close()
end

local t0 = tonumber(vim.env.BENCH_T0) or wall()
local mode = vim.env.BENCH_MODE or 'start'
local names = vim.split(vim.env.BENCH_NAMES or '', '|', { plain = true, trimempty = true })
local res = { mode = mode }
local stall = _G.shelf_bench_stall or { phase = function() end }

-- Before the plugin holds anything (plugin/shelf.lua is sourced: that is
-- what Neovim does at start, and bench/local_startup.lua measures it).
collectgarbage('collect')
res.lua_before_kib = collectgarbage('count')
res.rss_before_kib = status_kib('self', 'VmRSS')

local shelf = require('shelf')
local client = require('shelf.client')
local opts = { helper = { log = vim.env.BENCH_LOG } }
if vim.env.BENCH_BACKEND == 'supabase' then
  opts.backend = 'supabase'
  opts.supabase = { url = vim.env.BENCH_URL, anon_key = vim.env.BENCH_ANON_KEY }
else
  opts.sqlite = { path = vim.env.BENCH_DB }
end
shelf.setup(opts)

local function at_rest()
  local l = client.status().loading
  return l == nil or l == vim.NIL or (type(l) == 'table' and not l.refresh and (l.actions or 0) == 0)
end
local function drawn()
  local b = vim.fn.bufnr('shelf://knowledge')
  if b < 0 then
    return false
  end
  for _, line in ipairs(vim.api.nvim_buf_get_lines(b, 0, 100, false)) do
    for _, name in ipairs(names) do
      if line:find(name, 1, true) then
        return true
      end
    end
  end
  return false
end
local function wait(cond, what, ms)
  if not vim.wait(ms or 300000, cond, 1) then
    res.error = 'timed out waiting for ' .. what
    out(res)
    os.exit(1)
  end
end

if mode == 'after_load' then
  stall.phase('the load before the tab')
  client.start()
  wait(function() return client.status().ready == true and at_rest() end, 'the load')
  -- What the loaded library costs before any tab (the mirror and the client).
  stall.pause()
  collectgarbage('collect')
  res.lua_loaded_gc_kib = collectgarbage('count')
  stall.resume()
  stall.phase('tab open right after the load')
  local t = uv.hrtime()
  vim.cmd('Shelf')
  wait(drawn, 'the tab')
  res.open_ms = (uv.hrtime() - t) / 1e6
else
  stall.phase('Neovim start to the tab')
  vim.cmd('Shelf')
  wait(drawn, 'the tab drawn with the library')
  res.tab_ms = wall() - t0
  if opts.backend == 'supabase' then
    stall.phase('tab drawn to live')
    wait(function()
      local st = client.status()
      return st.signed_in and st.loading == nil and st.realtime == 'joined'
    end, 'the library to be live')
    res.live_ms = wall() - t0
  end
end
stall.phase('until shelfd is at rest')
wait(function() return client.status().ready == true and at_rest() end, 'shelfd at rest')
-- The tab is drawn while a big first load goes on (the folders first):
-- when every item is in, and the tab drew it, is a figure of its own.
if mode == 'start' then
  local tab = require('shelf.tab')
  wait(function()
    local st = tab._state()
    return not (st.building or st.flush or #st.pending > 0 or require('shelf.mirror').applying())
  end, 'the tab drawn with every item')
  res.loaded_ms = wall() - t0
end

res.lua_after_kib = collectgarbage('count')
-- The measure's own full collection is not the plugin's stall.
stall.pause()
collectgarbage('collect')
res.lua_after_gc_kib = collectgarbage('count')
stall.resume()
res.rss_after_kib = status_kib('self', 'VmRSS')
res.hwm_after_kib = status_kib('self', 'VmHWM')
local pid = client.pid()
if pid then
  res.shelfd_rss_kib = status_kib(pid, 'VmRSS')
  res.shelfd_hwm_kib = status_kib(pid, 'VmHWM')
end
res.tab_lines = vim.api.nvim_buf_line_count(vim.fn.bufnr('shelf://knowledge'))
out(res)
client._stop_and_wait(10000)
os.exit(0)
