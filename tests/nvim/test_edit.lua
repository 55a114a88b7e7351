-- Edit buffers: shelf://prompt/<id> and shelf://block/<id>, saved with :w
-- through the real shelfd.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local shelf = require('shelf')
local mirror = require('shelf.mirror')

local function db_exec(db, sql)
  local out = vim.fn.system({ 'sqlite3', db, sql })
  T.eq(0, vim.v.shell_error, 'sqlite3: ' .. out)
end

local function set_line(n, text)
  vim.api.nvim_buf_set_lines(0, n - 1, n, false, { text })
end

-- Hold the database's write lock from another process (shelfd's writes
-- wait for it, up to its busy timeout); returns the function that lets go.
local function lock_db(db)
  local out = {}
  local job = vim.fn.jobstart({ 'sqlite3', db }, { on_stdout = function(_, data)
    vim.list_extend(out, data)
  end })
  vim.fn.chansend(job, "begin exclusive;\nselect 'locked';\n")
  T.wait(function() return vim.tbl_contains(out, 'locked') end, 'the database locked')
  return function()
    vim.fn.chansend(job, 'commit;\n.quit\n')
    T.eq({ 0 }, vim.fn.jobwait({ job }, 5000), 'the lock let go')
  end
end

T.test('<CR> in the tab opens an item in an acwrite markdown buffer with a header', function()
  U.clean()
  T.fresh()
  local folder = U.create('project', { type = 'prompts', name = 'Writing' })
  local p = U.create('prompt', { title = 'Summarise', description = 'short', tags = { 'a', 'b' },
    project_id = folder.id, content = 'Summarise {{text}}\nfor a busy reader' })
  vim.cmd('Shelf')
  T.wait(function() return U.find('Summarise', U.tab()) ~= nil end, 'the prompt in the tab')
  U.cursor_to('Summarise')
  U.keys('<CR>')
  T.eq('shelf://prompt/Summarise [' .. p.id:sub(1, 8) .. ']', vim.api.nvim_buf_get_name(0), 'buffer name')
  T.eq('acwrite', vim.bo.buftype, 'buftype')
  T.eq('markdown', vim.bo.filetype, 'filetype')
  T.eq(false, vim.bo.modified, 'not modified')
  T.eq({ '---', 'title: Summarise', 'description: short', 'tags: a, b', 'folder: Writing', '---',
    'Summarise {{text}}', 'for a busy reader' }, U.lines(), 'lines')
  T.ok(U.tab() ~= nil, 'the tab stays open beside it')
  -- :edit of the same name from anywhere reads it too.
  vim.cmd('enew')
  vim.cmd('edit shelf://prompt/' .. p.id)
  T.wait(function() return U.lines()[2] == 'title: Summarise' end, ':edit shelf://...')
end)

