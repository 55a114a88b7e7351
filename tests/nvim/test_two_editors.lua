-- Two editors on one database file see each other's changes without any
-- command, and so does a write from another program (the sqlite3 shell).
local shelf = require('shelf')

local function await_ok(fn, what)
  local err, item = T.await(fn, what)
  T.eq(nil, err, what)
  return item
end

T.test('creates, updates and deletes travel between editors', function()
  local db = T.fresh()
  local other = T.other_nvim({ sqlite = { path = db }, helper = { log = T.path('other.log') } })
  local ok, err = pcall(function()
    other:lua([[require('shelf.client').start()]])
    T.wait(function()
      return other:lua([[return require('shelf').status().ready == true]])
    end, 'the second editor to load')

    -- Made here, seen there.
    local item = await_ok(function(cb)
      shelf.create('prompt', { title = 'from editor one', content = 'one' }, cb)
    end, 'create')
    T.wait(function()
      return other:lua([[return (require('shelf.mirror').item('prompt', ...) or {}).title]], item.id)
        == 'from editor one'
    end, 'the second editor to see the create')

    -- Made there, seen here.
    other:lua([[require('shelf').update('prompt', ..., { title = 'renamed in editor two' })]], item.id)
    T.wait(function()
      local s = require('shelf.mirror').item('prompt', item.id)
      return s and s.title == 'renamed in editor two'
    end, 'this editor to see the update')
    T.eq('one', T.get('prompt', item.id).content, 'content unchanged')

    other:lua([[require('shelf').delete('prompt', ...)]], item.id)
    T.wait(function()
      return require('shelf.mirror').item('prompt', item.id) == nil
    end, 'this editor to see the delete')

    -- A write by another program.
    local id = '5e1f5e1f-0000-4000-8000-000000000001'
    local sql = string.format([[insert into context_blocks (id, title, content, tags, created_at,
      updated_at) values ('%s', 'from the shell', 'sql', '["cli"]', '2026-01-01T00:00:00.000000+00:00',
      '2026-01-01T00:00:00.000000+00:00')]], id)
    local out = vim.fn.system({ 'sqlite3', db, sql })
    T.eq(0, vim.v.shell_error, 'sqlite3: ' .. out)
    T.wait(function()
      local s = require('shelf.mirror').item('block', id)
      return s and s.title == 'from the shell'
    end, 'the sqlite3 shell write to show up')
    T.eq({ 'cli' }, require('shelf.mirror').item('block', id).tags, 'tags from the shell')
    -- An update from the shell that does not touch updated_at still shows.
    out = vim.fn.system({ 'sqlite3', db, "update context_blocks set title = 'edited in shell' where id = '" .. id .. "'" })
    T.eq(0, vim.v.shell_error, 'sqlite3 update: ' .. out)
    T.wait(function()
      return (require('shelf.mirror').item('block', id) or {}).title == 'edited in shell'
    end, 'the shell update to show up')
    T.wait(function()
      return other:lua([[return (require('shelf.mirror').item('block', ...) or {}).title]], id) == 'edited in shell'
    end, 'the second editor to see the shell update')
    out = vim.fn.system({ 'sqlite3', db, "delete from context_blocks where id = '" .. id .. "'" })
    T.wait(function()
      return require('shelf.mirror').item('block', id) == nil
    end, 'the shell delete to show up')
  end)
  other:stop()
  if not ok then
    error(err, 0)
  end
end)
