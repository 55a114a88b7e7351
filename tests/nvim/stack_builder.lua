-- The prompt builder on the local Supabase stack (run by run_stack.sh):
-- composing from your text and three blocks, moving and removing lines,
-- insert, yank, save as a prompt (the row's content byte for byte), blocks
-- edited and deleted in SQL while the builder is open (realtime), a
-- temporary block saved into a real row, a 5 MB block, and shelfd killed
-- while composing.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local S = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/stackenv_support.lua')
local env, psql = S.env, S.psql
local shelf = require('shelf')
local client = require('shelf.client')
local builder = shelf.builder

-- Block contents are read asynchronously: wait for every one (and for the
-- uses of the prompt queued before, which run first).
local function settled()
  T.await(function(cb) builder.when_loaded(cb) end, 'the builder settled', 20000)
end

-- The assembled prompt once every block's content is in.
local function text()
  return (T.await(function(cb) builder.text(cb) end, 'the builder text', 20000))
end

local function ids()
  return vim.tbl_map(function(it) return it.id end, builder.items())
end

local function typed(keys)
  vim.cmd('let &undolevels = &undolevels')
  U.keys(keys)
  vim.cmd('doautocmd <nomodeline> TextChanged')
end

local function hex(s)
  return (s:gsub('.', function(ch) return string.format('%02x', ch:byte()) end))
end

local a, b, c

T.test('sign in and compose from your text and three blocks', function()
  shelf.setup({
    backend = 'supabase',
    supabase = { url = env.SHELF_SUPABASE_URL, anon_key = env.SHELF_SUPABASE_ANON_KEY },
    helper = { log = vim.env.SHELF_TEST_TMP .. '/shelfd.log' },
  })
  local err = T.await(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login')
  T.eq(nil, err, 'login')
  T.ready()
  T.wait(function() return client.status().realtime == 'joined' end, 'realtime joined', 15000)
  a = U.create('block', { title = 'Alpha', content = 'alpha é\nline two' })
  b = U.create('block', { title = 'Beta', content = 'beta' })
  c = U.create('block', { title = 'Gamma', content = 'gamma\n' })
  for _, x in ipairs({ a, b, c }) do
    T.eq(true, builder.add('block', x.id), 'add ' .. x.title)
  end
  local buf = builder.open()
  vim.api.nvim_buf_set_lines(buf, 0, 1, false, { 'Check these:', '' })
  typed('')
  T.eq('Check these:\n\nalpha é\nline two\n\nbeta\n\ngamma\n', text(), 'assembled')
  -- Reorder (Alpha last) and remove (Beta), as lines.
  vim.api.nvim_win_set_cursor(0, { 3, 0 })
  typed('dd')
  vim.api.nvim_win_set_cursor(0, { 4, 0 })
  typed('p')
  T.eq({ b.id, c.id, a.id }, ids(), 'reordered')
  vim.api.nvim_win_set_cursor(0, { 3, 0 })
  typed('dd')
  T.eq({ c.id, a.id }, ids(), 'removed')
  typed('u')
  T.eq({ b.id, c.id, a.id }, ids(), 'and back')
end)

T.test('insert, yank and save as a prompt: the stored row holds the prompt byte for byte', function()
  local want = text()
  vim.cmd('wincmd p')
  local tbuf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(tbuf, 0, -1, false, { '' })
  vim.cmd('Shelf build')
  U.keys('\\i')
  settled()
  T.eq(vim.split(want, '\n', { plain = true }), U.lines(tbuf), 'inserted')
  vim.cmd('Shelf build')
  vim.cmd('Shelf build yank z')
  settled()
  T.eq(want, vim.fn.getreg('z'), 'yanked')
  vim.cmd('Shelf build save')
  settled()
  local ebuf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(ebuf, 1, 2, false, { 'title: Built on the stack' })
  vim.cmd('write')
  T.wait(function() return require('shelf.edit').info(ebuf).id ~= nil end, 'the save')
  local id = require('shelf.edit').info(ebuf).id
  T.eq(hex(want), psql("select encode(convert_to(content, 'UTF8'), 'hex') from prompts where id = '" .. id .. "'"),
    'the row, byte for byte')
end)

T.test('blocks edited and deleted in SQL while the builder is open', function()
  psql("update context_blocks set title = 'Beta from SQL', content = 'beta from SQL', updated_at = now() where id = '"
    .. b.id .. "'")
  T.wait(function() return text():find('beta from SQL', 1, true) ~= nil end, 'the edit followed')
  T.eq('Beta from SQL', builder.items()[1].title, 'the new title')
  T.ok(U.find('¶ Beta from SQL', require('shelf.builder.view').buf()), 'on its line')
  psql("delete from context_blocks where id = '" .. c.id .. "'")
  T.wait(function() return builder.items()[2].gone end, 'marked as gone')
  T.eq('Check these:\n\nbeta from SQL\n\nalpha é\nline two', text(), 'left out')
  T.ok(U.message("'Gamma' was deleted"), U.all_messages())
end)

T.test('a temporary block added, then saved: a real row, in place', function()
  local _, t = T.await(function(cb)
    shelf.create('block', { title = 'Temp', content = 'temp text', temporary = true }, cb)
  end)
  builder.add('block', t.id)
  T.eq('0', psql("select count(*) from context_blocks where id = '" .. t.id .. "'"), 'not in the database')
  T.eq(nil, (T.await(function(cb) shelf.save_temporary(t.id, cb) end)), 'saved')
  T.wait(function() return builder.items()[4].temporary == false end, 'no longer temporary')
  T.eq(t.id, builder.items()[4].id, 'in place')
  T.eq('temp text', psql("select content from context_blocks where id = '" .. t.id .. "'"), 'a real row')
end)

T.test('a 5 MB block', function()
  local big = string.rep(string.rep('y', 1023) .. '\n', 5 * 1024)
  local item = U.create('block', { title = 'Big', content = big })
  T.eq(true, builder.add('block', item.id), 'added')
  T.ok(text():sub(-#big) == big, 'all of it at the end')
  psql("update context_blocks set content = content || 'z', updated_at = now() where id = '" .. item.id .. "'")
  T.wait(function() return text():sub(-2) == '\nz' end, 'a change to it (over 1 MB: fetched whole)', 20000)
end)

T.test('shelfd killed while composing loses nothing', function()
  local _, t = T.await(function(cb)
    shelf.create('block', { title = 'Temp 2', content = 'kept by Neovim', temporary = true }, cb)
  end)
  builder.add('block', t.id)
  local want = text()
  local pid = client.pid()
  vim.loop.kill(pid, 9)
  T.wait(function()
    return client.pid() and client.pid() ~= pid and client.status().ready
  end, 'a new shelfd', 20000)
  T.wait(function() return T.get('block', t.id) ~= nil end, 'the temporary block given back')
  T.eq(want, text(), 'the same prompt')
  T.eq(0, #vim.tbl_filter(function(i) return i.gone and i.id ~= c.id end, builder.items()), 'nothing else gone')
end)