T.test('edit buffers are named after the title, and any name with the id finds the item', function()
  U.clean()
  T.fresh()
  local edit = require('shelf.edit')
  local p = U.create('prompt', { title = 'Weekly\treport: a/b ' .. string.rep('x', 50), content = 'c' })
  local twin = U.create('prompt', { title = 'Twin', content = '1' })
  local twin2 = U.create('prompt', { title = 'Twin', content = '2' })
  edit.open('prompt', p.id)
  local buf = vim.api.nvim_get_current_buf()
  local short = p.id:sub(1, 8)
  local want = 'shelf://prompt/Weekly report: a/b ' .. string.rep('x', 20) .. '… [' .. short .. ']'
  T.eq(want, vim.api.nvim_buf_get_name(buf), 'one line, at most 40 characters of title, then the id')
  T.ok(vim.api.nvim_exec('ls', true):find('Weekly report', 1, true), ':ls shows the title')
  -- The whole id, as an older name had it: the same buffer.
  vim.cmd('enew')
  vim.cmd('edit shelf://prompt/' .. p.id)
  T.wait(function() return vim.api.nvim_get_current_buf() == buf end, 'the same buffer')
  T.eq(nil, vim.tbl_filter(function(b)
    return vim.api.nvim_buf_get_name(b) == 'shelf://prompt/' .. p.id
  end, vim.api.nvim_list_bufs())[1], 'no second buffer')
  -- Any title with the start of the id: read from the id.
  vim.cmd('bwipeout! ' .. buf)
  vim.cmd('edit ' .. vim.fn.fnameescape('shelf://prompt/anything [' .. short .. ']'))
  T.eq('c', U.lines()[7], 'loaded by the id in brackets')
  T.eq(p.id, edit.info().id, 'the whole id')
  T.eq(want, vim.api.nvim_buf_get_name(0), 'renamed to the title')
  -- Same titles, different names.
  edit.open('prompt', twin.id)
  local n1 = vim.api.nvim_buf_get_name(0)
  edit.open('prompt', twin2.id)
  T.ok(n1 ~= vim.api.nvim_buf_get_name(0) and n1:find('^shelf://prompt/Twin %['), n1)
  -- A new title, saved here or made elsewhere, shows in the name.
  set_line(2, 'title: Twin two')
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the save')
  T.ok(vim.api.nvim_buf_get_name(0):find('^shelf://prompt/Twin two %['), vim.api.nvim_buf_get_name(0))
  U.update('prompt', twin2.id, { title = 'Renamed elsewhere' })
  T.wait(function() return vim.api.nvim_buf_get_name(0):find('^shelf://prompt/Renamed elsewhere %[') end,
    'the new name: ' .. vim.api.nvim_buf_get_name(0))
  local twin2_buf = vim.api.nvim_get_current_buf()
  T.eq(nil, vim.tbl_filter(function(b)
    return vim.api.nvim_buf_get_name(b):find('Twin two', 1, true) ~= nil
  end, vim.api.nvim_list_bufs())[1], 'no buffer left with an old name')
  -- Opened again from anywhere: the same buffer, whatever its name says.
  edit.open('prompt', twin.id)
  edit.open('prompt', twin2.id)
  T.eq(twin2_buf, vim.api.nvim_get_current_buf(), 'the same buffer')
end)

T.test(':w waits for the confirmation; a slow one goes on in the background, modified until confirmed', function()
  U.clean()
  local db = T.fresh()
  local p = U.create('prompt', { title = 'Old', content = 'old text' })
  require('shelf.edit').open('prompt', p.id)
  set_line(2, 'title: New title')
  set_line(4, 'tags: x, #y')
  vim.api.nvim_buf_set_lines(0, -1, -1, false, { 'more' })
  vim.cmd('write')
  T.eq(false, vim.bo.modified, 'saved when :w returns')
  local full = shelf.get('prompt', p.id)
  T.eq('New title', full.title, 'title stored')
  T.eq({ 'x', 'y' }, full.tags, 'tags stored')
  T.eq('old text\nmore', full.content, 'content stored')
  T.wait(function() return U.message("saved prompt 'New title'") ~= nil end, 'the message: ' .. U.all_messages())
  -- :w with nothing changed sends nothing.
  U.reset()
  vim.cmd('write')
  T.wait(function() return U.message('no changes') ~= nil end, 'no changes: ' .. U.all_messages())
  -- The database busy: :w gives up waiting, the save goes on.
  local unlock = lock_db(db)
  set_line(7, 'slow')
  U.reset()
  vim.cmd('write')
  T.eq(true, vim.bo.modified, 'still modified after :w gave up waiting')
  T.eq(true, require('shelf.edit').info().saving, 'still saving')
  T.wait(function() return U.message('still saving') ~= nil end, 'told: ' .. U.all_messages())
  unlock()
  T.wait(function() return not vim.bo.modified end, 'the confirmation')
  T.eq('slow\nmore', shelf.get('prompt', p.id).content, 'stored')
end)

T.test('a failed save keeps the text and the modified flag; :w again retries', function()
  U.clean()
  local db = T.fresh()
  local p = U.create('prompt', { title = 'Keep me', content = 'v1' })
  require('shelf.edit').open('prompt', p.id)
  db_exec(db, "create trigger no_updates before update on prompts begin select raise(abort, 'disk says no'); end;")
  set_line(7, 'v2 typed by the user')
  vim.cmd('write')
  T.wait(function() return U.message('disk says no') ~= nil end, 'the error message')
  local m = U.message('disk says no')
  T.eq(vim.log.levels.ERROR, m.level, 'an error')
  T.ok(m.msg:find('stays modified', 1, true) and m.msg:find(':w tries again', 1, true), m.msg)
  T.eq(true, vim.bo.modified, 'still modified')
  T.eq('v2 typed by the user', U.lines()[7], 'text kept')
  T.eq('v1', shelf.get('prompt', p.id).content, 'nothing stored')
  db_exec(db, 'drop trigger no_updates')
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the retry')
  T.eq('v2 typed by the user', shelf.get('prompt', p.id).content, 'stored on retry')
end)

