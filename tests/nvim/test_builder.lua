-- The prompt builder end to end with the real shelfd: composing from your
-- text and blocks, moving and removing block lines as text, using the
-- result (insert, yank, save as a prompt), the library changing underneath
-- (from the API, another Neovim, the sqlite3 shell), temporary blocks, a
-- 5 MB block, and shelfd dying while you compose.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local builder = shelf.builder
local view = require('shelf.builder.view')

-- Block contents are read asynchronously: wait for every one (and for the
-- uses of the prompt queued before, which run first).
local function settled()
  T.await(function(cb) builder.when_loaded(cb) end, 'the builder settled')
end

-- The assembled prompt once every block's content is in.
local function text()
  return (T.await(function(cb) builder.text(cb) end, 'the builder text'))
end

local function fresh()
  U.clean()
  builder.clear()
  U.reset()
  return T.fresh()
end

-- Three blocks and the builder opened on them, with your text typed in.
local function compose()
  local a = U.create('block', { title = 'Alpha', content = 'alpha one\nalpha two' })
  local b = U.create('block', { title = 'Beta', content = 'beta' })
  local c = U.create('block', { title = 'Gamma', content = 'gamma\n' })
  for _, x in ipairs({ a, b, c }) do
    T.eq(true, builder.add('block', x.id), 'add ' .. x.title)
  end
  local buf = builder.open()
  vim.api.nvim_buf_set_lines(buf, 0, 1, false, { 'Review this:', '' })
  return a, b, c, buf
end

local function ids()
  return vim.tbl_map(function(it) return it.id end, builder.items())
end

-- Which block each block line stands for, by title, and your text's lines.
local function shown(buf)
  local out = {}
  for _, l in ipairs(U.lines(buf)) do
    table.insert(out, (l:gsub(' %[[%x%-]+%]$', '')))
  end
  return out
end

-- A normal-mode command typed in the builder, with its TextChanged.
local function typed(keys)
  -- Each command its own undo step, as when typed.
  vim.cmd('let &undolevels = &undolevels')
  U.keys(keys)
  vim.cmd('doautocmd <nomodeline> TextChanged')
end

