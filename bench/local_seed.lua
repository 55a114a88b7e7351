-- Make the seeded library for one size: shelfd creates the schema on an
-- empty file, then the sqlite3 shell fills it in one transaction.
-- env: BENCH_DB (the file), BENCH_SIZE (items).
local L = dofile(vim.env.SHELF_ROOT .. '/bench/lib.lua')
local db = assert(vim.env.BENCH_DB, 'BENCH_DB')
local n = tonumber(vim.env.BENCH_SIZE or '100')
local client = require('shelf.client')

vim.fn.delete(db)
require('shelf').setup({ sqlite = { path = db }, helper = { log = db .. '.log' } })
client.start()
L.wait(function() return client.status().ready == true end, 'shelfd to create the schema', 30000)
client._stop_and_wait(10000)

-- Writing and loading the seed is the bench's own work, not a plugin stall.
L.stall.pause()
local t0 = L.now()
local sql = L.seed_sql(db .. '.seed.sql', n)
local gen_ms = L.now() - t0
t0 = L.now()
local out = vim.fn.system({ 'sqlite3', db, '.read ' .. sql })
if vim.v.shell_error ~= 0 then
  L.fail('sqlite3 seed failed: ' .. out)
end
vim.fn.delete(sql)
local count = vim.fn.system({ 'sqlite3', db,
  'select (select count(*) from prompts) + (select count(*) from context_blocks)' })
L.stall.resume()
L.say('  seeded %s items (+ folders) in %.0f ms (SQL written in %.0f ms), %.1f MiB on disk', vim.trim(count),
  L.now() - t0, gen_ms, vim.fn.getfsize(db) / 1048576)
os.exit(0)
