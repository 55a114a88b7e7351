-- Benchmark (prints figures, asserts nothing): between editors on one SQLite
-- file. This Neovim writes (shelf.update); a second Neovim (its own nvim
-- process and shelfd, with the knowledge tab open) notes the wall-clock time
-- at which its mirror holds the write and its tab has redrawn, and sends that
-- time back. Both clocks are the machine's one wall clock. Each write starts
-- once the first editor's shelfd is at rest.
-- env: BENCH_DB, BENCH_SIZE, BENCH_OPS, SHELF_BENCH_OUT, QUICK.
local L = dofile(vim.env.SHELF_ROOT .. '/bench/lib.lua')
local db = assert(vim.env.BENCH_DB, 'BENCH_DB')
local n = tonumber(vim.env.BENCH_SIZE or '100')
local ops = tonumber(vim.env.BENCH_OPS or (L.quick and '50' or '200'))
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')

L.stall.phase('first full load')
shelf.setup({ sqlite = { path = db }, helper = { log = db .. '.log' } })
client.start()
L.wait(function() return client.status().ready == true end, 'the first load', 300000)

local chan = vim.fn.jobstart({ 'nvim', '--embed', '--headless', '-u', 'NONE', '-i', 'NONE', '-n',
  '--cmd', 'set rtp^=' .. L.root, '--cmd', 'runtime plugin/shelf.lua' }, { rpc = true })
if chan <= 0 then
  L.fail('cannot start the second nvim')
end
-- A request to the second editor waits for it: the bench's own wait, not
-- a stall of the plugin's (bench/stall.lua).
local function other(code, ...)
  return L.unmeasured(vim.rpcrequest, chan, 'nvim_exec_lua', code, { ... })
end

local seen = {}
-- Called by the second editor (an RPC notification back to us).
function _G.BENCH_SEEN(i, wall)
  seen[i] = wall
end

local ok, err = pcall(function()
  other([[
    local opts = ...
    require('shelf').setup(opts)
    require('shelf.client').start()
  ]], { sqlite = { path = db }, helper = { log = db .. '.other.log' } })
  L.wait(function()
    return other([[return require('shelf').status().ready == true]])
  end, 'the second editor to load', 300000)
  -- Its tab is open; an autocmd made after the tab's own runs after the
  -- tab's redraw and reports when the awaited title is there.
  other([[
    local parent
    for _, c in ipairs(vim.api.nvim_list_chans()) do
      if c.stream == 'stdio' and c.mode == 'rpc' then
        parent = c.id
      end
    end
    require('shelf.tab').open()
    local mirror = require('shelf.mirror')
    BENCH_WANT = nil
    vim.api.nvim_create_autocmd('User', { pattern = 'ShelfChanged', callback = function()
      local w = BENCH_WANT
      if not w then return end
      local it = mirror.item('prompt', w.id)
      if it and it.title == w.title then
        BENCH_WANT = nil
        local s, us = vim.loop.gettimeofday()
        vim.rpcnotify(parent, 'nvim_exec_lua', 'BENCH_SEEN(...)', { w.i, s * 1000 + us / 1000 })
      end
    end })
  ]])
  -- The items written: existing prompts, spread over the library (sorting
  -- 50k ids is the bench's own work).
  local ids = L.unmeasured(function()
    local list = {}
    for row in mirror.rows('prompt') do
      list[#list + 1] = mirror.id_at('prompt', row)
    end
    table.sort(list)
    return list
  end)
  L.stall.phase('writes seen by the other editor')
  local lat = {}
  for i = 1, ops do
    local id = ids[(i * 7919) % #ids + 1]
    local title = string.format('Edited in the first editor, write %d', i)
    -- From rest: the refresh that follows the previous write (tens of ms at
    -- 10k) has finished, as between two writes a person makes.
    L.wait(L.at_rest, 'shelfd to settle')
    other('BENCH_WANT = ...', { id = id, title = title, i = i })
    local t0 = L.wall()
    local done
    shelf.update('prompt', id, { title = title }, function(e)
      done = e or true
    end)
    L.wait(function() return seen[i] ~= nil and done ~= nil end, 'the second editor to show write ' .. i, 30000)
    if done ~= true then
      L.fail('update: ' .. tostring(done))
    end
    table.insert(lat, seen[i] - t0)
  end
  L.emit({ group = 'editors', name = 'write -> other editor mirror+tab (sqlite)', size = n, unit = 'ms',
    samples = lat })
end)
pcall(other, "require('shelf.client')._stop_and_wait(10000)")
pcall(vim.fn.jobstop, chan)
vim.fn.jobwait({ chan }, 5000)
client._stop_and_wait(10000)
if not ok then
  L.fail(tostring(err))
end
os.exit(0)