T.test('compose from your text and three blocks: the web app rule, and what it weighs', function()
  fresh()
  local a, b, c, buf = compose()
  T.eq('shelf://builder', vim.api.nvim_buf_get_name(buf), 'the buffer name')
  T.eq(buf, vim.api.nvim_get_current_buf(), 'the builder is current')
  typed('') -- the text just set is read back like any edit
  T.eq({ 'Review this:', '', '¶ Alpha', '¶ Beta', '¶ Gamma' }, shown(buf), 'text on top, a line a block')
  T.eq({ a.id, b.id, c.id }, ids(), 'in the order added')
  T.eq('Review this:\n\nalpha one\nalpha two\n\nbeta\n\ngamma\n', text(), 'assembled')
  local w = builder.weight()
  T.eq(#text(), w.chars, 'chars (all ASCII)')
  T.eq(8, w.lines, 'lines')
  T.eq(math.ceil(w.chars / 4), w.tokens, 'tokens as chars/4')
  -- The weight line says it, between your text and the blocks.
  local marks = vim.api.nvim_buf_get_extmarks(buf, vim.api.nvim_create_namespace('shelf_builder'), 0, -1,
    { details = true })
  local head
  for _, m in ipairs(marks) do
    if m[4].virt_lines then
      head = m[4].virt_lines[1][1][1]
      T.eq(1, m[2], 'below your text')
    end
  end
  T.ok(head and head:find('3 blocks · ~' .. w.tokens .. ' tokens (chars/4) · ' .. w.chars .. ' chars · 8 lines', 1, true),
    tostring(head))
  -- Empty text contributes nothing; an empty block neither.
  builder.set_text('  \n')
  local e = U.create('block', { title = 'Empty', content = '' })
  builder.add('block', e.id)
  T.eq('alpha one\nalpha two\n\nbeta\n\ngamma\n', text(), 'no text, no empty block')
  -- Unicode: characters, not bytes.
  builder.set_text('héllo ✓')
  T.eq(7 + 2 + #'alpha one\nalpha two\n\nbeta\n\ngamma\n', builder.weight().chars, 'characters')
end)

T.test('reorder with dd/p and :m, remove with dd, and u undoes it', function()
  fresh()
  local a, b, c, buf = compose()
  typed('')
  -- Alpha to the end: dd on its line, p below Gamma.
  vim.api.nvim_win_set_cursor(0, { 3, 0 })
  typed('dd')
  T.eq({ b.id, c.id }, ids(), 'deleting the line removes the block')
  vim.api.nvim_win_set_cursor(0, { 4, 0 })
  typed('p')
  T.eq({ b.id, c.id, a.id }, ids(), 'putting it back below Gamma')
  T.eq('Review this:\n\nbeta\n\ngamma\n\n\nalpha one\nalpha two', text(), 'assembled in the new order')
  -- :m moves lines with their marks.
  vim.cmd('5m2')
  typed('')
  T.eq({ a.id, b.id, c.id }, ids(), ':m')
  -- Removing: dd, then u brings it back with its content.
  vim.api.nvim_win_set_cursor(0, { 4, 0 })
  typed('dd')
  T.eq({ a.id, c.id }, ids(), 'Beta removed')
  T.eq('Review this:\n\nalpha one\nalpha two\n\ngamma\n', text(), 'left out')
  typed('u')
  T.eq({ a.id, b.id, c.id }, ids(), 'u brings it back')
  -- The API sees the same.
  T.eq(true, builder.remove(c.id), 'remove(id)')
  T.eq(true, builder.remove('block', a.id), "remove('block', id)")
  T.eq(true, builder.remove(1), 'remove(position)')
  T.eq({}, ids(), 'all removed')
  T.eq({ 'Review this:', '' }, U.lines(buf), 'their lines went')
end)

T.test('a block line cannot be edited into text; text below the blocks goes up; a copy is dropped', function()
  fresh()
  local a, b, c, buf = compose()
  typed('')
  local before = U.lines(buf)
  -- Typing into a block line: put back, with a message.
  vim.api.nvim_win_set_cursor(0, { 4, 0 })
  typed('x')
  T.eq(before, U.lines(buf), 'the block line is put back')
  T.ok(U.message('block lines are not edited'), U.all_messages())
  T.eq({ a.id, b.id, c.id }, ids(), 'blocks unchanged')
  -- Its id edited away (D from the middle): put back too.
  vim.api.nvim_win_set_cursor(0, { 4, 4 })
  typed('D')
  T.eq(before, U.lines(buf), 'the line with its id')
  -- J of your text's last line onto the first block: both kept.
  vim.api.nvim_buf_set_lines(buf, 1, 2, false, { 'and tell me' })
  typed('')
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  typed('J')
  T.eq({ 'Review this:', 'and tell me', '¶ Alpha', '¶ Beta', '¶ Gamma' }, shown(buf), 'J: the text stays text')
  -- A line typed below the blocks joins your text.
  vim.api.nvim_win_set_cursor(0, { 5, 0 })
  U.keys('oplease<Esc>')
  T.eq({ 'Review this:', 'and tell me', 'please', '¶ Alpha', '¶ Beta', '¶ Gamma' }, shown(buf), 'moved up')
  T.eq('Review this:\nand tell me\nplease\n\nalpha one\nalpha two\n\nbeta\n\ngamma\n', text(), 'assembled')
  -- yyp of a block line: the copy goes.
  vim.api.nvim_win_set_cursor(0, { 5, 0 })
  typed('yyp')
  T.eq({ a.id, b.id, c.id }, ids(), 'once each')
  T.eq(6, #U.lines(buf), 'the copy dropped')
  T.ok(U.message('is in the builder once'), U.all_messages())
end)

T.test('insert at the cursor of the window you came from, placeholders asked once', function()
  fresh()
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'before', 'after' })
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  local target = vim.api.nvim_get_current_win()
  local tbuf = vim.api.nvim_get_current_buf()
  local a = U.create('block', { title = 'Ctx', content = 'context for {{who}}' })
  builder.add('block', a.id)
  local buf = builder.open()
  T.ok(vim.api.nvim_get_current_win() ~= target, 'the builder opened in its own window')
  vim.api.nvim_buf_set_lines(buf, 0, 1, false, { 'Hi {{who}}, see {{ what }}.' })
  typed('')
  U.answer('Ada', 'this')
  U.keys('\\i')
  settled()
  T.eq({ 'before', 'Hi Ada, see this.', '', 'context for Ada', 'after' }, U.lines(tbuf), 'inserted below line 1')
  T.eq({ 'who: ', 'what: ' }, vim.tbl_map(function(x) return x.question end, U.asked), 'each asked once')
  U.no_answers_left()
  -- :Shelf build insert typed in another window inserts there.
  vim.api.nvim_set_current_win(target)
  vim.api.nvim_buf_set_lines(tbuf, 0, -1, false, { '' })
  U.answer('Bo', 'it')
  vim.cmd('Shelf build insert')
  settled()
  T.eq({ 'Hi Bo, see it.', '', 'context for Bo' }, U.lines(tbuf), 'into the current window')
end)

T.test('yank puts the prompt, byte for byte, into a register', function()
  fresh()
  local _, _, _, buf = compose()
  typed('')
  local want = text()
  local reg = vim.fn.has('clipboard') == 1 and '+' or '"'
  vim.fn.setreg(reg, 'old')
  U.keys('\\y')
  settled()
  T.eq(want, vim.fn.getreg(reg), 'register ' .. reg)
  T.ok(U.message('into register ' .. reg), U.all_messages())
  U.keys('"a\\y')
  settled()
  T.eq(want, vim.fn.getreg('a'), 'a named register')
  vim.cmd('Shelf build yank b')
  settled()
  T.eq(want, vim.fn.getreg('b'), ':Shelf build yank b')
  T.eq('v', vim.fn.getregtype('b'), 'characterwise: no line break added')
  T.ok(buf, 'buf')
end)

T.test('save as a new saved prompt: its content is the assembled text byte for byte', function()
  fresh()
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'scratch' })
  local _, _, _, buf = compose()
  typed('')
  local want = text()
  U.keys('\\s')
  settled()
  local ebuf = vim.api.nvim_get_current_buf()
  T.ok(vim.api.nvim_buf_get_name(ebuf):find('^shelf://new/prompt/'), vim.api.nvim_buf_get_name(ebuf))
  T.ok(vim.fn.bufwinnr(buf) > 0, 'the builder stays in its window')
  vim.api.nvim_buf_set_lines(ebuf, 1, 2, false, { 'title: Built' })
  vim.cmd('write')
  T.wait(function()
    return require('shelf.edit').info(ebuf).id ~= nil
  end, 'the save')
  local id = require('shelf.edit').info(ebuf).id
  T.eq(want, T.get('prompt', id).content, 'byte for byte')
  -- And in the database file itself.
  local out = vim.fn.system({ 'sqlite3', require('shelf.config').sqlite_path(),
    "select hex(content) from prompts where id = '" .. id .. "'" })
  T.eq(0, vim.v.shell_error, out)
  T.eq(vim.trim(out), (want:gsub('.', function(ch) return string.format('%02X', ch:byte()) end)), 'stored')
