-- A create that reached the database but whose answer never came back, sent
-- again, is stored once: the id is chosen once per new item in Lua (an edit
-- buffer keeps it until a :w is confirmed; an API caller passes it again).
-- The answer is lost for real by :Shelf restart while SQLite commits the
-- insert (the stopping shelfd answers "stopped" for a job it committed), and
-- by SIGKILL after the row is in the database.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local shelf = require('shelf')
local client = require('shelf.client')
local edit = require('shelf.edit')
-- The :w tests need the save in flight when :w returns.
edit.write_wait = 0

-- The CLI waits for a lock (shelfd's write may hold one) instead of failing.
local function sqlite(db, sql)
  local out = vim.fn.system({ 'sqlite3', '-cmd', '.timeout 10000', db, sql })
  T.eq(0, vim.v.shell_error, 'sqlite3: ' .. out)
  return vim.trim(out)
end

-- Each insert into prompts spends a while inside its transaction, so the
-- restart lands while the row is being written (and then committed): long
-- enough to be seen holding the lock, well within the 3 s a stopping shelfd
-- is given on a busy machine.
local function slow_inserts(db, on)
  if on then
    sqlite(db, [[create table if not exists big(x);
      delete from big;
      with recursive c(x) as (select 1 union all select x + 1 from c where x < 1200) insert into big select x from c;
      create trigger slow_insert before insert on prompts begin select sum(a.x % (b.x + 1)) from big a, big b; end;]])
  else
    sqlite(db, 'drop trigger slow_insert; drop table big;')
  end
end

local function count(db, title)
  return sqlite(db, "select count(*) from prompts where title = '" .. title .. "'")
end

-- Restart shelfd while the write in flight is inside SQLite; wait until
-- the old one committed it and the new one is loaded.
local function restart_mid_insert(db, title, saving)
  T.wait(saving, 'the create is under way')
  -- Inside SQLite, not still queued behind another job (a stopping shelfd
  -- answers queued jobs without running them): it holds the write lock.
  T.wait(function()
    local out = vim.fn.system({ 'sqlite3', db, 'BEGIN IMMEDIATE; ROLLBACK;' })
    return vim.v.shell_error ~= 0 and out:find('locked', 1, true) ~= nil
  end, 'the insert holding the write lock', 20000)
  local pid = client.pid()
  vim.cmd('Shelf restart')
  T.wait(function() return count(db, title) == '1' end, 'the old shelfd committed the row', 20000)
  T.wait(function()
    local p = client.pid()
    return p and p ~= pid and client.status().ready
  end, 'a new shelfd', 20000)
end

T.test('API: a create whose answer was lost, sent again with its id, is one item', function()
  U.clean()
  local db = T.fresh()
  local id = shelf.new_id()
  T.ok(id:match('^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$') and #id == 36, 'a version 4 UUID: ' .. id)
  T.ok(shelf.new_id() ~= id, 'a new one each time')
  slow_inserts(db, true)
  local first
  shelf.create('prompt', { id = id, title = 'api once', content = 'v1' }, function(err) first = err or 'ok' end)
  restart_mid_insert(db, 'api once', function()
    local l = client.status().loading
    return l ~= nil and l.actions ~= nil and l.actions ~= 0
  end)
  T.wait(function() return first ~= nil end, 'the first answer')
  T.ok(first ~= 'ok', 'the first create was not confirmed: ' .. tostring(first))
  slow_inserts(db, false)
  local err, item = T.await(function(cb)
    shelf.create('prompt', { id = id, title = 'api once', content = 'v1' }, cb)
  end, 'the create sent again')
  T.eq(nil, err, 'answered')
  T.eq(id, item.id, 'the same item')
  T.eq('1', count(db, 'api once'), 'one row')
  -- Sent again with other text (the caller changed it meanwhile): still one
  -- row, holding the newer text.
  err, item = T.await(function(cb)
    shelf.create('prompt', { id = id, title = 'api once', content = 'v2' }, cb)
  end, 'a third send')
  T.eq(nil, err, 'answered')
  T.eq('1', count(db, 'api once'), 'still one row')
  T.eq('v2', sqlite(db, "select content from prompts where id = '" .. id .. "'"), 'the newer text')
  T.eq('v2', T.get('prompt', id).content, 'shelfd has it')
  T.eq(1, #vim.tbl_filter(function(p) return p.title == 'api once' end, shelf.items('prompt')), 'one in the mirror')
  -- An id that is no UUID is refused before anything is stored.
  err = T.await(function(cb) shelf.create('prompt', { id = 'nope', title = 'bad id' }, cb) end, 'bad id')
  T.ok(err and err:find('UUID', 1, true), tostring(err))
end)

T.test(':w after :Shelf restart ate the answer of a create that landed: one row', function()
  U.clean()
  local db = T.fresh()
  local nbuf = edit.new('prompt', { content = 'landed once' })
  vim.api.nvim_buf_set_lines(nbuf, 1, 2, false, { 'title: Restart mid create' })
  slow_inserts(db, true)
  U.reset()
  vim.api.nvim_buf_call(nbuf, function() vim.cmd('write') end)
  local id = edit.info(nbuf).create_id
  T.ok(id, 'the buffer chose its id')
  restart_mid_insert(db, 'Restart mid create', function() return edit.info(nbuf).saving end)
  T.wait(function() return not edit.info(nbuf).saving end, 'the first :w answered')
  T.eq(true, vim.bo[nbuf].modified, 'not confirmed: still modified')
  slow_inserts(db, false)
  vim.api.nvim_buf_call(nbuf, function() vim.cmd('write') end)
  T.wait(function() return not vim.bo[nbuf].modified end, 'the second :w confirmed', 20000)
  T.eq('1', count(db, 'Restart mid create'), 'one row')
  T.eq(id, edit.info(nbuf).id, 'the buffer is that row')
  T.eq(edit.name('prompt', id, 'Restart mid create'), vim.api.nvim_buf_get_name(nbuf), 'and named after it')
  T.eq(1, #vim.tbl_filter(function(p) return p.title == 'Restart mid create' end, shelf.items('prompt')),
    'one in the mirror')
end)

T.test(':w after SIGKILL of shelfd once its create was stored: one row', function()
  U.clean()
  local db = T.fresh({ helper = { max_restarts = 3 } })
  local nbuf = edit.new('prompt', { content = 'stored, then killed' })
  vim.api.nvim_buf_set_lines(nbuf, 1, 2, false, { 'title: Killed after commit' })
  local pid = client.pid()
  -- Stopped, shelfd leaves the create in its input; the row is then stored
  -- as that create would have stored it, and shelfd dies before answering.
  vim.loop.kill(pid, 19)
  vim.api.nvim_buf_call(nbuf, function() vim.cmd('write') end)
  local id = edit.info(nbuf).create_id
  T.ok(id, 'the buffer chose its id')
  sqlite(db, string.format("insert into prompts (id, title, content, tags, created_at, updated_at) values "
    .. "('%s', 'Killed after commit', 'stored, then killed', '[]', 'a', 'a')", id))
  vim.loop.kill(pid, 9)
  T.wait(function()
    local p = client.pid()
    return p and p ~= pid and client.status().ready
  end, 'a new shelfd', 20000)
  T.wait(function() return not edit.info(nbuf).saving end, 'the first :w answered')
  T.eq(true, vim.bo[nbuf].modified, 'not confirmed: still modified')
  vim.api.nvim_buf_call(nbuf, function() vim.cmd('write') end)
  T.wait(function() return not vim.bo[nbuf].modified end, 'the second :w confirmed', 20000)
  T.eq('1', count(db, 'Killed after commit'), 'one row')
  T.eq(id, edit.info(nbuf).id, 'the buffer is that row')
end)
