-- Benchmark (prints figures, asserts nothing): start-up.
-- 1. What the plugin adds to `nvim --startuptime` before first use: Neovim
--    started (plugins on, no user config) with and without the plugin on
--    'runtimepath', runs interleaved; the difference of the medians, and the
--    time spent sourcing plugin/shelf.lua itself.
-- 2. shelfd spawn to ready on an empty library (jobstart to the `ready` status).
-- env: SHELF_BENCH_OUT, QUICK, BENCH_RUNS.
local L = dofile(vim.env.SHELF_ROOT .. '/bench/lib.lua')
local runs = tonumber(vim.env.BENCH_RUNS or (L.quick and '10' or '40'))
local dir = vim.fn.tempname()
vim.fn.mkdir(dir, 'p')

local function startuptime(with_plugin)
  local log = dir .. '/startuptime.log'
  vim.fn.delete(log)
  local cmd = { 'nvim', '--headless', '-u', 'NORC', '-i', 'NONE', '-n', '--startuptime', log }
  if with_plugin then
    vim.list_extend(cmd, { '--cmd', 'set rtp^=' .. L.root })
  end
  vim.list_extend(cmd, { '+qa!' })
  vim.fn.system(cmd)
  local total, plugin
  for line in (L.read(log) or ''):gmatch('[^\n]+') do
    local clock = tonumber(line:match('^(%d+%.%d+)'))
    -- `+qa!` quits before "NVIM STARTED": the last clock is the total.
    if clock then
      total = clock
    end
    if line:find('plugin/shelf.lua', 1, true) then
      plugin = tonumber(line:match('^%d+%.%d+%s+(%d+%.%d+)'))
    end
  end
  return total, plugin
end

local with, without, sourcing = {}, {}, {}
-- system() blocks this Neovim while a child starts: the bench's work, not a stall.
L.stall.pause()
for _ = 1, runs do
  local a, p = startuptime(true)
  local b = startuptime(false)
  if not (a and b and p) then
    L.fail('could not read --startuptime output (plugin line found: ' .. tostring(p ~= nil) .. ')')
  end
  table.insert(with, a)
  table.insert(without, b)
  table.insert(sourcing, p)
end
L.stall.resume()
L.stall.phase('shelfd spawn -> ready')
local sw, so = L.stats(with), L.stats(without)
L.say('  (nvim --startuptime p50: %.2f ms with the plugin, %.2f ms without, %d runs each)', sw.p50, so.p50, runs)
L.emit({ group = 'startup', name = 'plugin cost at start-up (startuptime delta)', size = 0, unit = 'ms',
  -- A difference of medians; a difference of p95s would mean nothing.
  ours = { n = runs, p50 = math.floor((sw.p50 - so.p50) * 1000 + 0.5) / 1000 } })
L.emit({ group = 'startup', name = 'sourcing plugin/shelf.lua', size = 0, unit = 'ms', samples = sourcing })

-- shelfd: spawn to ready on an empty library.
local client = require('shelf.client')
require('shelf').setup({ sqlite = { path = dir .. '/empty.db' }, helper = { log = dir .. '/shelfd.log' } })
local ready = {}
for i = 0, runs do
  local t0 = L.now()
  client.start()
  L.wait(function() return client.status().ready == true end, 'shelfd to be ready', 30000)
  -- The first run creates the schema: not counted.
  if i > 0 then
    table.insert(ready, L.now() - t0)
  end
  client._stop_and_wait(10000)
end
L.emit({ group = 'startup', name = 'shelfd spawn -> ready (empty library)', size = 0, unit = 'ms', samples = ready })
vim.fn.delete(dir, 'rf')
os.exit(0)
