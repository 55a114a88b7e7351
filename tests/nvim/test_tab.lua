-- The knowledge tab, driven with keys as a user would, on the real shelfd.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local shelf = require('shelf')

-- A small library: two prompt folders (one nested), a dataset folder,
-- unsorted items and a temporary block.
local function library()
  local L = {}
  L.code = U.create('project', { type = 'prompts', name = 'Code' })
  L.review = U.create('project', { type = 'prompts', name = 'Review', parent_id = L.code.id })
  L.docs = U.create('project', { type = 'datasets', name = 'Docs', icon = '📚' })
  L.diff = U.create('prompt', { title = 'Review diff', content = 'Review this {{lang}} diff', project_id = L.review.id,
    tags = { 'code' } })
  L.explain = U.create('prompt', { title = 'Explain', content = 'Explain it', project_id = L.code.id })
  L.commit = U.create('prompt', { title = 'Commit message', content = 'Write a commit message' })
  L.arch = U.create('block', { title = 'Architecture', content = 'one\ntwo', project_id = L.docs.id })
  L.style = U.create('block', { title = 'Style', content = 'short', project_id = L.docs.id })
  L.scratch = U.create('block', { title = 'Scratch', content = 'tmp', temporary = true })
  return L
end

local function start()
  U.clean()
  T.fresh()
  local L = library()
  vim.cmd('Shelf')
  local buf = U.tab()
  T.ok(buf, 'the tab opened')
  T.wait(function()
    return U.find('Scratch', buf) ~= nil
  end, 'the tree to show the library')
  return L, buf
end

