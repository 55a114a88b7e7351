-- Benchmark (prints figures, asserts nothing): what the plugin adds to
-- Neovim's memory with the library of BENCH_SIZE items in BENCH_DB loaded
-- and the knowledge tab open (Lua heap after a full collection, and this
-- process's resident memory), what the mirror and the tab's tree each hold,
-- and the tab's open and draw with its tree built anew (right after a load)
-- and kept. env: BENCH_DB, BENCH_SIZE, SHELF_BENCH_OUT, SHELF_ROOT.
local L = dofile(vim.env.SHELF_ROOT .. '/bench/lib.lua')
local db = assert(vim.env.BENCH_DB, 'BENCH_DB')
local n = tonumber(vim.env.BENCH_SIZE or '100')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local now = L.now

local function heap()
  collectgarbage('collect')
  collectgarbage('collect')
  return collectgarbage('count') / 1024
end
local function rss()
  return L.rss_mib(vim.fn.getpid())
end
local function emit(name, unit, samples)
  L.emit({ group = 'memory', name = name, size = n, unit = unit, samples = samples })
end

require('shelf').setup({ sqlite = { path = db }, helper = { log = db .. '.log' } })
local tab = require('shelf.tab') -- loaded before measuring: code is not the library
local heap0, rss0 = heap(), rss()
client.start()
L.wait(function() return client.status().ready == true end, 'the first load', 300000)
local heap1, rss1 = heap(), rss()

-- Right after the load: the tab's tree is built as it opens.
local t0 = now()
tab.open()
local open_new = now() - t0
local st = tab._state()
local heap2, rss2 = heap(), rss()
L.say('  (tab shows %d lines)', vim.api.nvim_buf_line_count(st.buf))

-- The tree alone: drawn again from a new one, then from the one kept.
local fresh, kept, cpu = {}, {}, {}
for _ = 1, 5 do
  st.built = nil
  t0 = now()
  local c0 = os.clock()
  tab.render()
  fresh[#fresh + 1] = now() - t0
  cpu[#cpu + 1] = (os.clock() - c0) * 1000
  t0 = now()
  tab.render()
  kept[#kept + 1] = now() - t0
end
local opens = {}
for _ = 1, 5 do
  tab.close()
  t0 = now()
  tab.open()
  opens[#opens + 1] = now() - t0
end
emit('tab open right after a load (tree built)', 'ms', { open_new })
emit('tab render with a new tree', 'ms', fresh)
emit('tab render with a new tree (CPU time)', 'ms', cpu)
emit('tab render with the tree kept', 'ms', kept)
emit('tab open again (split + draw)', 'ms', opens)

-- What the mirror holds: the heap without it (then it is put back).
local k = mirror.library
mirror.library = {}
local keep = setmetatable({ k }, { __mode = 'v' }) -- not a reference while measuring
k = nil
local b = st.built
st.built = nil
local mirror_mib = heap2 - heap()
-- (weak: the mirror went with that collection; this run ends here anyway)
mirror.library, st.built = keep[1] or mirror.library, b
emit('Lua heap the plugin adds, library loaded', 'MiB', { heap1 - heap0 })
emit('Lua heap the plugin adds, library and tab', 'MiB', { heap2 - heap0 })
emit('  of which the mirror (summaries)', 'MiB', { mirror_mib })
emit('  of which the tab (tree, rows, lines)', 'MiB', { heap2 - heap1 })
emit('Neovim RSS the plugin adds, library and tab', 'MiB', { rss2 - rss0 })
L.say('  (RSS %.1f MiB before, %.1f loaded, %.1f with the tab; heap %.1f, %.1f, %.1f MiB)', rss0, rss1, rss2,
  heap0, heap1, heap2)
client._stop_and_wait(10000)
os.exit(0)
