-- Bad input from Lua: RPC calls with wrong types, unknown kinds and methods,
-- oversized fields, straight on shelfd's channel; then odd items (1 MB+,
-- quotes, SQL, emoji, invalid UTF-8) on SQLite. Each gets a clear error or
-- is stored exactly; shelfd never dies.
local shelf = require('shelf')
local client = require('shelf.client')

T.fresh()
local chan = client.start()
local pid = client.pid()

local function alive()
  T.eq('string', type(vim.rpcrequest(chan, 'ping')), 'shelfd answers ping')
  T.eq(pid, client.pid(), 'the same shelfd')
end

-- A request that must fail with a message naming the call.
local function refused(method, ...)
  local ok, err = pcall(vim.rpcrequest, chan, method, ...)
  T.ok(not ok, method .. ' with bad arguments was accepted')
  T.ok(tostring(err):find(method, 1, true) or tostring(err):find('unknown', 1, true),
    'the error names the call: ' .. tostring(err))
end

T.test('requests with wrong types or unknown names get an error', function()
  refused('get', 5, {})
  refused('get', 'widget', 'x')
  refused('get', 'prompt', { 'a', 'table' })
  refused('get', 'prompt', string.rep('i', 4096))
  refused('get')
  -- search is a query now, not a request.
  refused('search', 'x')
  refused('no_such_method', 1, 2, 3)
  refused(string.rep('m', 60))
  -- get is a query now (a notification answered by a push), not a request.
  refused('get', 'prompt', 'no-such-id')
  alive()
end)

-- A notification through the ticket machinery, answered by `done`.
local function call(method, ...)
  local args = { ... }
  local err, item = T.await(function(cb) client.call(method, args, cb) end, method, 60000)
  return err, item
end

T.test('actions with wrong types or unknown kinds get a done with an error', function()
  local cases = {
    { 'create', { 'widget', { title = 'x' } }, 'kind' },
    { 'create', { 5, { title = 'x' } }, 'kind' },
    { 'create', { 'prompt', 'not a table' }, 'fields' },
    { 'create', { 'prompt', { title = 42 } }, 'title' },
    { 'create', { 'prompt', { title = 'x', tags = 'a,b' } }, 'tags' },
    { 'create', { 'prompt', { title = 'x', tags = { 1, 2 } } }, 'tags' },
    { 'create', { 'prompt', { title = 'x', project_id = 'not-a-uuid' } }, 'project_id' },
    { 'create', { 'prompt', { title = 'x', id = 'chosen-by-me' } }, 'id' },
    { 'create', { 'project', { name = 'x', type = 'spreadsheets' } }, 'type' },
    { 'update', { 'prompt', 12, { title = 'x' } }, 'update' },
    { 'update', { 'prompt', "x'; --", { title = 'x' } }, 'prompt' },
    { 'update', { 'prompt', string.rep('i', 500), { title = 'x' } }, 'update' },
    { 'delete', { 'block', {} }, 'delete' },
    { 'delete', { 'nope', 'x' }, 'delete' },
    { 'save_temp', { 7 }, 'save_temp' },
    { 'login', { 'a@b.c', string.rep('p', 5000) }, 'login' },
    { 'frobnicate', { 'x' }, 'unknown' },
  }
  local bad = {}
  for _, c in ipairs(cases) do
    local err = call(c[1], unpack(c[2]))
    if not (type(err) == 'string' and err:find(c[3], 1, true)) then
      table.insert(bad, string.format('%s(%s) should name %s: %s', c[1],
        vim.inspect(c[2]):sub(1, 60), c[3], tostring(err)))
    end
  end
  T.eq({}, bad, 'calls not refused clearly')
  alive()
end)

T.test('searches with wrong types or unknown kinds get an answer with an error', function()
  for _, args in ipairs({ { string.rep('q', 4096) }, { 'x', 'widget' }, { { nested = { deeper = true } } },
    {}, { 'x', vim.NIL, 0 }, { 'x', vim.NIL, 20000 }, { 'x', vim.NIL, 'ten' } }) do
    local err = T.await(function(cb) client.query('search', args, cb) end, 'search', 60000)
    T.ok(type(err) == 'string' and err:find('search', 1, true), 'the error names the call: ' .. tostring(err))
  end
  alive()
end)

T.test('notifications without a ticket or with a deep nest do not hurt', function()
  vim.rpcnotify(chan, 'create')
  vim.rpcnotify(chan, 'create', 'prompt', { title = 'no ticket' })
  vim.rpcnotify(chan, 'create', -1, 'prompt', { title = 'negative ticket' })
  local deep = {}
  local cur = deep
  for _ = 1, 40 do
    cur.x = {}
    cur = cur.x
  end
  local ok, err = pcall(shelf.create, 'prompt', { title = 'deep', extra = deep }, function() end)
  T.ok(not ok and tostring(err):find('nested deeper', 1, true), 'the API refuses 40 levels: ' .. tostring(err))
  alive()
  T.eq(0, #vim.tbl_filter(function(p) return p.title == 'no ticket' or p.title == 'negative ticket' end,
    shelf.items('prompt')), 'a call without a ticket did nothing')
end)

dofile(vim.env.SHELF_ROOT .. '/tests/nvim/bad_input_support.lua')('sqlite')

T.test('text past what shelfd reads in one message is refused before it is sent', function()
  local err = T.await(function(cb)
    shelf.create('prompt', { title = 'too big', content = string.rep('c', 70 * 2 ^ 20) }, cb)
  end, 'the 70 MiB create')
  T.ok(err and err:find('Creating prompt failed: it holds 70.0 MiB', 1, true), tostring(err))
  err = T.await(function(cb)
    shelf.create('block', { title = 'two halves', content = string.rep('c', 15 * 2 ^ 20),
      description = string.rep('d', 15 * 2 ^ 20), extra = string.rep('e', 30 * 2 ^ 20) }, cb)
  end, 'the 60 MiB create')
  T.ok(err and err:find('60.0 MiB', 1, true), tostring(err))
  alive() -- the same shelfd: nothing oversized reached its channel
end)

T.test('shelfd is still the same process', function()
  alive()
end)

T.test('a message nested past the RPC limit on the raw channel: shelfd restarts', function()
  -- shelfd's reader cannot skip such a message, so it drops the channel; the
  -- plugin restarts it and the library is back.
  local deep = {}
  local cur = deep
  for _ = 1, 40 do
    cur.x = {}
    cur = cur.x
  end
  local before = #shelf.items('prompt')
  vim.rpcnotify(chan, 'create', 999, 'prompt', { title = 'deep', extra = deep })
  T.wait(function() return client.pid() and client.pid() ~= pid and client.status().ready end,
    'a new shelfd', 30000)
  T.eq(before, #shelf.items('prompt'), 'the library after the restart')
  T.eq(nil, (T.await(function(cb) shelf.create('prompt', { title = 'after restart' }, cb) end)), 'a create')
end)