T.test(':Shelf opens the tab as a side window with the tree, and toggles', function()
  local _, buf = start()
  local _, win = U.tab()
  T.eq('shelf://knowledge', vim.api.nvim_buf_get_name(buf), 'buffer name')
  T.eq('shelf', vim.bo[buf].filetype, 'filetype')
  T.eq(40, vim.api.nvim_win_get_width(win), 'width')
  T.eq(1, vim.fn.win_screenpos(win)[2], 'on the left')
  T.eq(2, #vim.api.nvim_tabpage_list_wins(0), 'one window beside the one we came from')
  local want = {
    '▾ Prompts (3)',
    '  ▾ 📁 Code (2)',
    '    ▾ 📁 Review (1)',
    '        ≡ Review diff  #code now',
    '      ≡ Explain  now',
    '  ▾ … Unsorted (1)',
    '      ≡ Commit message  now',
    '▾ Context blocks (2)',
    '  ▾ 📚 Docs (2)',
    '      ¶ Architecture  now',
    '      ¶ Style  now',
    '▾ Temporary (1)',
    '    ~ Scratch  now',
  }
  local lines = U.lines(buf)
  T.ok(lines[1]:find('^ Shelf  sqlite'), 'header: ' .. lines[1])
  T.eq(want, vim.list_slice(lines, #lines - #want + 1), 'the tree')
  T.eq('▾ Prompts (3)', vim.api.nvim_get_current_line(), 'cursor starts on the first row')
  -- :Shelf again closes it; once more opens it again, in the same buffer.
  vim.cmd('Shelf')
  T.eq(nil, U.tab(), 'closed by :Shelf')
  vim.cmd('Shelf tab')
  T.eq(buf, U.tab(), 'the same buffer again')
  -- One per tab page.
  vim.cmd('tabnew')
  vim.cmd('Shelf')
  local b2, w2 = U.tab()
  T.eq(buf, b2, 'the same buffer in a new tab page')
  T.ok(w2 ~= win, 'its own window')
  vim.cmd('Shelf')
  vim.cmd('tabclose')
end)

T.test("edit windows get the user's options, not the tab's; the tab keeps its width", function()
  local saved = { number = vim.o.number, wrap = vim.o.wrap, columns = vim.o.columns }
  vim.o.columns = 160
  -- As a user's init.lua sets them.
  vim.o.number, vim.o.wrap = true, true
  local ok, err = pcall(function()
    start()
    local _, tab = U.tab()
    T.eq(false, vim.wo[tab].number, 'the tab without numbers')
    T.eq(true, vim.go.number, "the user's 'number' untouched")
    vim.cmd('new')
    T.eq(true, vim.wo.number and vim.wo.wrap, 'a window opened afterwards as the user set it')
    vim.cmd('close')
    -- The tab alone: <CR> makes a window beside it.
    vim.api.nvim_set_current_win(tab)
    vim.cmd('only')
    U.cursor_to('Commit message')
    U.keys('<CR>')
    local edit_win = vim.api.nvim_get_current_win()
    T.ok(edit_win ~= tab, 'a window beside the tab')
    for name, want in pairs({ number = true, wrap = true, cursorline = false, signcolumn = 'auto', winfixwidth = false }) do
      T.eq(want, vim.wo[edit_win][name], "the edit window's " .. name)
    end
    T.eq(40, vim.api.nvim_win_get_width(tab), 'the tab keeps its width')
    -- Closing an edit window beside the tab gives the tab its width again.
    vim.cmd('vsplit')
    vim.api.nvim_win_set_width(tab, 70)
    vim.cmd('quit')
    T.wait(function() return vim.api.nvim_win_get_width(tab) == 40 end,
      'the configured width (it is ' .. vim.api.nvim_win_get_width(tab) .. ')')
  end)
  vim.o.number, vim.o.wrap, vim.o.columns = saved.number, saved.wrap, saved.columns
  if not ok then
    error(err, 0)
  end
end)

T.test('folders fold with <CR>, o and za, and stay folded across refreshes', function()
  local L, buf = start()
  U.cursor_to('📁 Review')
  U.keys('<CR>')
  T.eq('    ▸ 📁 Review (1)', vim.api.nvim_get_current_line(), 'folded by <CR>')
  T.eq(nil, U.find('Review diff', buf), 'its content hidden')
  U.cursor_to('📚 Docs')
  U.keys('za')
  T.eq('  ▸ 📚 Docs (2)', vim.api.nvim_get_current_line(), 'folded by za')
  -- A change elsewhere redraws the tab; the folds stay.
  U.create('block', { title = 'Glossary', content = 'g', project_id = L.docs.id })
  U.create('prompt', { title = 'Nit', content = 'n', project_id = L.review.id })
  T.wait(function()
    return U.find('Docs (3)', buf) ~= nil and U.find('Review (2)', buf) ~= nil
  end, 'the counts to change')
  T.eq(nil, U.find('Glossary', buf), 'Docs still folded')
  T.eq(nil, U.find('Nit', buf), 'Review still folded')
  local err = T.await(function(cb) shelf.refresh(cb) end)
  T.eq(nil, err, 'refresh')
  T.eq(nil, U.find('Glossary', buf), 'Docs still folded after a refresh')
  -- za on an item folds its folder; o unfolds.
  U.cursor_to('Explain')
  U.keys('za')
  T.eq('  ▸ 📁 Code (3)', vim.api.nvim_get_current_line(), 'za on an item folds its folder')
  U.keys('o')
  T.eq('  ▾ 📁 Code (3)', vim.api.nvim_get_current_line(), 'o unfolds')
  T.ok(U.find('Explain', buf), 'content back')
  -- Closing and reopening the tab keeps them too.
  vim.cmd('Shelf')
  vim.cmd('Shelf')
  T.eq(nil, U.find('Glossary', buf), 'Docs still folded after reopening')
end)

T.test('the cursor stays on its item when items above it come and go', function()
  local L, buf = start()
  U.cursor_to('Style')
  local _, win = U.tab()
  -- Two items sort above Style: one in the same folder, one in another.
  local a = U.create('block', { title = 'Aardvark', content = 'a', project_id = L.docs.id })
  U.create('prompt', { title = 'Another prompt', content = 'x' })
  T.wait(function()
    return U.find('Aardvark', buf) ~= nil and U.find('Another prompt', buf) ~= nil
  end, 'the new items to show')
  T.ok(U.cursor_line():find('Style', 1, true), 'still on Style: ' .. U.cursor_line())
  -- All of it fits the window: nothing scrolls (a taller tree keeps the
  -- screen row, in the test below).
  T.eq(1, vim.api.nvim_win_call(win, vim.fn.winsaveview).topline, 'the view from the first line')
  -- Removed above, and the item itself renamed elsewhere: still on it.
  U.delete('block', a.id)
  U.delete('prompt', L.commit.id)
  U.update('block', L.style.id, { title = 'Style guide' })
  T.wait(function()
    return U.find('Style guide', buf) ~= nil and U.find('Aardvark', buf) == nil
  end, 'the deletes and the rename to show')
  T.ok(U.cursor_line():find('Style guide', 1, true), 'still on it after the rename: ' .. U.cursor_line())
  -- When the item itself goes, the cursor lands on its neighbour.
  U.delete('block', L.style.id)
  T.wait(function()
    return U.find('Style guide', buf) == nil
  end, 'the delete to show')
  T.ok(U.cursor_line():find('Architecture', 1, true) or U.cursor_line():find('Temporary', 1, true),
    'on a neighbour: ' .. U.cursor_line())
end)

T.test('the view keeps the header in sight when the tree fits, and shows no ~ below hidden lines', function()
  local L, buf = start()
  local _, win = U.tab()
  local function view()
    return vim.api.nvim_win_call(win, vim.fn.winsaveview)
  end
  T.ok(vim.api.nvim_buf_line_count(buf) < vim.api.nvim_win_get_height(win), 'the tree fits the window')
  -- The cursor on the header stays there through a change.
  vim.api.nvim_set_current_win(win)
  vim.api.nvim_win_set_cursor(win, { 1, 0 })
  U.create('prompt', { title = 'Aaa first', content = 'a' })
  T.wait(function() return U.find('Aaa first', buf) ~= nil end, 'the new prompt')
  T.eq(1, view().lnum, 'the cursor still on the header line')
  T.eq(1, view().topline, 'nothing scrolled')
  -- Clearing a filter with the cursor on a match far down: the top stays 1.
  U.answer('Scratch')
  U.keys('/')
  T.wait(function() return U.find('Commit message', buf) == nil and U.find('~ Scratch', buf) end, 'the filter')
  U.cursor_to('~ Scratch')
  U.answer('')
  U.keys('/')
  T.wait(function() return U.find('Commit message', buf) ~= nil end, 'the filter cleared')
  T.ok(U.cursor_line():find('~ Scratch', 1, true), 'still on Scratch: ' .. U.cursor_line())
  T.eq(1, view().topline, 'the whole tree in sight (not ' .. view().topline .. ')')
  -- A tree taller than the window, scrolled to its end: when lines below go,
  -- the view moves down instead of showing ~ rows under the last line.
  local many = {}
  for i = 1, 40 do
    table.insert(many, U.create('block', { title = string.format('Zz %02d', i), content = 'z', project_id = L.docs.id }))
  end
  T.wait(function() return U.find('Zz 40', buf) ~= nil end, 'the long tree')
  U.cursor_to('Zz 30')
  local h = vim.api.nvim_win_get_height(win)
  -- Items above come: the cursor keeps its item and its screen row.
  vim.api.nvim_win_call(win, function() vim.fn.winrestview({ topline = U.find('Zz 20', buf) }) end)
  local row = vim.api.nvim_win_call(win, vim.fn.winline)
  U.create('block', { title = 'Zz 00', content = 'z', project_id = L.docs.id })
  T.wait(function() return U.find('Zz 00', buf) ~= nil end, 'an item above')
  T.ok(U.cursor_line():find('Zz 30', 1, true), 'still on Zz 30: ' .. U.cursor_line())
  T.eq(row, vim.api.nvim_win_call(win, vim.fn.winline), 'same screen row: no jump')
  vim.api.nvim_win_call(win, function()
    vim.fn.winrestview({ topline = vim.api.nvim_buf_line_count(buf) - h + 1 })
  end)
  for i = 31, 40 do
    U.delete('block', many[i].id)
  end
  T.wait(function() return U.find('Zz 40', buf) == nil end, 'the deletes')
  T.ok(U.cursor_line():find('Zz 30', 1, true), 'still on Zz 30: ' .. U.cursor_line())
  T.eq(vim.api.nvim_buf_line_count(buf) - h + 1, view().topline, 'the last line at the bottom of the window')
end)

T.test('deleting a folder leaves the cursor beside it, its content shown nowhere meanwhile', function()
  local L, buf = start()
  -- Every state of the tab's lines, as each change is drawn.
  local seen = {}
  vim.api.nvim_buf_attach(buf, false, {
    on_lines = function()
      table.insert(seen, table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n'))
    end,
  })
  U.cursor_to('📁 Code')
  U.answer(true)
  U.keys('d')
  T.wait(function()
    return U.find('Code', buf) == nil and require('shelf.mirror').item('prompt', L.explain.id) == nil
      and U.find('Explain', buf) == nil
  end, 'the folder and its prompts to go')
  T.eq('▾ Prompts (1)', U.cursor_line(), 'on the line above the folder')
  for _, text in ipairs(seen) do
    if not text:find('Code (', 1, true) then
      T.ok(not text:find('Explain', 1, true), 'a prompt of the folder shown without it:\n' .. text)
    end
  end
  -- A folder deleted without its content (sqlite3 enforces no foreign keys
  -- by default): once shelfd is idle, what is left shows under Unsorted.
  local docs = U.create('project', { type = 'prompts', name = 'Loose ends' })
  U.create('prompt', { title = 'Left behind', content = 'x', project_id = docs.id })
  T.wait(function() return U.find('Loose ends', buf) ~= nil end, 'the new folder')
  local out = vim.fn.system({ 'sqlite3', require('shelf.config').get().sqlite.path,
    "delete from prompt_projects where id = '" .. docs.id .. "'" })
  T.eq(0, vim.v.shell_error, 'sqlite3: ' .. out)
  T.wait(function() return U.find('Loose ends', buf) == nil end, 'the folder to go')
  T.wait(function()
    local l, u = U.find('Left behind', buf), U.find('Unsorted', buf)
    return l and u and l > u
  end, 'the prompt left behind under Unsorted')
end)

T.test('d closes the unmodified edit buffers of what it deleted, and never says "elsewhere"', function()
  local L, buf = start()
  local edit = require('shelf.edit')
  local function open(item)
    edit.open('prompt', item.id, { win = require('shelf.tab').previous_window() })
    U.loaded()
    return vim.api.nvim_get_current_buf()
  end
  local explain, commit, diff = open(L.explain), open(L.commit), open(L.diff)
  vim.api.nvim_buf_set_lines(commit, -1, -1, false, { 'unsaved' })
  vim.cmd('Shelf')
  U.reset()
  -- A modified buffer keeps its text and is told the delete happened here.
  U.cursor_to('Commit message')
  U.answer(true)
  U.keys('d')
  T.wait(function() return require('shelf.mirror').item('prompt', L.commit.id) == nil end, 'the delete')
  T.wait(function() return U.message("deleted prompt 'Commit message'") ~= nil end, 'the message')
  T.ok(U.message("'Commit message' was deleted; this buffer keeps your unsaved text"), U.all_messages())
  T.eq(true, vim.api.nvim_buf_is_valid(commit), 'the modified buffer stays')
  T.eq('unsaved', vim.api.nvim_buf_get_lines(commit, -2, -1, false)[1], 'with its text')
  -- :w there asks to create it again, and says where it was deleted: here.
  U.answer(false)
  vim.api.nvim_buf_call(commit, function() vim.cmd('write') end)
  T.eq("'Commit message' was deleted. Create it again from this buffer?", U.asked[#U.asked].question)
  -- A folder: the buffers of the prompts in it, all levels down, close.
  U.cursor_to('📁 Code')
  U.answer(true)
  U.keys('d')
  T.wait(function() return require('shelf.mirror').item('prompt', L.diff.id) == nil end, 'the folder delete')
  T.wait(function() return not vim.api.nvim_buf_is_valid(diff) and not vim.api.nvim_buf_is_valid(explain) end,
    'their buffers closed')
  T.ok(not U.all_messages():find('elsewhere', 1, true), U.all_messages())
  T.eq(2, #vim.api.nvim_tabpage_list_wins(0), 'the windows stay')
  U.no_answers_left()
end)

T.test('a change made in another Neovim shows up and keeps the cursor', function()
  U.clean()
  local db = T.fresh()
  local docs = U.create('project', { type = 'datasets', name = 'Docs' })
  local z = U.create('block', { title = 'Zebra', content = 'z', project_id = docs.id })
  vim.cmd('Shelf')
  local buf = U.tab()
  T.wait(function() return U.find('Zebra', buf) ~= nil end, 'Zebra shown')
  U.cursor_to('Zebra')
  local other = T.other_nvim({ sqlite = { path = db }, helper = { log = T.path('other.log') } })
  local ok, err = pcall(function()
    other:lua([[require('shelf').create('block', { title = 'Alpaca', content = 'a', project_id = ... })]], docs.id)
    T.wait(function() return U.find('Alpaca', buf) ~= nil end, 'the other editor\'s block to show', 15000)
    T.ok(U.cursor_line():find('Zebra', 1, true), 'still on Zebra: ' .. U.cursor_line())
  end)
  other:stop()
  if not ok then
    error(err, 0)
  end
  T.ok(z.id, 'z')
end)

T.test('keys: a, A, r, d (with what goes along), y, m, t, s, R, q, g?', function()
  local L, buf = start()
  -- a on a prompt folder: a new prompt in that folder.
  U.cursor_to('📁 Review')
  U.keys('a')
  T.eq('markdown', vim.bo.filetype, 'a new edit buffer')
  T.ok(vim.api.nvim_buf_get_name(0):find('^shelf://new/prompt/'), vim.api.nvim_buf_get_name(0))
  T.ok(vim.tbl_contains(U.lines(), 'folder: Code / Review'), 'folder filled in: ' .. vim.inspect(U.lines()))
  vim.cmd('bwipeout!')

  -- A: a new folder inside the one under the cursor.
  vim.cmd('Shelf')
  U.cursor_to('📚 Docs')
  U.answer('Drafts')
  U.keys('A')
  T.wait(function() return U.find('📁 Drafts (0)', buf) ~= nil end, 'the new folder')
  T.wait(function() return U.cursor_line():find('Drafts', 1, true) end,
    'the cursor on the new folder (it is on: ' .. U.cursor_line() .. ')')
  local drafts
  for _, p in ipairs(shelf.items('project')) do
    if p.name == 'Drafts' then
      drafts = p
    end
  end
  T.eq(L.docs.id, drafts.parent_id, 'inside Docs')
  T.eq('datasets', drafts.type, 'a context block folder')

  -- r: rename.
  U.cursor_to('Explain')
  U.answer('Explain simply')
  U.keys('r')
  T.wait(function() return U.find('Explain simply', buf) ~= nil end, 'the rename')
  T.eq('Explain simply', T.get('prompt', L.explain.id).title, 'renamed in the library')

  -- y: yank the content.
  U.cursor_to('Architecture')
  U.keys('y')
  -- (The content is read asynchronously: the register fills a moment later.)
  T.wait(function() return vim.fn.getreg('"') == 'one\ntwo\n' end, 'content yanked')
  T.eq('V', vim.fn.getregtype('"'), 'linewise')

  -- m: move a block to another folder (the picker lists folders by path).
  U.cursor_to('Style')
  U.answer(U.choose('Docs / Drafts'))
  U.keys('m')
  T.wait(function()
    return (shelf.items('block') and require('shelf.mirror').item('block', L.style.id).project_id) == drafts.id
  end, 'the move')
  T.ok(U.cursor_line():find('Style', 1, true), 'cursor follows the moved item: ' .. U.cursor_line())

  -- d on a folder: the question says what goes with it; cancelling keeps it.
  U.cursor_to('📁 Code')
  U.answer(false)
  U.keys('d')
  T.eq("Delete folder 'Code' and everything in it: 1 folder and 2 prompts?", U.asked[#U.asked].question,
    'the question')
  T.ok(require('shelf.mirror').item('project', L.code.id), 'kept after cancel')
  U.answer(true)
  U.keys('d')
  T.wait(function() return U.find('Code', buf) == nil end, 'the folder to go')
  T.wait(function() return require('shelf.mirror').item('prompt', L.diff.id) == nil end,
    'its prompts to go with it')

  -- t: a new temporary block; :w makes it.
  U.keys('t')
  T.ok(vim.api.nvim_buf_get_name(0):find('^shelf://new/temp/'), 'a new temporary buffer')
  vim.api.nvim_buf_set_lines(0, 1, 2, false, { 'title: Notes' })
  vim.api.nvim_buf_set_lines(0, -1, -1, false, { 'remember this' })
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the save')
  vim.cmd('Shelf')
  T.wait(function() return U.find('~ Notes', buf) ~= nil end, 'under Temporary')

  -- s: save the temporary block as a real one.
  U.cursor_to('~ Scratch')
  U.keys('s')
  T.wait(function() return not require('shelf.mirror').item('block', L.scratch.id).temporary end, 'saved')
  T.wait(function() return U.find('¶ Scratch', buf) ~= nil end, 'shown under Unsorted')

  -- d on an item; R refreshes; g? lists the keys; q closes.
  U.cursor_to('Architecture')
  U.answer(true)
  U.keys('d')
  T.eq("Delete context block 'Architecture'?", U.asked[#U.asked].question, 'item question')
  T.wait(function() return U.find('Architecture', buf) == nil end, 'the item to go')
  U.keys('R')
  U.keys('g?')
  local help = table.concat(U.lines(), '\n')
  T.ok(help:find('Knowledge tab keys', 1, true) and help:find('new temporary block', 1, true), help)
  U.keys('q')
  T.eq(buf, vim.api.nvim_get_current_buf(), 'back in the tab after the help')
  U.keys('q')
  T.eq(nil, U.tab(), 'q closed the tab')
  U.no_answers_left()
end)

T.test('nothing happens without a word: empty names, the same name, the same folder', function()
  local L, buf = start()
  local before = #shelf.items('project')
  U.cursor_to('📚 Docs')
  U.answer('   ')
  U.keys('A')
  T.ok(U.message('no folder was created: its name was empty'), U.all_messages())
  -- Esc is a plain cancel.
  U.reset()
  U.answer(false)
  U.keys('A')
  T.eq('', U.all_messages(), 'nothing said after Esc')
  T.eq(before, #shelf.items('project'), 'no folder created')
  U.cursor_to('Explain')
  U.answer('')
  U.keys('r')
  T.ok(U.message("'Explain' was not renamed: the new name was empty (every prompt needs one)"), U.all_messages())
  U.reset()
  U.answer('Explain')
  U.keys('r')
  T.ok(U.message("'Explain' was not renamed: the name is the same"), U.all_messages())
  U.reset()
  U.cursor_to('Style')
  U.answer(U.choose('Docs'))
  U.keys('m')
  T.ok(U.message("'Style' is in Docs already; nothing was moved"), U.all_messages())
  -- Sizes as people read them.
  U.reset()
  U.update('block', L.style.id, { content = string.rep('x', 5 * 1024 * 1024 + 300000) })
  U.cursor_to('Style')
  U.keys('y')
  T.wait(function() return U.message("yanked 'Style' (5.3 MiB) into register") end, 'the big yank')
  U.cursor_to('Architecture')
  U.keys('y')
  T.wait(function() return U.message("yanked 'Architecture' (7 bytes) into register") end, 'the small yank')
  T.ok(buf, 'the tab')
  U.no_answers_left()
end)

T.test('an empty library says how to fill it; hints cut where the window ends end in …', function()
  U.clean()
  T.fresh()
  vim.cmd('Shelf')
  local buf, win = U.tab()
  T.wait(function() return U.find(' The library is empty.', buf) ~= nil end,
    'the hint: ' .. table.concat(U.lines(buf), '\n'))
  local at = U.find(' The library is empty.', buf)
  T.eq({ '   a    new prompt or block', '   A    new folder', '   g?   all keys' },
    vim.list_slice(U.lines(buf), at + 1, at + 3), 'the keys that fill it')
  U.create('prompt', { title = 'Tagged', content = 'x',
    tags = { 'a-rather-long-tag-name', 'and-another-one', 'and-more' } })
  T.wait(function() return U.find('Tagged', buf) ~= nil end, 'the prompt')
  T.eq(nil, U.find('library is empty', buf), 'no hint once something is in it')
  local line = U.lines(buf)[U.find('Tagged', buf)]
  T.eq('      ≡ Tagged  #a-rather-long-tag-name…', line, 'cut at the width (40), ending in …')
  T.eq(40, vim.api.nvim_strwidth(line), 'as wide as the window')
  if vim.fn.exists('##WinResized') == 1 then
    vim.api.nvim_set_current_win(win)
    U.keys('70<C-w>|')
    -- Neovim sends WinResized when it redraws, which a headless one
    -- without a UI never does (in a terminal it comes by itself).
    if #vim.api.nvim_list_uis() == 0 then
      vim.api.nvim_exec_autocmds('WinResized', {})
    end
    T.wait(function()
      return U.find('#and-another-one #and-more now', buf) ~= nil
    end, 'the whole hint in a wider window: ' .. table.concat(U.lines(buf), '\n'))
  end
end)

T.test('a stamp with a fraction of a second is as old as its whole seconds, in either form shelfd sends', function()
  local ui = require('shelf.ui')
  T.eq(1767261600, ui.parse_time('2026-01-01T10:00:00.999999Z'), 'text')
  T.eq(1767261600, ui.parse_time(1767261600999999), 'microseconds')
  T.eq(-1, ui.parse_time(-1), 'a microsecond before 1970')
  -- Written 300 s before this second and a fraction: 5m at once, not 4m
  -- until os.time() moves on (the fresh render of test_odd_data saw both).
  T.eq('5m', ui.age((os.time() - 300) * 1e6 + 999999))
end)

T.test('ages move on by themselves while the tab shows; hidden, no timer runs', function()
  U.clean()
  local db = T.fresh()
  -- A prompt saved 57 seconds ago: 'now' for three more seconds, then '1m'.
  local client = require('shelf.client')
  client._stop_and_wait()
  local at = os.date('!%Y-%m-%dT%H:%M:%SZ', os.time() - 57)
  local out = vim.fn.system({ 'sqlite3', db, "INSERT INTO prompts (id, title, content, tags, created_at, updated_at) "
    .. "VALUES ('0d0d0d0d-0000-4000-8000-0000000000a9', 'Aging', '', '[]', '" .. at .. "', '" .. at .. "');" })
  T.eq(0, vim.v.shell_error, 'sqlite3: ' .. out)
  T.ready()
  vim.cmd('Shelf')
  local buf = U.tab()
  T.wait(function() return U.find('Aging  now', buf) ~= nil end, 'the prompt, saved just now')
  T.wait(function() return U.find('Aging  1m', buf) ~= nil end, 'its age a minute on', 10000)
  local state = require('shelf.tab')._state()
  T.ok(state.age_timer ~= nil, 'a timer for the next change of an age')
  -- Hidden: no timer.
  U.keys('q')
  T.wait(function() return state.age_timer == nil end, 'the timer gone with the tab')
  vim.cmd('Shelf')
  T.wait(function() return state.age_timer ~= nil end, 'a timer again once shown')
end)

T.test('a library of hundreds of items is drawn in slices when the tab opens and for filters, the cursor then on the first item', function()
  U.clean()
  local db = T.fresh()
  local client = require('shelf.client')
  client._stop_and_wait()
  local out = vim.fn.system({ 'sqlite3', db, [[WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 400)
    INSERT INTO prompts (id, title, content, tags, created_at, updated_at)
    SELECT printf('0e0e0e0e-0000-4000-8000-%012d', i), printf('Many %03d', i), 'c', '["t"]',
    '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM c;]] })
  T.eq(0, vim.v.shell_error, 'sqlite3: ' .. out)
  T.ready()
  local tab = require('shelf.tab')
  local st = tab._state()
  local full = st.stats.full
  tab._set_slice_ns(0) -- each slice yields at its first chance, however fast this machine
  local buf
  local ok, err = pcall(function()
    vim.cmd('Shelf')
    buf = U.tab()
    -- :Shelf came back before the 400 lines were made: the loop is free meanwhile.
    T.ok(st.building ~= nil, 'a sliced draw under way')
    T.eq(nil, U.find('Many 001', buf), 'not drawn yet')
    T.wait(function() return st.building == nil and U.find('Many 001', buf) ~= nil end, 'the tab drawn')
  end)
  tab._set_slice_ns(require('shelf.slices').SLICE_NS)
  assert(ok, err)
  T.eq(full + 1, st.stats.full, 'one full render')
  T.ok(U.cursor_line():find('Prompts', 1, true), 'the cursor on the first line of the tree: ' .. U.cursor_line())
  -- A filter with hundreds of hits: the tab is drawn once, with them (in
  -- slices), not before while it searches.
  local actions = require('shelf.tab.actions')
  local sliced, full_before = st.stats.sliced, st.stats.full
  actions.searching_after_ms = 60000
  tab.set_filter('Many')
  T.ok(st.searching, 'searching when set_filter returned')
  T.eq(nil, U.find('/ Many', buf), 'not drawn before the answer')
  T.wait(function()
    return not st.searching and st.building == nil and U.find('Many 001', buf) ~= nil
      and U.find('400 items', buf) ~= nil
  end, 'the hits drawn')
  T.eq(sliced + 1, st.stats.sliced, 'the hits were drawn in slices')
  T.eq(full_before + 1, st.stats.full, 'and nothing else drawn')
  -- A search that takes a while (its answer held here) shows the filter
  -- searching meanwhile.
  tab.set_filter(nil)
  T.wait(function() return st.building == nil and U.find('/ Many', buf) == nil end, 'the filter cleared')
  local client = require('shelf.client')
  local search_async, held = client.search_async, nil
  client.search_async = function(q, kind, cb, limit)
    return search_async(q, kind, function(e, hits) held = { cb, e, hits } end, limit)
  end
  actions.searching_after_ms = 0
  ok, err = pcall(function()
    tab.set_filter('Many 00')
    T.wait(function() return held ~= nil end, 'the answer, held')
    T.wait(function() return st.building == nil and U.find('/ Many 00  (searching', buf) ~= nil end,
      'the filter shown searching before its answer')
  end)
  client.search_async = search_async
  actions.searching_after_ms = 40
  if held then
    held[1](held[2], held[3])
  end
  assert(ok, err)
  T.wait(function() return not st.searching and U.find('9 items', buf) ~= nil end, 'its hits drawn')
  -- A #tag filter looks through the library a slice at a time.
  local filter = require('shelf.tab.filter')
  filter.slice_ns = 0
  ok, err = pcall(function()
    tab.set_filter('#t')
    T.ok(st.searching, 'still looking when set_filter returned')
    T.wait(function()
      return not st.searching and st.building == nil and U.find('400 items', buf) ~= nil
    end, 'the tag hits drawn')
    -- On the first hit of the lines drawn (the filter line moved every row
    -- down one: a cursor set before the draw would sit a line above it).
    local first
    for l = 1, #st.texts do
      if st.rows[l] and st.rows[l].node.type == 'item' then
        first = l
        break
      end
    end
    T.eq(first, vim.api.nvim_win_get_cursor(vim.fn.bufwinid(buf))[1], 'the cursor on the first hit once drawn')
  end)
  filter.slice_ns = require('shelf.slices').SLICE_NS
  assert(ok, err)
  tab.set_filter(nil)
  -- (400 items: the whole tree is drawn again in slices when the machine is slow.)
  T.wait(function() return st.building == nil and U.find('/ #t', buf) == nil end, 'the filter cleared')
  -- Shown again with the tree kept: at once.
  vim.cmd('Shelf')
  T.eq(nil, U.tab(), 'closed')
  vim.cmd('Shelf')
  buf = U.tab()
  T.eq(nil, st.building, 'drawn at once')
  T.ok(U.find('Many 001', buf) and U.find('… 200 more', buf), vim.inspect(U.lines(buf)))
end)

T.test('/ filters by title, tags and content; an empty filter clears it', function()
  local L, buf = start()
  U.cursor_to('Prompts')
  U.answer('code')
  U.keys('/')
  local function text()
    return table.concat(U.lines(buf), '\n')
  end
  T.wait(function() return text():find('Review diff', 1, true) end, 'the tag match')
  T.ok(not text():find('Commit message', 1, true), 'others hidden: ' .. text())
  T.ok(text():find('/ code', 1, true), 'the filter is shown')
  -- What shows, counted as it shows: the prompt tagged code, the folder
  -- named Code (its search hit and the folders around the prompt aside).
  T.ok(text():find('/ code  (1 item, 1 folder; empty / clears)', 1, true), 'the count: ' .. text())
  T.ok(U.cursor_line():find('Review diff', 1, true), 'the cursor on the first match: ' .. U.cursor_line())
  T.ok(text():find('▾ Prompts (1)', 1, true) and text():find('📁 Code (1)', 1, true)
    and text():find('▾ Context blocks (0)', 1, true), 'counts of matches: ' .. text())
  -- #word: by tag (the content 'Write a commit message' has no tag).
  U.answer('#sty')
  U.update('block', L.style.id, { tags = { 'style' } })
  U.keys('/')
  T.wait(function() return text():find('Style', 1, true) end, 'the tag filter')
  T.ok(not text():find('Architecture', 1, true) and not text():find('Review diff', 1, true),
    'only the tagged block: ' .. text())
  T.ok(U.cursor_line():find('Style', 1, true), 'on it: ' .. U.cursor_line())
  T.ok(text():find('(1 item; empty / clears)', 1, true), 'one item: ' .. text())
  U.answer('nothing like it')
  U.keys('/')
  T.wait(function() return text():find('(no matches; empty / clears)', 1, true) end, 'no matches: ' .. text())
  -- (shelfd holds no content: matching inside it is the store's search.)
  U.answer('ARCHITECT')
  U.keys('/')
  T.wait(function()
    return text():find('Architecture', 1, true) and not text():find('Review diff', 1, true)
  end, 'the content match')
  -- <Esc> keeps the filter; an empty answer clears it.
  U.answer(false)
  U.keys('/')
  T.ok(text():find('/ ARCHITECT', 1, true), 'kept after <Esc>: ' .. text())
  U.answer('')
  U.keys('/')
  T.wait(function() return U.find('Commit message', buf) and U.find('Review diff', buf) end, 'cleared')
  T.ok(not text():find('/ ONE', 1, true), 'the filter line gone: ' .. text())
  U.no_answers_left()
end)

T.test('/ asks through a vim.ui.input a plugin installed, where an empty answer clears too', function()
  local _, buf = start()
  local asked = {}
  local answers = { 'style', '', nil }
  vim.ui.input = function(opts, cb)
    table.insert(asked, opts)
    cb(table.remove(answers, 1))
  end
  local ok, err = pcall(function()
    U.keys('/')
    T.wait(function() return U.find('/ style', buf) ~= nil end, 'the filter set')
    T.ok(not U.find('Commit message', buf), 'others hidden')
    U.keys('/')
    T.eq('style', asked[2].default, 'the filter offered to change')
    T.wait(function() return U.find('Commit message', buf) ~= nil end, 'cleared by an empty answer')
    T.eq(nil, U.find('/ style', buf), 'the filter line gone')
  end)
  vim.ui.input = U.orig.input
  if not ok then
    error(err, 0)
  end
end)

T.test('keys are configurable, and every action is a <Plug> map', function()
  U.clean()
  T.fresh({ tab = { keys = { delete = 'X', rename = false }, position = 'right', width = 30 } })
  local p = U.create('prompt', { title = 'Only', content = 'x' })
  vim.cmd('Shelf')
  local buf, win = U.tab()
  T.eq(30, vim.api.nvim_win_get_width(win), 'width option')
  T.ok(vim.fn.win_screenpos(win)[2] > 1, 'on the right')
  T.wait(function() return U.find('Only', buf) ~= nil end, 'the prompt')
  U.cursor_to('Only')
  T.eq('', vim.fn.maparg('r', 'n'), 'r unmapped')
  T.ok(vim.fn.maparg('X', 'n'):find('shelf%-tab%-delete'), 'X maps to the delete <Plug>')
  T.ok(vim.fn.maparg('<Plug>(shelf-tab-delete)', 'n') ~= '', '<Plug>(shelf-tab-delete) exists')
  U.answer(true)
  U.keys('X')
  T.wait(function() return require('shelf.mirror').item('prompt', p.id) == nil end, 'deleted with X')
  vim.keymap.set('n', 'gR', '<Plug>(shelf-tab-rename)', { buffer = buf })
  local q = U.create('prompt', { title = 'Second', content = 'x' })
  T.wait(function() return U.find('Second', buf) ~= nil end, 'the prompt')
  U.cursor_to('Second')
  U.answer('Renamed through Plug')
  U.keys('gR')
  T.wait(function() return (require('shelf.mirror').item('prompt', q.id) or {}).title == 'Renamed through Plug' end,
    'renamed through a <Plug> map')
  T.fresh()
end)

-- What a full render would show: every line, each line's node (key, depth,
-- parent) and every highlight.
-- The counts the mirror keeps for the tab's folders (mirror.counts,
-- mirror.temp_ids), against a count of its items.
local function check_counts(what)
  local mirror = require('shelf.mirror')
  for _, kind in ipairs({ 'prompt', 'block' }) do
    local want, temps = {}, {}
    for _, it in ipairs(mirror.items(kind)) do
      local id = it.id
      local k = it.temporary and mirror.TEMP or (it.project_id or '')
      want[k] = (want[k] or 0) + 1
      if it.temporary then
        temps[id] = true
      end
    end
    T.eq(want, mirror.counts[kind], what .. ': the counts of ' .. kind .. 's')
    if kind == 'block' then
      T.eq(temps, mirror.temp_ids, what .. ': the temporary blocks')
    end
  end
end

local function snapshot(buf)
  local st = require('shelf.tab')._state()
  local rows = {}
  for l = 1, vim.api.nvim_buf_line_count(buf) do
    local r = st.rows[l]
    rows[l] = r and string.format('%s @%d in %s', r.node.key, r.depth, r.parent and r.parent.key or '-') or false
  end
  local marks = {}
  for l = 1, vim.api.nvim_buf_line_count(buf) do
    for _, h in ipairs(st.hls[l] or {}) do
      table.insert(marks, string.format('%d:%d-%d %s', l, h[2], h[3], h[1]))
    end
  end
  T.eq(nil, st.hls[vim.api.nvim_buf_line_count(buf) + 1], 'no highlights past the last line')
  return { lines = U.lines(buf), rows = rows, marks = marks }
end

T.test('changes of a few items are patched in, exactly as a full render draws them', function()
  local L, buf = start()
  local tab = require('shelf.tab')
  local client = require('shelf.client')
  local mirror = require('shelf.mirror')
  local st = tab._state()
  local drafts = U.create('project', { type = 'datasets', name = 'Drafts', parent_id = L.docs.id })
  -- A closed folder: items come and go inside it without a line.
  U.cursor_to('📁 Review')
  U.keys('za')
  T.wait(function() return U.find('Review diff', buf) == nil end, 'Review folded')
  local folders = { prompt = { L.code.id, L.review.id, false }, block = { L.docs.id, drafts.id, false } }
  local words = { 'Alpha', 'beta', 'Gamma', 'zeta', 'Émoji 🎉', 'mid', '0 first', '~ last' }
  math.randomseed(7)
  local function pick(t)
    return t[math.random(#t)]
  end
  local function items(kind)
    local out = {}
    for _, it in ipairs(mirror.items(kind)) do
      if not it.temporary then
        table.insert(out, it)
      end
    end
    table.sort(out, function(a, b) return a.id < b.id end)
    return out
  end
  local function settled(check)
    T.wait(function()
      local l = client.status().loading
      return check() and (l == nil or l == vim.NIL or (type(l) == 'table' and not l.refresh and (l.actions or 0) == 0))
        and not st.flush
    end, 'the change to reach the mirror and the tab')
  end
  local patched0, full0 = st.stats.patched, st.stats.full
  for step = 1, 60 do
    local kind = pick({ 'prompt', 'block' })
    local op = math.random(100)
    local list = items(kind)
    local what
    if op <= 35 or #list < 3 then
      local title = pick(words) .. ' ' .. step
      local temporary = kind == 'block' and math.random(6) == 1 or nil
      local f = pick(folders[kind])
      local it = U.create(kind, { title = title, content = 'c' .. step, project_id = (not temporary and f) or nil,
        temporary = temporary })
      what = 'create ' .. title
      settled(function() return mirror.item(kind, it.id) ~= nil end)
    else
      local it = pick(list)
      if op <= 55 then
        what = 'edit content of ' .. it.title
        U.update(kind, it.id, { content = 'changed ' .. step })
        settled(function() return mirror.item(kind, it.id).updated_at ~= it.updated_at end)
      elseif op <= 75 then
        local title = pick(words) .. ' ' .. step
        what = 'rename ' .. it.title .. ' to ' .. title
        U.update(kind, it.id, { title = title })
        settled(function() return mirror.item(kind, it.id).title == title end)
      elseif op <= 90 then
        local f = pick(folders[kind])
        what = 'move ' .. it.title
        U.update(kind, it.id, { project_id = f or vim.NIL })
        settled(function() return mirror.item(kind, it.id).updated_at ~= it.updated_at end)
      else
        what = 'delete ' .. it.title
        U.delete(kind, it.id)
        settled(function() return mirror.item(kind, it.id) == nil end)
      end
    end
    local shown = snapshot(buf)
    -- A full render from an empty buffer.
    vim.bo[buf].modifiable = true
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, {})
    vim.bo[buf].modifiable = false
    st.built = nil -- a new tree, from the mirror alone
    tab.render()
    local full = snapshot(buf)
    T.eq(full.lines, shown.lines, 'step ' .. step .. ' (' .. what .. '): lines')
    T.eq(full.rows, shown.rows, 'step ' .. step .. ' (' .. what .. '): rows')
    T.eq(full.marks, shown.marks, 'step ' .. step .. ' (' .. what .. '): highlights')
    check_counts('step ' .. step .. ' (' .. what .. ')')
  end
  -- Highlights reach the screen, on lines a patch put in too.
  local title = 'Zz patched in last'
  U.create('prompt', { title = title, content = 'z' })
  T.wait(function() return U.find(title, buf) ~= nil end, 'the new prompt')
  local _, win = U.tab()
  local pos = vim.fn.win_screenpos(win)
  local function attr(l, col)
    local r = l - vim.fn.getwininfo(win)[1].topline + pos[1]
    return vim.fn.screenattr(r, pos[2] + col - 1)
  end
  -- The cursor away from the lines looked at ('cursorline').
  vim.api.nvim_win_call(win, function() vim.fn.winrestview({ topline = 1, lnum = 3 }) end)
  vim.cmd('redraw')
  T.ok(attr(1, 2) ~= 0 and attr(1, 2) ~= attr(2, 1), 'the header is highlighted')
  local l = U.find(title, buf)
  vim.api.nvim_win_call(win, function() vim.fn.winrestview({ topline = l - 1, lnum = l - 1 }) end)
  vim.cmd('redraw')
  local text = vim.api.nvim_buf_get_lines(buf, l - 1, l, false)[1]
  local hint_col = vim.fn.strdisplaywidth(text:sub(1, text:find('now', 1, true) - 1)) + 1
  T.ok(attr(l, hint_col) ~= 0 and attr(l, hint_col) ~= attr(l, 1), 'the hint of the new line is highlighted')

  -- The patch path did the work (each step's own full render is counted too).
  T.ok(st.stats.patched - patched0 >= 40, 'patched: ' .. (st.stats.patched - patched0))
  T.ok(st.stats.full - full0 < 60 + 20, 'full renders: ' .. (st.stats.full - full0))
end)

T.test('marks other features add show on their lines, redrawn in place as a full render draws them', function()
  local L, buf = start()
  local tab = require('shelf.tab')
  local render = require('shelf.tab.render')
  local st = tab._state()
  local marked = {}
  render.add_mark('test', function(node)
    if marked[node.key] then
      return '●', 'ShelfMarker'
    end
  end)
  local key = 'prompt:' .. L.explain.id
  marked[key] = true
  local patched0 = st.stats.full
  tab.redraw({ key, 'project:' .. L.docs.id })
  T.eq(patched0, st.stats.full, 'redrawn in place, not by a full render')
  T.ok(U.find('≡ ● Explain  now', buf), 'the mark: ' .. vim.inspect(U.lines(buf)))
  local l = U.find('≡ ● Explain', buf)
  local shown, hls = U.lines(buf), vim.deepcopy(st.hls)
  T.ok(vim.tbl_contains(vim.tbl_map(function(h) return h[1] end, hls[l]), 'ShelfMarker'), 'the mark is highlighted')
  marked['project:' .. L.docs.id] = true
  tab.redraw({ 'project:' .. L.docs.id })
  T.ok(U.find('▾ 📚 ● Docs (2)', buf), 'a folder mark: ' .. vim.inspect(U.lines(buf)))
  shown, hls = U.lines(buf), vim.deepcopy(st.hls)
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, {})
  vim.bo[buf].modifiable = false
  tab.render()
  T.eq(U.lines(buf), shown, 'a full render draws the same lines')
  T.eq(st.hls, hls, 'and the same highlights')
  marked = {}
  tab.redraw({ key, 'project:' .. L.docs.id })
  T.ok(U.find('    ≡ Explain  now', buf) and U.find('▾ 📚 Docs (2)', buf),
    'marks gone: ' .. vim.inspect(U.lines(buf)))
  render.remove_mark('test')
  T.eq({}, render.marks, 'no marks left')
end)

T.test('every action is one entry: its <Plug> map, its key and its g? line', function()
  start()
  local actions = require('shelf.tab.actions')
  U.keys('g?')
  local help = U.lines()
  U.keys('q')
  for _, a in ipairs(actions.list) do
    T.ok(type(a.callback) == 'function' and a.desc ~= '', a.name)
    T.ok(vim.fn.maparg(actions.plug(a.name), 'n') ~= '', a.name .. ' has a <Plug> map')
    local keys = require('shelf.config').get().tab.keys[a.name]
    local first = type(keys) == 'table' and keys[1] or keys
    T.ok(vim.tbl_contains(help, string.format(' %-10s %s', type(keys) == 'table' and table.concat(keys, ' ') or keys,
      a.desc)), a.name .. ' in the help')
    T.ok(vim.fn.maparg(first, 'n'):find(actions.plug(a.name), 1, true), a.name .. ' key ' .. first)
  end
end)

T.test('a big library: folders start closed with their counts; long lists show a page, then "… N more"', function()
  U.clean()
  local S = require('shelf.tab.state')
  local tab = require('shelf.tab')
  local st = tab._state()
  st.collapsed, st.limits = {}, {}
  S.PAGE = 3 -- pages of 3 children instead of 200, to see them on a small library
  local ok, err = pcall(function()
    T.fresh({ tab = { fold_above = 5 } })
    local L = library()
    for i = 1, 5 do
      U.create('prompt', { title = 'Code ' .. i, content = 'c', project_id = L.code.id })
    end
    vim.cmd('Shelf')
    local buf = U.tab()
    T.wait(function() return U.find('Scratch', buf) ~= nil end, 'the tree')
    -- 12 items, more than 5: closed folders, a line each with its count.
    T.ok(U.find('▾ Prompts (8)', buf) and U.find('  ▸ 📁 Code (7)', buf) and U.find('  ▸ … Unsorted (1)', buf)
      and U.find('  ▸ 📚 Docs (2)', buf), vim.inspect(U.lines(buf)))
    T.eq(nil, U.find('Review', buf), 'what a closed folder holds has no line')
    T.eq(nil, U.find('Explain', buf), 'nor its items')
    T.ok(U.find('~ Scratch', buf), 'sections start open')

    -- A change inside a closed folder (two levels down) is patched in: the counts.
    local patched, full = st.stats.patched, st.stats.full
    local deep = U.create('prompt', { title = 'Deep one', content = 'd', project_id = L.review.id })
    T.wait(function() return U.find('  ▸ 📁 Code (8)', buf) ~= nil end, 'the count of the closed folder')
    T.ok(U.find('▾ Prompts (9)', buf), 'and of the section')
    T.eq(full, st.stats.full, 'in place, not by a full render')
    T.ok(st.stats.patched > patched, 'patched')
    U.delete('prompt', deep.id)
    T.wait(function() return U.find('  ▸ 📁 Code (7)', buf) ~= nil end, 'a delete inside it too')

    -- Opened: its folder, then its items, a page of them and a line for the rest.
    U.cursor_to('📁 Code')
    U.keys('<CR>')
    local want = { '  ▾ 📁 Code (7)', '    ▸ 📁 Review (1)', '      ≡ Code 1', '      ≡ Code 2',
      '      … 4 more' }
    local at = U.find('📁 Code', buf)
    local got = vim.tbl_map(function(l) return (l:gsub('  now$', '')) end,
      vim.api.nvim_buf_get_lines(buf, at - 1, at - 1 + #want, false))
    T.eq(want, got, 'the first page')
    -- <CR> on '… 4 more' shows the next page, the cursor on its first line.
    U.cursor_to('… 4 more')
    U.keys('<CR>')
    T.ok(U.cursor_line():find('Code 3', 1, true), 'on the first of the next page: ' .. U.cursor_line())
    T.ok(U.find('      ≡ Code 5', buf) and U.find('      … 1 more', buf), vim.inspect(U.lines(buf)))
    T.eq(nil, U.find('Explain', buf), 'still one more')

    -- The cursor keeps its item when one comes before it in a paged folder,
    -- and when a folder change takes a new tree.
    U.cursor_to('Code 4')
    U.create('prompt', { title = 'Code 0', content = 'c', project_id = L.code.id })
    T.wait(function() return U.find('Code 0', buf) ~= nil end, 'the new prompt')
    T.ok(U.cursor_line():find('Code 4', 1, true), 'still on Code 4: ' .. U.cursor_line())
    T.ok(U.find('      … 2 more', buf), 'one more past the page: ' .. vim.inspect(U.lines(buf)))
    U.update('project', L.docs.id, { name = 'Documents' })
    T.wait(function() return U.find('Documents', buf) ~= nil end, 'the folder renamed')
    T.ok(U.cursor_line():find('Code 4', 1, true), 'still on Code 4: ' .. U.cursor_line())

    -- What the patches and pages drew is what a new tree draws.
    local shown = U.lines(buf)
    vim.bo[buf].modifiable = true
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, {})
    vim.bo[buf].modifiable = false
    st.built = nil
    tab.render()
    T.eq(U.lines(buf), shown, 'as a full render draws it')

    -- Revealing an item opens the folders above it and the page it is on.
    tab.reveal('prompt:' .. L.diff.id)
    T.ok(U.cursor_line():find('Review diff', 1, true), 'on it: ' .. U.cursor_line())
    T.ok(U.find('    ▾ 📁 Review (1)', buf), 'its folder open')
    tab.reveal('prompt:' .. L.explain.id)
    T.ok(U.cursor_line():find('Explain', 1, true), 'on the last page: ' .. U.cursor_line())

    -- A new shelfd's first load replaces the library: its counts come with it,
    -- the temporary block it was given back too.
    local client = require('shelf.client')
    local pid = client.pid()
    vim.cmd('Shelf restart')
    T.wait(function() return client.pid() ~= pid and client.status().ready end, 'the new shelfd', 15000)
    check_counts('after a restart')
    T.wait(function() return U.find('  ▾ 📁 Code (8)', buf) ~= nil end, 'the same counts drawn')
    T.ok(U.find('~ Scratch', buf), 'the temporary block kept')
    tab.close()
  end)
  S.PAGE = 200
  st.collapsed, st.limits = {}, {}
  assert(ok, err)
end)
