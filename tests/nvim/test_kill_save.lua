-- shelfd killed (SIGKILL) in the middle of a save from an edit buffer: Lua
-- restarts it, the buffer keeps the user's text and stays modified, nothing
-- half-written is left in the database, and :w afterwards lands once.
-- A trigger makes each write spend seconds inside its SQLite transaction,
-- so the kill lands while the save is being written.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local client = require('shelf.client')
-- :w returns at once, without waiting for the confirmation, so the kill
-- lands while the save is under way.
require('shelf.edit').write_wait = 0

local function sqlite(db, sql)
  local out = vim.fn.system({ 'sqlite3', db, sql })
  T.eq(0, vim.v.shell_error, 'sqlite3: ' .. out)
  return vim.trim(out)
end

local function slow_writes(db, on)
  if on then
    sqlite(db, [[create table if not exists big(x);
      delete from big;
      with recursive c(x) as (select 1 union all select x + 1 from c where x < 6000) insert into big select x from c;
      create trigger slow_update before update on prompts begin select sum(a.x % (b.x + 1)) from big a, big b; end;
      create trigger slow_insert before insert on prompts begin select sum(a.x % (b.x + 1)) from big a, big b; end;]])
  else
    sqlite(db, 'drop trigger slow_update; drop trigger slow_insert; drop table big;')
  end
end

-- Whether a connection holds the library's write lock: sqlite3 (no busy
-- timeout) cannot begin a write transaction while shelfd's is open.
local function write_locked(db)
  local out = vim.fn.system({ 'sqlite3', db, 'BEGIN IMMEDIATE; ROLLBACK;' })
  if vim.v.shell_error == 0 then
    return false
  end
  T.ok(out:find('locked', 1, true), 'sqlite3: ' .. out)
  return true
end

local function kill_mid_save(db, bufs)
  local pid = client.pid()
  T.ok(pid, 'shelfd pid')
  T.eq(false, write_locked(db), 'no write under way before :w')
  for _, b in ipairs(bufs) do
    vim.api.nvim_buf_call(b, function() vim.cmd('write') end)
  end
  -- A save is inside its transaction (each takes seconds) once shelfd holds
  -- the write lock.
  T.wait(function() return write_locked(db) end, 'a save inside its transaction', 20000)
  for _, b in ipairs(bufs) do
    T.eq(true, require('shelf.edit').info(b).saving, 'the save is under way')
  end
  T.eq(0, vim.loop.kill(pid, 'sigkill'), 'SIGKILL sent')
  T.wait(function() return U.message('shelfd stopped unexpectedly') ~= nil end, 'the crash reported', 10000)
  T.wait(function()
    local p = client.pid()
    return p and p ~= pid and client.status().ready
  end, 'shelfd restarted by Lua and loaded', 20000)
  for _, b in ipairs(bufs) do
    T.wait(function() return require('shelf.edit').info(b).saving == false end, 'the save answered')
  end
end

T.test('SIGKILL during :w of an edit and of a new prompt: restarted, text kept, :w lands once', function()
  U.clean()
  local db = T.fresh()
  local p = U.create('prompt', { title = 'Keep me', content = 'v1' })
  require('shelf.edit').open('prompt', p.id)
  U.loaded()
  local buf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(buf, 6, 7, false, { 'v2 typed before the crash' })
  vim.cmd('vsplit')
  local nbuf = require('shelf.edit').new('prompt', { content = 'brand new' })
  vim.api.nvim_buf_set_lines(nbuf, 1, 2, false, { 'title: Created during the crash' })
  slow_writes(db, true)
  U.reset()
  kill_mid_save(db, { buf, nbuf })
  -- Each save failed with a message; the buffers keep the text, modified.
  T.ok(U.message('stays modified'), U.all_messages())
  T.eq(true, vim.api.nvim_buf_get_option(buf, 'modified'), 'edit still modified')
  T.eq('v2 typed before the crash', vim.api.nvim_buf_get_lines(buf, 6, 7, false)[1], 'edit text kept')
  T.eq(true, vim.api.nvim_buf_get_option(nbuf, 'modified'), 'new buffer still modified')
  T.eq('title: Created during the crash', vim.api.nvim_buf_get_lines(nbuf, 1, 2, false)[1], 'new text kept')
  -- The killed transactions left nothing behind.
  T.eq('v1', sqlite(db, "select content from prompts where id = '" .. p.id .. "'"), 'old content')
  T.eq('0', sqlite(db, "select count(*) from prompts where title = 'Created during the crash'"), 'no row yet')
  slow_writes(db, false)
  for _, b in ipairs({ buf, nbuf }) do
    vim.api.nvim_buf_call(b, function() vim.cmd('write') end)
  end
  T.wait(function()
    return not vim.api.nvim_buf_get_option(buf, 'modified') and not vim.api.nvim_buf_get_option(nbuf, 'modified')
  end, 'both saves after the restart', 20000)
  T.eq('v2 typed before the crash', sqlite(db, "select content from prompts where id = '" .. p.id .. "'"), 'stored')
  T.eq('1', sqlite(db, "select count(*) from prompts where title = 'Created during the crash'"), 'created once')
  T.eq('v2 typed before the crash', T.get('prompt', p.id).content, 'shelfd has it')
end)