end)

T.test('a prompt added puts its content into your text; clear empties and u restores', function()
  fresh()
  local p = U.create('prompt', { title = 'Ask', content = 'Explain {{topic}}.' })
  local _, _, _, buf = compose()
  typed('')
  builder.add('prompt', p.id)
  settled()
  T.eq({ 'Review this:', '', 'Explain {{topic}}.', '¶ Alpha', '¶ Beta', '¶ Gamma' }, shown(buf), 'into the text')
  T.eq(3, #builder.items(), 'no block for a prompt')
  vim.api.nvim_set_current_win(vim.fn.bufwinid(buf))
  U.keys('\\c')
  T.eq({ '' }, U.lines(buf), 'cleared')
  T.eq('', text(), 'nothing left')
  typed('u')
  T.eq(3, #builder.items(), 'u brings the blocks back')
  T.ok(text():find('^Review this:'), 'and the text')
end)

T.test(':Shelf build add by title (completion), from the picker action, and a selection as a temporary block', function()
  fresh()
  U.create('block', { title = 'Style guide', content = 'be brief' })
  U.create('block', { title = 'Style notes', content = 'n' })
  T.eq({ 'guide', 'notes' }, vim.fn.getcompletion('Shelf build add Style ', 'cmdline'), 'completion of titles')
  T.eq({ 'add' }, vim.fn.getcompletion('Shelf build a', 'cmdline'), 'completion of subcommands')
  vim.cmd('Shelf build add Style guide')
  T.eq({ 'Style guide' }, vim.tbl_map(function(i) return i.title end, builder.items()), 'by title')
  U.answer(U.choose('Style notes'))
  vim.cmd('Shelf blocks build')
  T.eq(2, #builder.items(), 'the picker action')
  T.eq({ 'notes' }, vim.fn.getcompletion('Shelf build remove Style n', 'cmdline'), 'remove completes what is in it')
  vim.cmd('Shelf build remove Style notes')
  T.eq(1, #builder.items(), 'removed by title')
  -- Without a title: chosen from what it holds.
  vim.cmd('Shelf build add Style notes')
  U.answer(U.choose('Style notes'))
  vim.cmd('Shelf build remove')
  T.eq({ 'Style guide' }, vim.tbl_map(function(i) return i.title end, builder.items()), 'removed by choice')
  -- A selection: a new temporary block, added.
  vim.cmd('enew')
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'skip', '  first line here', 'second' })
  vim.cmd('2,3Shelf build add')
  T.wait(function() return #builder.items() == 2 end, 'the temporary block')
  local it = builder.items()[2]
  T.eq(true, it.temporary, 'temporary')
  T.eq('first line here', it.title, 'titled by its first line')
  T.eq('be brief\n\n  first line here\nsecond', text(), 'its content')
  U.no_answers_left()
end)

T.test('edits and deletes from another Neovim while the builder is open', function()
  local db = fresh()
  local a, b, c, buf = compose()
  typed('')
  local other = T.other_nvim({ sqlite = { path = db }, helper = { log = T.path('other.log') } })
  local ok, err = pcall(function()
    other:lua([[require('shelf.client').start()]])
    T.wait(function()
      return other:lua([[return require('shelf').status().ready == true]])
    end, 'the second editor to load')
    other:lua([[require('shelf').update('block', ..., { title = 'Beta 2', content = 'beta, edited there' })]], b.id)
    T.wait(function() return text():find('beta, edited there', 1, true) ~= nil end, 'the new content')
    T.eq({ 'Review this:', '', '¶ Alpha', '¶ Beta 2', '¶ Gamma' }, shown(buf), 'the new title')
    other:lua([[require('shelf').delete('block', ...)]], a.id)
    T.wait(function() return builder.items()[1].gone end, 'marked as gone')
    T.eq('Review this:\n\nbeta, edited there\n\ngamma\n', text(), 'left out')
    T.ok(U.message("'Alpha' was deleted: left out of the builder's prompt"), U.all_messages())
    T.eq({ 'Review this:', '', '¶ Alpha', '¶ Beta 2', '¶ Gamma' }, shown(buf), 'its line stays')
    T.ok(builder.weight().gone == 1, 'counted as gone')
    -- A write by another program (the sqlite3 shell).
    local out = vim.fn.system({ 'sqlite3', db, "update context_blocks set content = 'gamma from the shell' where id = '"
      .. c.id .. "'" })
    T.eq(0, vim.v.shell_error, out)
    T.wait(function() return text():find('gamma from the shell', 1, true) ~= nil end, 'the shell edit')
    T.eq(3, #builder.items(), 'no block lost')
    -- The deleted one back (the same id, written by another program): it counts again.
    out = vim.fn.system({ 'sqlite3', db, string.format([[insert into context_blocks (id, title, content, tags,
      created_at, updated_at) values ('%s', 'Alpha again', 'alpha back', '[]', '2026-01-01T00:00:00.000000+00:00',
      '2026-01-01T00:00:00.000000+00:00')]], a.id) })
    T.eq(0, vim.v.shell_error, out)
    T.wait(function() return not builder.items()[1].gone end, 'back')
    T.eq('Review this:\n\nalpha back\n\nbeta, edited there\n\ngamma from the shell', text(), 'in again')
    T.ok(U.message("'Alpha again' back in the library"), U.all_messages())
  end)
  other:stop()
  if not ok then
    error(err, 0)
  end
end)

T.test('a temporary block added, then saved as a real one, stays in place', function()
  fresh()
  local a, _, c = compose()
  local terr, t = T.await(function(cb)
    shelf.create('block', { title = 'Scratch', content = 'scratch text', temporary = true }, cb)
  end)
  T.eq(nil, terr, 'temporary block')
  builder.add('block', t.id)
  builder.remove(2)
  T.eq({ a.id, c.id, t.id }, ids(), 'added')
  T.eq(true, builder.items()[3].temporary, 'temporary')
  T.eq(nil, (T.await(function(cb) shelf.save_temporary(t.id, cb) end)), 'saved')
  T.wait(function() return builder.items()[3].temporary == false end, 'no longer temporary')
  T.eq({ a.id, c.id, t.id }, ids(), 'in place')
  T.ok(text():find('scratch text$'), 'its content')
end)

T.test('a 5 MB block', function()
  fresh()
  local big = string.rep(string.rep('x', 1023) .. '\n', 5 * 1024) -- 5 MiB
  local item = U.create('block', { title = 'Big', content = big })
  local buf = builder.open()
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'Summarise:' })
  typed('')
  T.eq(true, builder.add('block', item.id), 'added')
  T.eq('Summarise:\n\n' .. big, text(), 'all of it')
  T.eq(2, #U.lines(buf), 'one line for it in the buffer')
  T.ok(view.size_text(#big) == '5.0 MiB', view.size_text(#big))
  local marks = vim.api.nvim_buf_get_extmarks(buf, vim.api.nvim_create_namespace('shelf_builder'), { 1, 0 }, { 1, -1 },
    { details = true })
  local sizes = {}
  for _, m in ipairs(marks) do
    if m[4].virt_text then
      table.insert(sizes, m[4].virt_text[1][1])
    end
  end
  T.ok(sizes[1] and sizes[1]:find('5.0 MiB · 5120 lines', 1, true), vim.inspect(sizes))
end)

T.test('shelfd killed while composing loses nothing; temporary blocks come back', function()
  fresh()
  local a, b = compose()
  local _, t = T.await(function(cb)
    shelf.create('block', { title = 'Temp', content = 'temp text', temporary = true }, cb)
  end)
  builder.add('block', t.id)
  typed('')
  -- Typed while shelfd is down.
  local want = text()
  local pid = client.pid()
  vim.loop.kill(pid, 9)
  T.wait(function() return not client.running() or client.pid() ~= pid end, 'the crash noticed')
  T.eq(want, text(), 'the prompt, while shelfd is down')
  T.wait(function()
    return client.pid() and client.pid() ~= pid and client.status().ready
  end, 'a new shelfd', 15000)
  T.wait(function() return T.get('block', t.id) ~= nil end, 'the temporary block given back')
  T.eq(want, text(), 'the prompt, after the restart')
  T.eq(4, #builder.items(), 'all blocks')
  T.eq(0, #vim.tbl_filter(function(i) return i.gone end, builder.items()), 'none gone')
  T.eq('temp text', T.get('block', t.id).content, 'the temporary block is back in shelfd')
  T.eq(nil, U.message('lost'), U.all_messages())
  -- :Shelf restart too, and the builder's window closed meanwhile.
  vim.cmd('close')
  pid = client.pid()
  vim.cmd('Shelf restart')
  T.wait(function()
    return client.pid() ~= pid and client.status().ready and T.get('block', t.id) ~= nil
  end, 'restarted', 15000)
  builder.open()
  T.eq(want, text(), 'after :Shelf restart')
  -- Still in step with the library afterwards.
  U.update('block', b.id, { content = 'beta after' })
  T.wait(function() return text():find('beta after', 1, true) ~= nil end, 'an edit after the restart')
  T.ok(a, 'a')
end)

T.test('User ShelfBuilder fires on changes; text() hands the prompt to another plugin', function()
  fresh()
  local events = T.count_events('ShelfBuilder')
  local a = U.create('block', { title = 'One', content = 'one' })
  builder.add('block', a.id)
  T.ok(events.n >= 1, 'on add')
  local n = events.n
  builder.set_text('hello')
  T.ok(events.n > n, 'on text')
  -- The help's example: a plain function taking the text.
  local chat = {}
  local function send_to_chat(text) table.insert(chat, text) end
  require('shelf').builder.text(send_to_chat)
  settled()
  T.eq({ 'hello\n\none' }, chat, 'handed over')
  -- Wrong input is said, never thrown.
  local ok, why = builder.add('project', a.id, { quiet = true })
  T.eq(nil, ok, 'a folder')
  T.ok(why:find('only context blocks and prompts', 1, true), why)
  ok, why = builder.add('block', '00000000-0000-4000-8000-000000000000', { quiet = true })
  T.eq(nil, ok, 'no such block')
  T.ok(why:find('cannot add the context block', 1, true), why)
  T.eq(nil, (builder.add('block', a.id, { quiet = true })), 'twice')
  T.eq(false, builder.remove('nope'), 'removing what is not there')
  T.eq(1, #builder.items(), 'unchanged')
end)

T.test('the tab: b adds the block under the cursor or takes it out, and its line is marked', function()
  fresh()
  local a = U.create('block', { title = 'Tab block', content = 'from the tab' })
  local p = U.create('prompt', { title = 'Tab prompt', content = 'use me' })
  require('shelf').open()
  T.wait(function() return U.tab() and U.find('Tab block', (U.tab())) end, 'the tab')
  local tbuf = U.tab()
  local mark = require('shelf.config').get().tab.icons.builder
  T.eq(nil, vim.api.nvim_buf_get_lines(tbuf, 0, -1, false)[U.find('Tab block', tbuf)]:find(mark, 1, true),
    'no mark before')
  U.cursor_to('Tab block')
  U.keys('b')
  T.eq({ a.id }, ids(), 'added')
  T.ok(U.lines(tbuf)[U.find('Tab block', tbuf)]:find(mark, 1, true), 'marked: ' .. U.lines(tbuf)[U.find('Tab block', tbuf)])
  U.cursor_to('Tab block')
  U.keys('b')
  T.eq({}, ids(), 'taken out')
  T.eq(nil, U.lines(tbuf)[U.find('Tab block', tbuf)]:find(mark, 1, true), 'the mark went')
  -- The API's changes show in the tab too.
  builder.add('block', a.id)
  T.ok(U.lines(tbuf)[U.find('Tab block', tbuf)]:find(mark, 1, true), 'marked after builder.add')
  -- b on a prompt puts its text into yours.
  U.cursor_to('Tab prompt')
  U.keys('b')
  T.eq('use me\n\nfrom the tab', text(), 'the prompt in the text')
  T.eq(nil, U.lines(tbuf)[U.find('Tab prompt', tbuf)]:find(mark, 1, true), 'prompts are not marked')
  T.ok(p, 'p')
end)

T.test('g? lists the keys; the builder outlives its buffer; :Shelf build from the tab inserts beside it', function()
  fresh()
  local a = U.create('block', { title = 'Kept', content = 'kept text' })
  builder.add('block', a.id)
  local buf = builder.open()
  T.eq(1, #vim.tbl_filter(function(m) return m.group == 'Conceal' end, vim.fn.getmatches()), 'ids concealed')
  T.eq(2, vim.wo.conceallevel, 'conceallevel')
  U.keys('g?')
  local help = U.lines(vim.api.nvim_get_current_buf())
  T.ok(vim.api.nvim_win_get_config(0).relative ~= '', 'a float')
  local helptext = table.concat(help, '\n')
  for _, want in ipairs({ '\\i', 'insert the prompt', '\\y', '\\s', '\\c', '\\a', '\\o', 'g?', ':Shelf build add' }) do
    T.ok(helptext:find(want, 1, true), want .. ' in the help:\n' .. helptext)
  end
  U.keys('q')
  T.eq(buf, vim.api.nvim_get_current_buf(), 'back in the builder')
  -- Typed text, then the buffer wiped: nothing lost.
  vim.api.nvim_buf_set_lines(buf, 0, 1, false, { 'typed just before' })
  vim.cmd('bwipeout! ' .. buf)
  T.eq('typed just before\n\nkept text', text(), 'after :bwipeout')
  local nbuf = builder.open()
  T.ok(nbuf ~= buf, 'a new buffer')
  T.eq('shelf://builder', vim.api.nvim_buf_get_name(nbuf), 'named')
  T.eq('typed just before', U.lines(nbuf)[1], 'shows it again')
  -- :e in it reads it again (BufReadCmd).
  vim.cmd('edit!')
  T.eq(2, #U.lines(nbuf), ':e! shows the same')
  -- :Shelf build typed in it closes its window.
  local wins = #vim.api.nvim_tabpage_list_wins(0)
  vim.cmd('Shelf build')
  T.eq(wins - 1, #vim.api.nvim_tabpage_list_wins(0), 'closed')
  T.ok(vim.api.nvim_buf_get_name(0) ~= 'shelf://builder', 'in another window')
  -- From the knowledge tab: the window the tab was entered from.
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { '' })
  local target = vim.api.nvim_get_current_buf()
  require('shelf').open()
  T.wait(function() return U.tab() ~= nil end, 'the tab')
  vim.api.nvim_set_current_win(select(2, U.tab()))
  vim.cmd('Shelf build')
  T.eq('shelf://builder', vim.api.nvim_buf_get_name(0), 'the builder')
  U.keys('\\i')
  settled()
  T.eq({ 'typed just before', '', 'kept text' }, U.lines(target), 'inserted in the window the tab came from')
end)

T.test('two blocks whose ids start alike: each line names its own', function()
  local db = fresh()
  local one, two = '1a2b3c4d-0000-4000-8000-000000000001', '1a2b3c4d-0000-4000-8000-000000000002'
  local out = vim.fn.system({ 'sqlite3', db, string.format([[insert into context_blocks (id, title, content, tags,
    created_at, updated_at) values ('%s', 'Same', 'first', '[]', 'a', 'a'), ('%s', 'Same', 'second', '[]', 'a', 'a')]],
    one, two) })
  T.eq(0, vim.v.shell_error, out)
  T.wait(function() return mirror.item('block', two) ~= nil end, 'the rows')
  builder.add('block', one)
  builder.add('block', two)
  local buf = builder.open()
  local lines = U.lines(buf)
  T.ok(lines[2]:find('[1a2b3c4d]', 1, true), lines[2])
  T.ok(lines[3]:find('[' .. two .. ']', 1, true), lines[3])
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  typed('ddp')
  T.eq({ two, one }, ids(), 'swapped')
  T.eq('second\n\nfirst', text(), 'in the new order')
end)
