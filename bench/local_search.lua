-- Benchmark (prints figures, asserts nothing): search in the store, on a copy
-- of the seeded SQLite library of BENCH_SIZE items in BENCH_DB.
-- 1. The first build of the search index of a library made without one (the
--    copy's indexes dropped): how long, the longest stall of Neovim's loop
--    meanwhile, a search answered during it, and the size on disk after.
-- 2. The tab's `/` filter: from setting it until the hits are shown in the
--    tab, for several queries (no match, a common word, 1, 2 and 3+
--    characters, text deep in a long content); and shelfd's answer alone.
-- 3. Typing a filter a key every 80 ms: the longest stall of the loop (the
--    largest gap of a 2 ms repeating libuv timer, minus its 2 ms).
-- env: BENCH_DB, BENCH_SIZE, SHELF_BENCH_OUT, SHELF_ROOT, QUICK, BENCH_KEEP,
-- BENCH_FIRST_BUILD=0 (skip part 1: use the copy's index as seeded; minutes
-- saved at 100k).
local L = dofile(vim.env.SHELF_ROOT .. '/bench/lib.lua')
local src = assert(vim.env.BENCH_DB, 'BENCH_DB')
local n = tonumber(vim.env.BENCH_SIZE or '100')
local client = require('shelf.client')
local now = L.now
local runs = L.quick and 3 or 7

local db = src .. '.search.db'
local function sh(args)
  -- The bench's own blocking work: not the plugin's stall.
  local out = L.unmeasured(vim.fn.system, args)
  if vim.v.shell_error ~= 0 then
    L.fail(table.concat(args, ' ') .. ': ' .. out)
  end
  return vim.trim(out)
end
local function sql(q)
  return sh({ 'sqlite3', db, q })
end

for _, suffix in ipairs({ '', '-wal', '-shm' }) do
  vim.fn.delete(db .. suffix)
end
sh({ 'cp', src, db })
local first_build = vim.env.BENCH_FIRST_BUILD ~= '0'
-- As a library made before the indexes: shelfd builds them at start.
if first_build then
  sql([[DROP TRIGGER IF EXISTS context_blocks_fts_ins; DROP TRIGGER IF EXISTS context_blocks_fts_upd;
DROP TRIGGER IF EXISTS context_blocks_fts_del; DROP TRIGGER IF EXISTS prompts_fts_ins;
DROP TRIGGER IF EXISTS prompts_fts_upd; DROP TRIGGER IF EXISTS prompts_fts_del;
DROP TABLE IF EXISTS context_blocks_fts; DROP TABLE IF EXISTS prompts_fts;
DELETE FROM shelf_meta WHERE key LIKE 'fts_built:%'; VACUUM;]])
end
local size_before = vim.fn.getfsize(db)

-- Every 2 ms: the longest stall.
local gaps = L.gaps(2)

local function emit(name, unit, samples, extra)
  L.row('search', name, n, unit, samples, extra)
end

local log = db .. '.log'
vim.fn.delete(log)
require('shelf').setup({ sqlite = { path = db }, helper = { log = log } })

-- ---- 1. the first build ------------------------------------------------------------
L.stall.phase('first load and index build')
local function built()
  return (L.read(log) or ''):find('the search index is built', 1, true) ~= nil
end
local t0 = now()
client.start()
L.wait(function() return client.status().ready == true end, 'the first load', 300000)
if first_build then
  -- The stall is measured from here: the first load is another benchmark's.
  gaps.start()
  -- A search while the index is being built: it scans what is not indexed yet.
  local started, during, during_ms = false, nil, nil
  if not built() then
    local s0 = now()
    started = true
    client.search_async('rollback migration', nil, function(err, hits)
      during, during_ms = { err = err, n = hits and #hits }, now() - s0
    end)
  end
  L.wait(built, 'the search index built', 1800000)
  local build_ms = now() - t0
  local build_stall = (gaps.stop())
  L.wait(function() return not started or during_ms ~= nil end, 'the search during the build')
  emit('first index build (start -> built)', 'ms', { build_ms })
  emit('longest loop stall during the first index build (after the load)', 'ms', { build_stall })
  if during_ms then
    emit('a search during the first index build', 'ms', { during_ms }, { hits = during.n })
  end
end
if first_build then
  sql('PRAGMA wal_checkpoint(TRUNCATE);')
  local size_after = vim.fn.getfsize(db)
  emit('library size on disk without the index', 'MiB', { size_before / 2 ^ 20 })
  emit('library size on disk with the index', 'MiB', { size_after / 2 ^ 20 })
end

-- ---- 2. query -> hits shown in the tab -----------------------------------------------
L.stall.phase('tab open')
local tab = require('shelf.tab')
tab.open()
local st = tab._state()
L.wait(function() return st.texts and #st.texts > 1 end, 'the tab drawn', 300000)
vim.wait(500, function() return false end)

-- Text near the end of the longest content: a match deep in content.
local deep = sql([[SELECT substr(content, length(content) - 40, 24) FROM context_blocks
  ORDER BY length(content) DESC LIMIT 1]])
deep = vim.trim(deep:gsub('%s+', ' '))
local queries = {
  { 'no match', 'zqxj no such text' },
  { 'a common word', 'review' },
  { '1 character', 'q' },
  { '2 characters', 'qu' },
  { '3 characters', 'dep' },
  { 'several words', 'deploy rollback' },
  { 'deep in a long content', deep },
}

for _, q in ipairs(queries) do
  local shown, answer = {}, {}
  local hits = 0
  for _ = 1, runs do
    L.stall.phase('filter: ' .. q[1])
    tab.set_filter(nil)
    vim.wait(20, function() return false end)
    -- shelfd's answer alone.
    local a0, got = now(), nil
    client.search_async(q[2], nil, function(_, h) got = h or {} end, require('shelf.tab.filter').limit)
    L.wait(function() return got ~= nil end, 'the answer to ' .. q[2])
    table.insert(answer, now() - a0)
    hits = #got
    -- Through the tab: set, searched, drawn.
    local s0 = now()
    tab.set_filter(q[2])
    -- Setting the filter draws at once (still searching); the answer draws
    -- again, with the hits: at once, or in slices when they are many.
    local drawn_at
    local function note()
      if st.searching then
        table.insert(st.on_drawn, note) -- a draw before the answer: the next one
      else
        drawn_at = now()
      end
    end
    table.insert(st.on_drawn, note)
    L.wait(function() return drawn_at ~= nil end, 'the hits of ' .. q[2] .. ' shown', 120000)
    table.insert(shown, drawn_at - s0)
  end
  emit('filter -> hits shown in the tab: ' .. q[1], 'ms', shown, { query = q[2], hits = hits })
  emit('search answer (shelfd, as many hits as the tab asks): ' .. q[1], 'ms', answer, { query = q[2], hits = hits })
end

-- ---- 3. typing ---------------------------------------------------------------------
L.stall.phase('typing a filter')
tab.set_filter(nil)
vim.wait(200, function() return false end)
local word = 'deploy rollback'
gaps.start()
local typed0 = now()
local actions = require('shelf.tab.actions')
for i = 1, #word do
  -- What each key typed into Neovim's input() does.
  actions.preview_filter(word:sub(1, i))
  vim.wait(80, function() return false end, 1)
end
tab.set_filter(word)
L.wait(function() return not st.searching end, 'the last answer while typing')
local typing_ms = now() - typed0
local typing_stall = (gaps.stop())
emit('longest loop stall while typing a filter (15 keys, 80 ms apart)', 'ms', { typing_stall },
  { typing_ms = typing_ms })
tab.set_filter(nil)
client._stop_and_wait(10000)
-- BENCH_KEEP=1 keeps the indexed copy (to look at it with sqlite3).
if (vim.env.BENCH_KEEP or '') == '' then
  for _, suffix in ipairs({ '', '-wal', '-shm' }) do
    vim.fn.delete(db .. suffix)
  end
end
os.exit(0)
