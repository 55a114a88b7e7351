-- Benchmark (prints figures, asserts nothing): on a SQLite library of N items,
-- the time from shelf.create()/update() to (a) the callback, (b) the mirror
-- holding the result, and (c) the refresh that follows having finished; plus
-- the first full load. Run: nvim --headless -u NONE --cmd 'set rtp^=.'
--   -c 'luafile tests/bench/sqlite_crud.lua'   (env: BENCH_N, BENCH_OPS)
local n = tonumber(vim.env.BENCH_N or '10000')
local ops = tonumber(vim.env.BENCH_OPS or '200')
local dir = vim.fn.tempname()
vim.fn.mkdir(dir, 'p')
local db = dir .. '/library.db'
local shelf = require('shelf')
local helper = require('shelf.helper')
local out = io.stderr

local function now()
  return vim.loop.hrtime() / 1e6
end

local function wait(cond, ms)
  if not vim.wait(ms or 60000, cond, 1) then
    out:write('timed out\n')
    os.exit(1)
  end
end

local function ready()
  helper.start()
  wait(function() return helper.status().ready == true end)
end

-- 1. Create the schema, then fill it with the sqlite3 shell in one go.
shelf.setup({ sqlite = { path = db }, helper = { log = dir .. '/shelfd.log' } })
ready()
helper._stop_and_wait(5000)
local f = io.open(dir .. '/seed.sql', 'w')
f:write('BEGIN;\n')
local body = string.rep('Lorem ipsum dolor sit amet, consectetur adipiscing elit. ', 40)
for i = 1, n do
  local kind = i % 2 == 0 and 'prompts' or 'context_blocks'
  f:write(string.format(
    "INSERT INTO %s (id, title, content, tags, created_at, updated_at) VALUES "
      .. "('%08x-0000-4000-8000-%012x', 'Item number %d with a realistic title', '%s', '[\"bench\",\"t%d\"]', "
      .. "'2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00');\n",
    kind, i, i, i, body:sub(1, 200 + (i * 37) % 2000), i % 10))
end
f:write('COMMIT;\n')
f:close()
local t0 = now()
vim.fn.system({ 'sqlite3', db, '.read ' .. dir .. '/seed.sql' })
local seed_ms = now() - t0

-- 2. First load.
t0 = now()
shelf.setup({ sqlite = { path = db }, helper = { log = dir .. '/shelfd.log' } })
ready()
local load_ms = now() - t0
local count = #helper.items('prompt') + #helper.items('block')

-- 3. Creates and updates.
local function percentile(xs, p)
  table.sort(xs)
  return xs[math.max(1, math.ceil(#xs * p))]
end

local function measure(label, action)
  local cb_ms, mirror_ms, settled_ms = {}, {}, {}
  for i = 1, ops do
    local start = now()
    local done_at, item
    action(i, function(err, it)
      if err then
        out:write(err .. '\n')
        os.exit(1)
      end
      done_at, item = now(), it
    end)
    wait(function() return done_at ~= nil end)
    wait(function()
      local s = helper.item(item.kind, item.id)
      return s and s.updated_at == item.updated_at
    end)
    local mirror_at = now()
    wait(function() return helper.status().loading == nil end)
    table.insert(cb_ms, done_at - start)
    table.insert(mirror_ms, mirror_at - start)
    table.insert(settled_ms, now() - start)
  end
  out:write(string.format('%-8s callback p50 %6.2f ms p95 %6.2f | mirror p50 %6.2f p95 %6.2f | refresh done p50 %6.2f p95 %6.2f\n',
    label, percentile(cb_ms, 0.5), percentile(cb_ms, 0.95), percentile(mirror_ms, 0.5),
    percentile(mirror_ms, 0.95), percentile(settled_ms, 0.5), percentile(settled_ms, 0.95)))
end

out:write(string.format('library: %d items (seeded in %.0f ms); first load %.0f ms; %d ops each\n',
  count, seed_ms, load_ms, ops))
local created = {}
measure('create', function(i, cb)
  shelf.create('prompt', { title = 'bench ' .. i, content = body:sub(1, 500), tags = { 'b' } }, function(err, it)
    if it then table.insert(created, it.id) end
    cb(err, it)
  end)
end)
measure('update', function(i, cb)
  shelf.update('prompt', created[i], { content = 'changed ' .. i }, cb)
end)
helper._stop_and_wait(5000)
vim.fn.delete(dir, 'rf')
os.exit(0)
