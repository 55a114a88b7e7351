-- A create carried out by the database whose answer never reached the editor
-- (the gateway holds it back while shelfd is restarted or killed), sent again
-- with the id the editor chose, is one row on Supabase too: PostgREST's
-- on_conflict=id with ignore-duplicates stores nothing the second time and
-- shelfd answers with the stored row.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/faults_support.lua')
local shelf = require('shelf')
local client = require('shelf.client')
local edit = require('shelf.edit')

U.start()

local function count(title)
  return U.psql("select count(*) from prompts where title = '" .. title .. "'")
end

-- The create is done in the database and its answer held back; `stop` then
-- loses it; a new shelfd comes up signed in (the session file).
local function land_then_lose(title, stop)
  T.wait(function() return count(title) == '1' end, 'the database has the row', 20000)
  local pid = client.pid()
  stop(pid)
  T.wait(function()
    local p = client.pid()
    return p and p ~= pid and client.status().ready
  end, 'a new shelfd', 30000)
end

local function hold_answer()
  U.fault({ count = 1, answer_delay_ms = 20000, path = '/rest/v1/prompts', method = 'POST' })
end

T.test(':w after :Shelf restart lost the answer of a create that landed: one row', function()
  local nbuf = U.new_prompt('stack restart mid create', 'landed once')
  hold_answer()
  U.write(nbuf)
  local id = edit.info(nbuf).create_id
  T.ok(id, 'the buffer chose its id')
  land_then_lose('stack restart mid create', function() vim.cmd('Shelf restart') end)
  T.wait(function() return not edit.info(nbuf).saving end, 'the first :w answered')
  T.eq(true, U.modified(nbuf), 'not confirmed: still modified')
  U.write(nbuf)
  T.wait(function() return not U.modified(nbuf) end, 'the second :w confirmed', 30000)
  T.eq('1', count('stack restart mid create'), 'one row')
  T.eq(id, edit.info(nbuf).id, 'the buffer is that row')
  U.admin('clear-faults')
  U.recovered(':Shelf restart mid create')
end)

T.test(':w after SIGKILL of shelfd lost the answer of a create that landed: one row', function()
  local nbuf = U.new_prompt('stack killed mid create', 'landed once')
  hold_answer()
  U.write(nbuf)
  local id = edit.info(nbuf).create_id
  land_then_lose('stack killed mid create', function(pid) vim.loop.kill(pid, 9) end)
  T.wait(function() return not edit.info(nbuf).saving end, 'the first :w answered')
  T.eq(true, U.modified(nbuf), 'not confirmed: still modified')
  U.write(nbuf)
  T.wait(function() return not U.modified(nbuf) end, 'the second :w confirmed', 30000)
  T.eq('1', count('stack killed mid create'), 'one row')
  T.eq(id, edit.info(nbuf).id, 'the buffer is that row')
  U.admin('clear-faults')
  U.recovered('SIGKILL mid create')
end)

T.test('API: a create sent again with its id after a lost answer is one row, with the newer text', function()
  local id = shelf.new_id()
  hold_answer()
  local first
  shelf.create('prompt', { id = id, title = 'stack api once', content = 'v1' }, function(err) first = err or 'ok' end)
  land_then_lose('stack api once', function() vim.cmd('Shelf restart') end)
  T.wait(function() return first ~= nil end, 'the first answer')
  T.ok(first ~= 'ok', 'not confirmed: ' .. tostring(first))
  U.admin('clear-faults')
  local item = U.create('prompt', { id = id, title = 'stack api once', content = 'v1' })
  T.eq(id, item.id, 'the same item')
  T.eq('1', count('stack api once'), 'one row')
  item = U.create('prompt', { id = id, title = 'stack api once', content = 'v2' })
  T.eq('1', count('stack api once'), 'still one row')
  T.eq('v2', U.psql("select content from prompts where id = '" .. id .. "'"), 'the newer text')
  U.recovered('API create sent again')
end)
