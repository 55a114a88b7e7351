-- Benchmark (prints figures, asserts nothing): the prompt builder holding
-- 200 context blocks of the seeded library in BENCH_DB, with its buffer
-- open: adding a block, assembling the prompt (text()), its weight, reading
-- the buffer back after a block line moved (what each TextChanged does), a
-- full render, a block edited through the API until the builder holds its
-- new content, and the Lua memory the builder holds.
-- env: BENCH_DB, BENCH_SIZE, BENCH_BLOCKS (200), BENCH_OPS, SHELF_BENCH_OUT, QUICK.
local L = dofile(vim.env.SHELF_ROOT .. '/bench/lib.lua')
local db = assert(vim.env.BENCH_DB, 'BENCH_DB')
local size = tonumber(vim.env.BENCH_SIZE or '1000')
local nblocks = tonumber(vim.env.BENCH_BLOCKS or '200')
local ops = tonumber(vim.env.BENCH_OPS or (L.quick and '50' or '200'))
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local now = L.now

local function emit(name, unit, samples)
  L.emit({ group = 'builder', name = name .. ' (' .. nblocks .. ' blocks)', size = size, unit = unit,
    samples = samples })
end

shelf.setup({ sqlite = { path = db }, helper = { log = db .. '.log' } })
client.start()
L.wait(function() return client.status().ready == true end, 'the first load', 300000)

local blocks = {}
for _, b in ipairs(mirror.items('block')) do
  table.insert(blocks, b)
end
table.sort(blocks, function(a, b) return a.id < b.id end)
if #blocks < nblocks then
  L.fail(string.format('the library has %d blocks, %d are needed', #blocks, nblocks))
end

local builder = shelf.builder
local view = require('shelf.builder.view')
local mem0 = collectgarbage('count')
local buf = builder.open()
vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'Review these and tell me what is missing:', '' })

-- Adding: each add lists the block at once, and its content comes from
-- shelfd a moment later (a query); timed until it is in.
local adds = {}
L.stall.phase('add a block')
for i = 1, nblocks do
  L.stall.mark()
  local t0 = now()
  local done = false
  builder.add('block', blocks[i].id, { quiet = true, done = function() done = true end })
  L.wait(function() return done end, 'the block content', 30000)
  table.insert(adds, now() - t0)
end
if #builder.items() ~= nblocks then
  L.fail(string.format('the builder holds %d blocks, not %d', #builder.items(), nblocks))
end
emit('add a block (content from shelfd, buffer redrawn)', 'ms', adds)
collectgarbage()
emit('Lua memory the builder holds', 'MiB', { (collectgarbage('count') - mem0) / 1024 })

local function sample(name, unit, fn, n)
  local xs = {}
  L.stall.phase(name)
  for _ = 1, n or ops do
    L.stall.mark()
    local t0 = now()
    local own = fn() -- a part of it timed by itself
    table.insert(xs, own or (now() - t0))
  end
  emit(name, unit, xs)
end

local text = builder.text()
L.say('  builder: %d blocks, %.1f KiB assembled, ~%d tokens', nblocks, #text / 1024, builder.weight().tokens)
sample('assemble the prompt (text())', 'ms', function() builder.text() end)
sample('weight (chars, lines, tokens)', 'ms', function() builder.weight() end)

-- A block line moved (as dd and p would), then read back as TextChanged does.
local first = #vim.api.nvim_buf_get_lines(buf, 0, -1, false) - nblocks + 1
sample('read back after a block line moved (TextChanged)', 'ms', function()
  local lines = vim.api.nvim_buf_get_lines(buf, first - 1, first, false)
  vim.api.nvim_buf_set_lines(buf, first - 1, first, false, {})
  vim.api.nvim_buf_set_lines(buf, -1, -1, false, lines)
  local t0 = now()
  view.sync(true)
  return now() - t0
end)
local k = 0
sample('redraw after a change made through the API', 'ms', function()
  k = k + 1
  builder.set_text('Review these and tell me what is missing (' .. k .. '):\n')
end)
if #builder.items() ~= nblocks then
  L.fail('the builder lost blocks')
end

-- A block edited through the API: from update() to the builder holding the
-- new content (the ShelfChanged that brings it takes it from shelfd).
local lat = {}
for i = 1, math.min(ops, 100) do
  local b = blocks[(i % nblocks) + 1]
  local want = 'edited ' .. i
  local t0 = now()
  shelf.update('block', b.id, { content = want })
  L.wait(function() return builder.text():find(want, 1, true) ~= nil end, 'the builder to follow an edit', 30000)
  table.insert(lat, now() - t0)
  L.wait(L.at_rest, 'shelfd at rest', 30000)
end
emit('block edited via the API -> builder holds it', 'ms', lat)

client._stop_and_wait(10000)
os.exit(0)