T.test(':wq, ZZ, :x, maps and vim.cmd close the window once saved; a slow save keeps it open', function()
  U.clean()
  local db = T.fresh()
  local b = U.create('block', { title = 'Note', content = 'a' })
  local function edit_in_split(text)
    vim.cmd('split')
    require('shelf.edit').open('block', b.id)
    T.eq(2, #vim.api.nvim_tabpage_list_wins(0), 'two windows')
    set_line(6, text)
  end
  local function closed_and_saved(text, how)
    T.eq(1, #vim.api.nvim_tabpage_list_wins(0), how .. ' closed the window')
    T.eq(text, shelf.get('block', b.id).content, 'saved by ' .. how)
  end
  edit_in_split('b')
  U.keys(':wq<CR>')
  closed_and_saved('b', ':wq')
  edit_in_split('c')
  U.keys('ZZ')
  closed_and_saved('c', 'ZZ')
  edit_in_split('d')
  vim.cmd('write | quit')
  closed_and_saved('d', ':w|q')
  -- Routes that type no ':wq': a <Cmd> map, a Lua map, the API.
  vim.keymap.set('n', '<F2>', '<Cmd>wq<CR>')
  vim.keymap.set('n', '<F3>', function() vim.cmd('x') end)
  edit_in_split('e')
  U.keys('<F2>')
  closed_and_saved('e', '<Cmd>wq<CR>')
  edit_in_split('f')
  U.keys('<F3>')
  closed_and_saved('f', "vim.cmd('x') in a map")
  edit_in_split('g')
  vim.api.nvim_command('wq')
  closed_and_saved('g', "nvim_command('wq')")
  vim.keymap.del('n', '<F2>')
  vim.keymap.del('n', '<F3>')
  -- A new item: created, renamed and closed by one :wq.
  vim.cmd('split')
  vim.cmd('Shelf new block')
  U.keys('AMade by wq<Esc>Gobody<Esc>:wq<CR>')
  T.eq(1, #vim.api.nvim_tabpage_list_wins(0), ':wq closed the new item\'s window')
  local made = vim.tbl_filter(function(x) return x.title == 'Made by wq' end, shelf.items('block'))[1]
  T.ok(made, 'created')
  T.eq('body', shelf.get('block', made.id).content, 'with its content')
  T.ok(require('shelf.edit').buffer_of('block', made.id), 'its buffer kept (hidden), by its id')
  -- A failing save keeps the window open and the text.
  edit_in_split('h')
  set_line(2, 'title:')
  U.keys(':wq<CR>')
  T.eq(2, #vim.api.nvim_tabpage_list_wins(0), 'still open after a bad header')
  T.eq(true, vim.bo.modified, 'still modified')
  vim.cmd('edit!')
  -- A slow save: :wq stops, says why; :q then waits for it.
  local unlock = lock_db(db)
  set_line(6, 'i')
  U.reset()
  U.keys(':wq<CR>')
  T.eq(2, #vim.api.nvim_tabpage_list_wins(0), 'still open while the save is not confirmed')
  T.wait(function() return U.message('so :wq and ZZ stop here') ~= nil end, 'told: ' .. U.all_messages())
  unlock()
  vim.cmd('quit')
  closed_and_saved('i', ':q after the slow :wq')
end)

T.test(':Shelf new prompt|block|temp opens a buffer that becomes real on :w', function()
  U.clean()
  T.fresh()
  local f = U.create('project', { type = 'datasets', name = 'Docs' })
  vim.cmd('Shelf new prompt')
  T.ok(vim.api.nvim_buf_get_name(0):find('^shelf://new/prompt/%d+$'), vim.api.nvim_buf_get_name(0))
  -- No empty line after the header: what is typed below it is the
  -- content's first line.
  T.eq({ '---', 'title: ', 'description:', 'tags:', 'folder:', '---' }, U.lines(), 'template')
  T.eq(2, vim.api.nvim_win_get_cursor(0)[1], 'cursor ready for the title')
  U.keys('AFresh<Esc>GoHello {{name}}<Esc>')
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the create')
  local id = require('shelf.edit').info().id
  T.eq('shelf://prompt/Fresh [' .. id:sub(1, 8) .. ']', vim.api.nvim_buf_get_name(0), 'named after the new item')
  T.eq('Fresh', shelf.get('prompt', id).title, 'title')
  T.eq('Hello {{name}}', shelf.get('prompt', id).content, 'content from the line after the header')
  T.eq(-1, vim.fn.bufnr('shelf://new/prompt/1'), 'no stale buffer with the old name')
  -- Saving again updates the same item.
  set_line(7, 'Hello again')
  T.eq(7, #U.lines(), 'the content on line 7')
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the update')
  T.eq(1, #shelf.items('prompt'), 'still one prompt')

  vim.cmd('Shelf new block')
  set_line(2, 'title: In docs')
  set_line(4, 'folder: docs')
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the block create')
  local bid = require('shelf.edit').info().id
  T.ok(vim.api.nvim_buf_get_name(0):find('^shelf://block/In docs %['), vim.api.nvim_buf_get_name(0))
  T.eq(f.id, mirror.item('block', bid).project_id, 'in the folder')

  vim.cmd('Shelf new temp')
  set_line(2, 'title: Scratch')
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the temp create')
  local tid = require('shelf.edit').info().id
  T.eq(true, mirror.item('block', tid).temporary, 'temporary')
end)

T.test('an item without content shows no empty content line; what is typed below the header is the content', function()
  U.clean()
  T.fresh()
  local b = U.create('block', { title = 'Empty', content = '' })
  require('shelf.edit').open('block', b.id)
  T.eq({ '---', 'title: Empty', 'tags:', 'folder:', '---' }, U.lines(), 'no line after the header')
  U.keys('Gofirst<Esc>')
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the save')
  T.eq('first', shelf.get('block', b.id).content, 'no leading line break')
end)

T.test('bad header input names the line; nothing is sent; nothing is lost', function()
  U.clean()
  T.fresh()
  U.create('project', { type = 'prompts', name = 'Real' })
  local p = U.create('prompt', { title = 'T', content = 'c' })
  require('shelf.edit').open('prompt', p.id)
  local changed = T.count_events('ShelfChanged')
  -- What the buffer sends to shelfd.
  local client = require('shelf.client')
  local call, sent = client.call, {}
  client.call = function(method, ...)
    table.insert(sent, method)
    return call(method, ...)
  end
  local cases = {
    { 2, 'title:   ', 'line 2: the title is empty' },
    { 5, 'folder: Imaginary', "line 5: there is no prompt folder 'Imaginary'; known: Real" },
    { 4, 'tags: a,,b', "line 4: malformed tags 'a,,b'" },
    { 4, 'tags: [a, b]', "line 4: malformed tags '[a, b]'" },
    { 3, 'colour: red', "line 3: unknown field 'colour'" },
    { 6, 'not the end', "line 6: 'not the end' is not a field, and the header has no closing '---'" },
    { 7, 'ok \255 no', 'line 7, column 4: the byte <ff> is not UTF-8 text' },
    { 2, 'title: b\192\128', 'line 2, column 9: the byte <c0> is not UTF-8 text' },
  }
  for _, c in ipairs(cases) do
    vim.cmd('edit!')
    local before = U.lines()
    set_line(c[1], c[2])
    U.reset()
    vim.cmd('write')
    T.wait(function() return U.message(c[3]) ~= nil end, 'the message for ' .. c[2])
    local m = U.message(c[3])
    T.ok(m.msg:find('nothing was sent', 1, true), m.msg)
    T.eq(true, vim.bo.modified, 'still modified')
    before[c[1]] = c[2]
    T.eq(before, U.lines(), 'text kept')
  end
  T.eq({}, sent, 'nothing sent')
  T.eq('T', shelf.get('prompt', p.id).title, 'stored item untouched')
  -- The same watches see a good :w: one update sent, and its change is the
  -- first (shelfd answers in order: a bad header sent before would come first).
  vim.cmd('edit!')
  set_line(4, 'tags: fine')
  vim.cmd('write')
  client.call = call
  T.eq({ 'update' }, sent, 'a good :w is sent')
  T.wait(function() return changed.n > 0 end, 'the change of the good :w')
  T.eq(1, changed.n, 'only the good :w changed anything')
  T.eq({ 'fine' }, shelf.get('prompt', p.id).tags, 'the good :w stored')
  -- Shown by Neovim's own vim.notify: a plain error message, not one from
  -- inside the autocommand (with a hit-enter prompt).
  vim.notify = U.orig.notify
  local ok, err = pcall(function()
    vim.cmd('edit!')
    vim.cmd('messages clear')
    set_line(2, 'title:')
    vim.cmd('write')
    T.wait(function()
      return vim.api.nvim_exec('messages', true):find('line 2: the title is empty', 1, true) ~= nil
    end, 'the message')
    local text = vim.api.nvim_exec('messages', true)
    T.ok(not text:find('Error detected while processing', 1, true), text)
    T.eq(true, vim.bo.modified, 'still modified')
  end)
  vim.notify = U.notify
  if not ok then
    error(err, 0)
  end
end)

T.test('the folder field names any folder: a slash inside a name, same paths, by id', function()
  U.clean()
  T.fresh()
  local cicd = U.create('project', { type = 'prompts', name = 'CI/CD' })
  local ab = U.create('project', { type = 'prompts', name = 'A / B' })
  local a = U.create('project', { type = 'prompts', name = 'A' })
  local a_b = U.create('project', { type = 'prompts', name = 'B', parent_id = a.id })
  local dup1 = U.create('project', { type = 'prompts', name = 'Dup' })
  local dup2 = U.create('project', { type = 'prompts', name = 'dup' }) -- the backend allows it
  local p = U.create('prompt', { title = 'P', content = 'c', project_id = cicd.id })
  require('shelf.edit').open('prompt', p.id)
  T.eq('folder: CI\\/CD', U.lines()[5], 'a slash inside a name is shown escaped')
  local function move_to(text)
    set_line(5, 'folder: ' .. text)
    U.reset()
    vim.cmd('write')
    T.wait(function() return not vim.bo.modified or #U.messages > 0 end, 'the save of ' .. text)
  end
  local function folder_now()
    T.wait(function() return not vim.bo.modified end, 'the save: ' .. U.all_messages())
    return shelf.get('prompt', p.id).project_id
  end
  move_to('A \\/ B')
  T.eq(ab.id, folder_now(), "'A \\/ B' is the folder named 'A / B'")
  T.eq('folder: A \\/ B', U.lines()[5], 'shown as written')
  move_to('a / b')
  T.eq(a_b.id, folder_now(), "'a / b' is B inside A")
  move_to('CI/CD')
  T.eq(cicd.id, folder_now(), "'CI/CD' written as it is, when nothing else has that path")
  -- Two folders with one path: the header names it by id; the path asks.
  move_to('Dup')
  local m = U.message('several prompt folders are called')
  T.ok(m and m.msg:find("line 5: several prompt folders are called 'Dup': ", 1, true)
    and m.msg:find("write the whole path, or 'id:'", 1, true), U.all_messages())
  T.eq(true, vim.bo.modified, 'not sent')
  local short = require('shelf.ids').short('project', dup2.id)
  T.ok(m.msg:find('id:' .. short, 1, true), 'the ids to choose from: ' .. m.msg)
  move_to('id:' .. short)
  T.eq(dup2.id, folder_now(), 'by the start of its id')
  T.eq('folder: id:' .. short, U.lines()[5], 'a folder sharing its path is shown by id')
  move_to('id:' .. dup1.id)
  T.eq(dup1.id, folder_now(), 'by its whole id')
  -- Not found, with slashes about: how to write one.
  move_to('CI-CD')
  m = U.message("there is no prompt folder 'CI-CD'")
  T.ok(m and m.msg:find('CI\\/CD', 1, true) and m.msg:find("'\\/' is a slash inside a name", 1, true),
    U.all_messages())
end)

T.test('changes elsewhere: reload when unmodified; warn, then ask before overwriting', function()
  U.clean()
  T.fresh()
  local p = U.create('prompt', { title = 'Shared', content = 'one' })
  require('shelf.edit').open('prompt', p.id)
  vim.api.nvim_win_set_cursor(0, { 7, 1 })
  U.update('prompt', p.id, { content = 'two\nthree' })
  T.wait(function() return U.lines()[7] == 'two' end, 'the reload')
  T.eq(false, vim.bo.modified, 'not modified after the reload')
  T.eq({ 7, 1 }, vim.api.nvim_win_get_cursor(0), 'cursor kept')

  -- Now with unsaved edits.
  set_line(7, 'my edit')
  U.reset()
  U.update('prompt', p.id, { content = 'theirs' })
  T.wait(function() return U.message('changed elsewhere') ~= nil end, 'the warning')
  T.eq('my edit', U.lines()[7], 'my edit kept')
  T.eq(true, vim.bo.modified, 'still modified')
  -- :w asks; "no" keeps both as they are.
  U.answer(false)
  vim.cmd('write')
  T.ok(U.asked[1].question:find('changed elsewhere since you opened it', 1, true), U.asked[1].question)
  T.eq('theirs', shelf.get('prompt', p.id).content, 'theirs kept on cancel')
  T.eq(true, vim.bo.modified, 'still modified')
  -- "yes" overwrites.
  U.answer(true)
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the overwrite')
  T.eq('my edit\nthree', shelf.get('prompt', p.id).content, 'mine stored')
  U.no_answers_left()
end)

T.test('deleted elsewhere: told, the text stays, :w creates it again', function()
  U.clean()
  T.fresh()
  local p = U.create('prompt', { title = 'Doomed', content = 'precious' })
  require('shelf.edit').open('prompt', p.id)
  set_line(7, 'precious, edited')
  U.delete('prompt', p.id)
  T.wait(function() return U.message('was deleted elsewhere') ~= nil end, 'the message')
  T.eq('precious, edited', U.lines()[7], 'text stays')
  -- c (Cancel's key) creates nothing; the question's own key creates.
  U.answer('c')
  vim.cmd('write')
  T.ok(U.asked[1].question:find('was deleted elsewhere', 1, true), U.asked[1].question)
  T.wait(function() return U.message('not saved') ~= nil end, 'not saved')
  T.eq(true, vim.bo.modified, 'still modified after Cancel')
  T.eq(0, #shelf.items('prompt'), 'nothing created by c')
  U.answer(true)
  vim.cmd('write')
  T.eq('&Recreate\n&Cancel', U.asked[2].choices, 'a key of its own for each choice')
  T.wait(function() return not vim.bo.modified end, 'the re-create')
  local id = require('shelf.edit').info().id
  T.ok(id and id ~= p.id, 'a new item')
  T.eq('precious, edited', shelf.get('prompt', id).content, 'content')
  U.no_answers_left()
end)

T.test('a field left as shown is not changed: multi-line titles and descriptions survive a save', function()
  U.clean()
  T.fresh()
  local p = U.create('prompt', { title = 'Two\nlines', description = 'first\nsecond\n\nfourth', content = 'c',
    tags = { 'code review' } })
  require('shelf.edit').open('prompt', p.id)
  T.eq({ '---', 'title: Two lines', 'description: first', '  second', '', '  fourth', 'tags: code review,',
    'folder:', '---', 'c' }, U.lines(), 'a description on lines of its own; a title on one; no trailing spaces')
  -- Only the content changes.
  vim.api.nvim_buf_set_lines(0, -1, -1, false, { 'more' })
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the save')
  local full = shelf.get('prompt', p.id)
  T.eq('c\nmore', full.content, 'content saved')
  T.eq('Two\nlines', full.title, 'the title untouched')
  T.eq('first\nsecond\n\nfourth', full.description, 'the description untouched')
  T.eq({ 'code review' }, full.tags, 'the tag with a space untouched')
  -- The description edited on its lines; tags separated by spaces.
  set_line(4, '  second, edited')
  vim.api.nvim_buf_set_lines(0, 6, 7, false, { 'tags: a #b c' })
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the second save')
  full = shelf.get('prompt', p.id)
  T.eq('first\nsecond, edited\n\nfourth', full.description, 'the description edited')
  T.eq({ 'a', 'b', 'c' }, full.tags, 'tags split on spaces')
  T.eq('Two\nlines', full.title, 'the title still untouched')
  -- The title edited: one line from now on.
  set_line(2, 'title: One line')
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the third save')
  T.eq('One line', shelf.get('prompt', p.id).title, 'the title edited')
  -- :w after a change elsewhere, overwriting it: fields left as shown keep
  -- their values (not their one-line text) there too.
  U.update('prompt', p.id, { title = 'Multi\nline again', content = 'theirs' })
  T.wait(function() return U.lines()[2] == 'title: Multi line again' end, 'the reload')
  set_line(#U.lines(), 'mine')
  U.update('prompt', p.id, { content = 'theirs again' })
  T.wait(function() return require('shelf.edit').info().conflict end, 'the conflict')
  U.answer(true)
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the overwrite')
  full = shelf.get('prompt', p.id)
  T.eq('mine', full.content, 'mine stored')
  T.eq('Multi\nline again', full.title, 'the title as it was loaded')
  U.no_answers_left()
end)
