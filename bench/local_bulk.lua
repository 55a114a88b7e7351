-- Benchmark (prints figures, asserts nothing): another program imports
-- BENCH_SIZE prompts into the SQLite library in one transaction (the sqlite3
-- shell, as a job) while this Neovim shows the knowledge tab. Measured: from
-- the import's start until the mirror holds them and until the tab shows
-- them, and the longest time Neovim's loop was blocked meanwhile (the largest
-- gap of a 5 ms repeating libuv timer, minus its 5 ms). Then the same rows
-- are deleted by the shell and the same is measured until they are gone.
-- env: BENCH_DB (a library file; made empty here), BENCH_SIZE (default
-- 100000), SHELF_BENCH_OUT (optional results file), SHELF_ROOT.
local L = dofile(vim.env.SHELF_ROOT .. '/bench/lib.lua')
local db = assert(vim.env.BENCH_DB, 'BENCH_DB')
local n = tonumber(vim.env.BENCH_SIZE or '100000')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local tab = require('shelf.tab')

vim.fn.delete(db)
require('shelf').setup({ sqlite = { path = db }, helper = { log = db .. '.log' } })
client.start()
L.wait(function() return client.status().ready == true end, 'the first load', 30000)
tab.open()
local st = tab._state()

local function prompts()
  return mirror.count('prompt')
end

-- Every 5 ms: the longest stall, and Neovim's CPU in it.
local gaps = L.gaps(5)

local function shell(sql)
  local done, code = false, nil
  local job = vim.fn.jobstart({ 'sqlite3', db, sql }, { on_exit = function(_, c) done, code = true, c end })
  if job <= 0 then
    L.fail('cannot start sqlite3')
  end
  return function() return done, code end
end

local function measure(what, sql, mirror_done, tab_done)
  vim.wait(500, function() return false end)
  gaps.start()
  local t0 = L.now()
  local finished = shell(sql)
  local mirror_at, tab_at
  L.wait(function()
    local t = L.now()
    if not mirror_at and mirror_done() then
      mirror_at = t
    end
    if mirror_at and not tab_at and tab_done() then
      tab_at = t
    end
    return mirror_at ~= nil and tab_at ~= nil and finished()
  end, what, 600000)
  local _, code = finished()
  -- A little more: the tick after the last stall may not have run yet.
  vim.wait(50, function() return false end, 1)
  local stall, gap_cpu = gaps.stop()
  if code ~= 0 then
    L.fail('sqlite3 failed: ' .. tostring(code))
  end
  L.say('  %s of %d rows: mirror after %.0f ms, tab after %.0f ms; longest stall of the loop %.1f ms'
    .. ' (Neovim on the CPU %.1f ms of it)', what, n, mirror_at - t0, tab_at - t0, stall, gap_cpu)
  L.emit({ group = 'bulk', name = what .. ' elsewhere -> tab (sqlite)', size = n, unit = 'ms',
    ours = { n = 1, p50 = tab_at - t0, p95 = tab_at - t0 } })
  L.emit({ group = 'bulk', name = what .. ' elsewhere: longest loop stall', size = n, unit = 'ms',
    ours = { n = 1, p50 = stall, p95 = stall }, cpu_ms = gap_cpu })
end

-- The items the tab counts (its section lines: a library this big shows
-- its folders closed, one line each with its count), once it is at rest.
local function tab_items()
  if st.dirty or st.building or #st.pending > 0 then
    return nil
  end
  local n = 0
  for _, row in pairs(st.rows) do
    if row.node.type == 'section' then
      n = n + row.node.count
    end
  end
  return n
end
measure('import', string.format([[BEGIN;
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d)
  INSERT INTO prompts (id, title, content, tags, created_at, updated_at)
  SELECT printf('%%08x-0000-4000-8000-%%012x', i, i), 'imported ' || i, 'text ' || i, '[]',
    '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00' FROM c;
  COMMIT;]], n),
  function() return prompts() >= n end,
  function() return tab_items() == n end)

measure('delete', 'DELETE FROM prompts;',
  function() return prompts() == 0 end,
  function() return tab_items() == 0 end)

client._stop_and_wait(10000)
os.exit(0)
