-- Content on demand: shelfd keeps no content, so every reader of it (edit
-- buffers, insert, the tab's yank, picker previews, the builder) asks with a
-- get query and never with a blocking request; what they show is what the
-- database has at that moment, and a missing item is said plainly.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local shelf = require('shelf')
local client = require('shelf.client')

local function db_exec(db, sql)
  local out = vim.fn.system({ 'sqlite3', db, sql })
  T.eq(0, vim.v.shell_error, 'sqlite3: ' .. out)
end

-- Run fn, then wait for done(); every vim.rpcrequest meanwhile (a blocking
-- request: Neovim waits for shelfd) is recorded and must not happen.
local function without_blocking(what, fn, done)
  local orig = vim.rpcrequest
  local asked = {}
  vim.rpcrequest = function(chan, method, ...)
    table.insert(asked, method)
    return orig(chan, method, ...)
  end
  local ok, err = pcall(function()
    fn()
    T.wait(done, what)
  end)
  vim.rpcrequest = orig
  T.ok(ok, tostring(err))
  T.eq({}, asked, what .. ': blocking requests')
end

T.test('opening, inserting, yanking and previewing make no blocking request', function()
  U.clean()
  T.fresh()
  local p = U.create('prompt', { title = 'Greeting', content = 'hello there' })
  local b = U.create('block', { title = 'Facts', content = 'one\ntwo' })

  -- An edit buffer: shown at once, loading and not modifiable, then filled.
  local edit = require('shelf.edit')
  without_blocking('open', function()
    edit.open('prompt', p.id)
    T.ok(edit.info().loading, 'marked loading right after opening')
    T.eq(false, vim.bo.modifiable, 'not modifiable while loading')
    T.eq('title: Greeting', U.lines()[2], 'the header from the mirror at once')
  end, function()
    return not edit.info().loading
  end)
  T.eq('hello there', U.lines()[#U.lines()], 'the content')
  T.eq(true, vim.bo.modifiable, 'modifiable once loaded')

  -- Insert: where the cursor was when asked, though it moved meanwhile.
  vim.cmd('enew!')
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'ab', 'cd' })
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  without_blocking('insert', function()
    shelf.insert('prompt', p.id)
    vim.api.nvim_win_set_cursor(0, { 2, 1 })
  end, function()
    return require('shelf.insert')._pending == 0
  end)
  T.eq({ 'ahello thereb', 'cd' }, U.lines(), 'inserted where the cursor was when asked')

  -- The tab's yank.
  vim.fn.setreg('"', 'old')
  vim.cmd('Shelf')
  local tab = U.tab()
  T.wait(function() return U.find('Facts', tab) ~= nil end, 'the block in the tab')
  U.cursor_to('Facts')
  without_blocking('yank', function()
    U.keys('y')
  end, function()
    return vim.fn.getreg('"') == 'one\ntwo\n'
  end)

  -- A picker preview: the mirror's header and "loading", then the content.
  local native = require('shelf.picker.native')
  local pbuf = vim.api.nvim_create_buf(false, true)
  without_blocking('preview', function()
    native.preview(pbuf, { kind = 'block', id = b.id })
    T.eq({ '(loading…)' }, vim.api.nvim_buf_get_lines(pbuf, 0, -1, false), 'loading at first')
  end, function()
    return vim.api.nvim_buf_get_lines(pbuf, 0, -1, false)[1] == 'one'
  end)
  T.eq({ 'one', 'two' }, vim.api.nvim_buf_get_lines(pbuf, 0, -1, false), 'the content')
  -- The selection moved on before the first answer: only the last shows.
  native.preview(pbuf, { kind = 'block', id = b.id })
  native.preview(pbuf, { kind = 'prompt', id = p.id })
  T.wait(function()
    return vim.api.nvim_buf_get_lines(pbuf, 0, -1, false)[1] == 'hello there'
  end, 'the last entry previewed')
  -- Both answers are in once a later query is answered (answers come in order).
  T.get('prompt', p.id)
  T.eq({ 'hello there' }, vim.api.nvim_buf_get_lines(pbuf, 0, -1, false), 'the earlier entry never shows')
end)

T.test('an edit buffer shows the content the database has when it is opened', function()
  U.clean()
  local db = T.fresh()
  local p = U.create('prompt', { title = 'Changing', content = 'first version' })
  -- Changed behind shelfd's back: without the triggers, no change event
  -- and no new stamp, so only a read of the row can see it.
  db_exec(db, 'drop trigger prompts_log_upd; drop trigger prompts_stamp;'
    .. "update prompts set content = 'second version' where id = '" .. p.id .. "';")
  require('shelf.edit').open('prompt', p.id)
  U.loaded()
  T.eq('second version', U.lines()[#U.lines()], 'the content as stored now')
  T.eq('second version', T.get('prompt', p.id).content, 'and what get answers')
end)

T.test('a deleted item: get, open and insert say so clearly', function()
  U.clean()
  local db = T.fresh()
  local p = U.create('prompt', { title = 'Doomed', content = 'bye' })
  -- Deleted where shelfd does not hear of it.
  db_exec(db, 'drop trigger prompts_log_del;' .. "delete from prompts where id = '" .. p.id .. "';")
  local item, err = T.get('prompt', p.id)
  T.eq(nil, item, 'no item')
  T.ok(err and err:find('there is no prompt with id ' .. p.id, 1, true), 'the error: ' .. tostring(err))
  U.reset()
  require('shelf.edit').open('prompt', p.id)
  U.loaded()
  T.ok(U.message('there is no prompt with id ' .. p.id), U.all_messages())
  T.ok(require('shelf.edit').info().deleted, 'the buffer knows it is gone')
  U.reset()
  vim.cmd('enew!')
  shelf.insert('prompt', p.id)
  T.eq({ '' }, U.lines(), 'nothing inserted')
  T.ok(U.message('cannot insert the prompt: there is no prompt'), U.all_messages())
  T.ok(client.running(), 'shelfd still runs')
end)
