-- Data another client wrote (the web app, SQL, the API): line breaks,
-- control characters, very long or empty titles, odd tags, invalid UTF-8,
-- emoji and right-to-left text. The store keeps it as it is; every view
-- shows it on one line (lua/shelf/display.lua), and the tab drawn from
-- changes equals a fresh render.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local O = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/odd_data_support.lua')
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')

-- Run SQL on the library file as another program would (sqlite3).
local function sql(statement)
  local out = vim.fn.system({ 'sqlite3', require('shelf.config').get().sqlite.path, statement })
  T.eq(0, vim.v.shell_error, 'sqlite3: ' .. out .. '\n' .. statement)
  return out
end

local function open_tab()
  vim.cmd('Shelf')
  local buf = U.tab()
  T.ok(buf, 'the tab opened')
  return buf
end

local assert_clean = O.assert_clean

T.test('the tab shows a title with a line break from another client on one line, and stays right', function()
  U.clean()
  T.fresh()
  local f = U.create('project', { type = 'prompts', name = 'Inbox' })
  local p = U.create('prompt', { title = 'Plain', content = 'x', project_id = f.id })
  local q = U.create('prompt', { title = 'Other', content = 'y', project_id = f.id })
  local buf = open_tab()
  T.wait(function() return U.find('Plain', buf) ~= nil end, 'the prompt')
  sql("UPDATE prompts SET title = 'Two' || char(10) || 'lines' || char(13) || char(10) || 'here' WHERE id = '"
    .. p.id .. "'")
  T.wait(function() return (mirror.item('prompt', p.id) or {}).title ~= 'Plain' end, 'the change to arrive')
  T.eq('Two\nlines\r\nhere', mirror.item('prompt', p.id).title, 'the title kept as written')
  T.wait(function() return U.find('≡ Two lines here', buf) ~= nil end, 'the title on one line:\n'
    .. table.concat(U.lines(buf), '\n'))
  T.ok(U.find('Inbox (2)', buf), 'the count')
  -- One more change elsewhere: the tab is still the fresh render's.
  U.update('prompt', q.id, { title = 'Other, renamed' })
  T.wait(function() return U.find('Other, renamed', buf) ~= nil end, 'the rename')
  local shown = U.lines(buf)
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, {})
  vim.bo[buf].modifiable = false
  require('shelf.tab').render()
  T.eq(U.lines(buf), shown, 'the tab equals a fresh render')
  assert_clean(shown, 'tab')
end)

-- ---- rows another client writes -------------------------------------------------

-- A SQL literal holding exactly these bytes.
local function lit(s)
  if s == nil then
    return 'NULL'
  end
  if s == '' then
    return "''"
  end
  return "CAST(X'" .. s:gsub('.', function(c) return string.format('%02X', c:byte()) end) .. "' AS TEXT)"
end

local stamp_n = 0
-- A new updated_at each time, `ago` seconds back: its text for SQL, and
-- what the mirror then holds (microseconds since the epoch).
local function stamp(ago)
  stamp_n = stamp_n + 1
  local t = os.time() - (ago or 0)
  return os.date('!%Y-%m-%dT%H:%M:%S', t) .. string.format('.%06d+00:00', stamp_n), t * 1e6 + stamp_n
end

local function new_id()
  return string.format('%08x-odd-%04x-%04x', math.random(0, 0x7fffffff), math.random(0, 0xffff), stamp_n)
end

-- Waits until the mirror holds item `id` of `kind` as of `us`; else fails
-- saying what the mirror and the change log hold.
local function wait_in_mirror(kind, id, us, what)
  local ok = vim.wait(10000, function() return (mirror.item(kind, id) or {}).updated_at == us end, 10)
  T.ok(ok, what .. ' in the mirror\nmirror: ' .. vim.inspect(mirror.item(kind, id))
    .. '\nchanges: ' .. sql('SELECT * FROM shelf_changes ORDER BY seq DESC LIMIT 3;'))
end

-- Insert (or replace) an item row; waits until shelfd has it.
local function put_item(kind, id, fields)
  local tbl = kind == 'prompt' and 'prompts' or 'context_blocks'
  local at, us = stamp(fields.ago)
  local cols, vals = { 'id', 'title', 'content', 'tags', 'project_id', 'created_at', 'updated_at' },
    { lit(id), lit(fields.title), lit(fields.content or 'c'), lit(fields.tags or '[]'), lit(fields.project_id),
      lit(at), lit(at) }
  if kind == 'prompt' then
    table.insert(cols, 'description')
    table.insert(vals, lit(fields.description))
  end
  local statement = string.format('INSERT OR REPLACE INTO %s(%s) VALUES(%s);', tbl, table.concat(cols, ','),
    table.concat(vals, ','))
  sql(statement)
  wait_in_mirror(kind, id, us, kind .. ' ' .. id .. ' (' .. statement .. ')')
end

local function put_folder(ftype, id, name, icon, parent_id)
  local at, us = stamp()
  sql(string.format('INSERT OR REPLACE INTO %s(id, name, icon, parent_id, created_at, updated_at) '
    .. 'VALUES(%s, %s, %s, %s, %s, %s);', ftype == 'prompts' and 'prompt_projects' or 'dataset_projects',
    lit(id), lit(name), lit(icon or '📁'), lit(parent_id), lit(at), lit(at)))
  wait_in_mirror('project', id, us, 'folder ' .. id)
end

local long, odd = O.long, O.odd

T.test('display: one line, cut at a display width, placeholders, tags', function()
  local display = require('shelf.display')
  T.eq('Two lines', display.line(odd.newline), 'a line break')
  T.eq('Windows line breaks', display.line(odd.crlf), 'CR LF and CR')
  T.eq('tab separated and feeds', display.line(odd.tab), 'tabs, VT, FF')
  T.eq('bell escape [31m red del', display.line(odd.control), 'control characters')
  T.eq('next line', display.line(odd.c1), 'C1 control')
  T.eq('line sep para sep', display.line(odd.separators), 'Unicode line and paragraph separators')
  T.eq('bad \239\191\189( and \239\191\189\239\191\189 bytes \239\191\189\239\191\189\239\191\189 surrogate',
    display.line(odd.bad_utf8), 'invalid UTF-8 as U+FFFD, a byte each')
  T.eq('safe txet desrever end', display.line(odd.bidi), 'bidi overrides dropped')
  for _, s in ipairs({ odd.emoji, odd.rtl, odd.cjk, odd.combining, 'plain ascii' }) do
    T.eq(s, display.line(s), 'kept as it is: ' .. s)
  end
  T.eq('(untitled)', display.title(odd.empty), 'empty')
  T.eq('(untitled)', display.title(odd.blank), 'whitespace only')
  T.eq('(untitled)', display.title(vim.NIL), 'null')
  T.eq('(untitled)', display.title({}), 'not text')
  T.eq('42', display.title(42), 'a number')
  local cut = display.title(long, 30)
  T.eq(30, vim.fn.strdisplaywidth(cut), 'cut to 30 cells: ' .. cut)
  T.eq('…', vim.fn.strcharpart(cut, vim.fn.strchars(cut) - 1), 'ends in an ellipsis')
  -- Wide characters: never past the width, never half a character.
  for _, s in ipairs({ odd.emoji, odd.cjk, odd.rtl, odd.combining }) do
    for w = 3, 12 do
      local c = display.truncate(s, w)
      T.ok(vim.fn.strdisplaywidth(c) <= w, string.format('%q cut to %d: %q', s, w, c))
      T.ok(vim.fn.strdisplaywidth(c) >= w - 2, string.format('%q cut to %d uses the room: %q', s, w, c))
    end
  end
  T.eq({ 'a,b', 'x', '5', 'true', 'two lines' }, display.tags({ vim.NIL, '', 'a,b', 'x', 'x', 5, true, { k = 1 },
    { 'n' }, '  ', 'two\nlines' }), 'only text, once, one line each')
  T.eq({}, display.tags(vim.NIL), 'null')
  T.eq({}, display.tags({ k = 'v' }), 'an object')
  T.eq({ 'not json' }, display.tags('not json'), 'a bare string')
  T.eq('📁', display.icon(''), 'no icon')
  T.eq('📁', display.icon(vim.NIL), 'null icon')
  T.ok(vim.fn.strdisplaywidth(display.icon(long)) <= 4, 'a long icon is cut')
end)

-- A library of odd rows, written by another client into the file: each
-- title of `odd`, some in a folder, with odd tags.
local odd_tags = {
  newline = '[null, "", "a,b", "x", "x", 5, true, {"k": 1}, ["n"], "two\\nlines"]',
  empty = 'not json',
  blank = 'null',
  crlf = '["🎉", "עברית"]',
  cjk = '42',
  tab = '{"a": 1}',
  rtl = '"bare"',
}
local in_folder = { empty = true, cjk = true, long = true }

local function odd_library()
  local L = { folder = new_id(), items = {} }
  put_folder('prompts', L.folder, 'Folder\nwith a break', 'X\nY')
  local names = vim.tbl_keys(odd)
  table.sort(names)
  for _, name in ipairs(names) do
    local id = new_id()
    put_item('prompt', id, { title = odd[name], tags = odd_tags[name], description = 'first\r\nsecond\tline',
      content = 'content of ' .. name, project_id = in_folder[name] and L.folder or nil })
    L.items[name] = id
  end
  return L
end

T.test('pickers show each odd row on one line, cut with an ellipsis', function()
  U.clean()
  T.fresh()
  local L = odd_library()
  local labels
  U.answer(function(items, l)
    labels = l
    return nil
  end)
  vim.cmd('Shelf prompts')
  T.eq(vim.tbl_count(odd), #labels, 'one entry each: ' .. vim.inspect(labels))
  assert_clean(labels, 'picker')
  for _, l in ipairs(labels) do
    T.ok(vim.fn.strdisplaywidth(l) < 250, 'short enough: ' .. l)
  end
  T.ok(vim.tbl_contains(labels, 'Two lines  #a,b #x #5 #true #two lines'), vim.inspect(labels))
  T.ok(vim.tbl_contains(labels, 'Folder with a break › (untitled)  #not json'), vim.inspect(labels))
  T.ok(vim.tbl_contains(labels, 'Folder with a break › 漢字とかなのタイトル  #42'), vim.inspect(labels))
  T.ok(vim.tbl_contains(labels, 'שלום עולם مرحبا بالعالم  #bare'), vim.inspect(labels))
  T.ok(vim.tbl_contains(labels, '(untitled)'), 'null tags: ' .. vim.inspect(labels))
  T.ok(vim.tbl_contains(labels, 'tab separated and feeds'), 'an object as tags: ' .. vim.inspect(labels))
  local cut
  for _, l in ipairs(labels) do
    if l:find('very long title', 1, true) then
      cut = l
    end
  end
  T.ok(cut and cut:find('…', 1, true), 'the long title cut: ' .. tostring(cut))
  -- The folder picker too.
  U.answer(function(_, l)
    labels = l
    return nil
  end)
  vim.cmd('Shelf projects')
  T.eq({ '[prompts] X Y Folder with a break' }, labels, 'folder')
  T.ok(L.items.newline, 'the library')
end)

T.test('completion offers each title on one line, and the title it offers finds its item', function()
  U.clean()
  T.fresh()
  local L = odd_library()
  local all = vim.fn.getcompletion('Shelf insert ', 'cmdline')
  assert_clean(all, 'completion')
  T.ok(vim.tbl_contains(all, 'Two lines'), vim.inspect(all))
  T.ok(vim.tbl_contains(all, 'Windows line breaks'), vim.inspect(all))
  T.eq({ 'lines' }, vim.fn.getcompletion('Shelf insert Two l', 'cmdline'), 'the rest of the title')
  vim.cmd('enew!')
  vim.cmd('Shelf insert Windows line breaks')
  T.eq({ 'content of crlf' }, U.lines(), 'inserted by the title as shown')
  T.ok(L.items.crlf, 'the library')
end)

T.test('a #tag filter finds tags as shown, whatever another client wrote', function()
  U.clean()
  T.fresh()
  odd_library()
  vim.cmd('Shelf')
  local buf = U.tab()
  local tab = require('shelf.tab')
  local st = tab._state()
  T.wait(function() return U.find('Two lines', buf) ~= nil end, 'the tab')
  tab.set_filter('#bare')
  T.wait(function()
    return not st.searching and st.building == nil and U.find('שלום', buf) ~= nil
  end, 'the item whose tags are a bare string')
  T.eq(nil, U.find('Two lines', buf), 'only it')
  tab.set_filter('#5')
  T.wait(function()
    return not st.searching and st.building == nil and U.find('Two lines', buf) ~= nil
  end, 'a number in a list of odd tags')
  T.eq(nil, U.find('שלום', buf), 'only it')
  tab.set_filter(nil)
end)

T.test('the edit header shows odd fields on one line each, and a save of the content keeps them as written', function()
  U.clean()
  T.fresh()
  local L = odd_library()
  local id = L.items.crlf
  local function raw(col)
    return sql(string.format("SELECT hex(%s) FROM prompts WHERE id = '%s';", col, id))
  end
  local before = { title = raw('title'), tags = raw('tags'), description = raw('description'),
    project_id = raw('project_id') }
  require('shelf.edit').open('prompt', id)
  U.loaded()
  local lines = U.lines()
  assert_clean(lines, 'edit buffer')
  T.eq({ '---', 'title: Windows line breaks', 'description: first', '  second line', 'tags: 🎉, עברית',
    'folder:', '---', 'content of crlf' }, lines, 'the header')
  vim.api.nvim_buf_set_lines(0, -2, -1, false, { 'new content' })
  vim.cmd('write')
  T.wait(function() return not vim.bo.modified end, 'the save')
  T.eq('new content', T.get('prompt', id).content, 'content saved')
  for col, v in pairs(before) do
    T.eq(v, raw(col), col .. ' as another client wrote it')
  end
  -- Every odd title opens, one line each, and saves untouched.
  for name, item_id in pairs(L.items) do
    require('shelf.edit').open('prompt', item_id)
    U.loaded()
    assert_clean(U.lines(), 'edit buffer of ' .. name)
    local title = mirror.item('prompt', item_id).title
    T.eq(odd[name], title, name .. ': shelfd passes the title on as written')
    -- The content is what follows the header's closing '---' (none when empty).
    local close = #U.lines() - (vim.fn.reverse(U.lines())[1] == '---' and 0 or 1)
    vim.api.nvim_buf_set_lines(0, close, -1, false, { 'saved ' .. name })
    vim.cmd('write')
    T.wait(function() return not vim.bo.modified end, 'the save of ' .. name .. ': ' .. U.all_messages() .. vim.inspect(U.lines()))
    T.eq(title, T.get('prompt', item_id).title, name .. ': the title as written')
  end
end)

T.test('messages quote an odd title on one line, cut short', function()
  U.clean()
  T.fresh()
  local L = odd_library()
  local buf = open_tab()
  T.wait(function() return U.find('very long title', buf) ~= nil end, 'the long title')
  U.cursor_to('very long title')
  U.answer(false)
  U.keys('d')
  local q = U.asked[#U.asked].question
  T.ok(not q:find('[%c]'), 'one line: ' .. q)
  T.ok(vim.fn.strdisplaywidth(q) < 100, 'short: ' .. q)
  T.ok(q:find("^Delete prompt 'very long title very long title .*…'%?$"), q)
  -- Renaming offers the whole title, on one line.
  local orig_input, default = vim.ui.input, nil
  vim.ui.input = function(opts, cb)
    default = opts.default
    cb(nil)
  end
  U.keys('r')
  vim.ui.input = orig_input
  T.eq(vim.trim(long), default, 'the rename starts from the whole title')
  U.cursor_to('Two lines')
  vim.ui.input = function(opts, cb)
    default = opts.default
    cb(nil)
  end
  U.keys('r')
  vim.ui.input = orig_input
  T.eq('Two lines', default, 'on one line')
  U.cursor_to('Two lines')
  U.answer(true)
  U.keys('d')
  T.eq("Delete prompt 'Two lines'?", U.asked[#U.asked].question, 'a line break')
  T.wait(function() return mirror.item('prompt', L.items.newline) == nil end, 'the delete')
  T.wait(function() return U.message("deleted prompt 'Two lines'") end, 'the message: ' .. U.all_messages())
end)

T.test('an error quoting an odd name shows on one line in the tab header, :Shelf status and the statusline', function()
  U.clean()
  T.fresh()
  local buf = open_tab()
  local name = 'Dup\r\nname\twith ' .. long:sub(1, 900)
  U.create('project', { type = 'prompts', name = name })
  local err = T.await(function(cb) shelf.create('project', { type = 'prompts', name = name }, cb) end, 'create')
  T.ok(err and err:find('Dup', 1, true), 'the second folder of that name fails: ' .. tostring(err))
  T.wait(function() return client.status().error ~= nil end, 'the error in the status')
  T.ok(client.status().error:find('Dup\r\nname', 1, true), 'the status quotes the name as it is')
  T.wait(function() return U.find(' ! ', buf) ~= nil end, 'the error in the tab header')
  assert_clean(U.lines(buf), 'tab')
  T.ok(U.find(' ! Creating folder', buf), vim.inspect(U.lines(buf)))
  local status = require('shelf.status')
  assert_clean(status.lines(), ':Shelf status')
  assert_clean({ status.statusline() }, 'statusline')
  for _, l in ipairs(status.lines()) do
    T.ok(not l:find('\n', 1, true), 'one line: ' .. l)
  end
end)

-- ---- property: random odd rows while the tab is open --------------------------------

-- Wait until shelfd shows a row's change; on a timeout say what the file
-- and the mirror hold.
local function wait_row(cond, what, kind, id)
  if vim.wait(10000, cond, 10) then
    return
  end
  local tbl = ({ prompt = 'prompts', block = 'context_blocks' })[kind]
  T.ok(false, what .. '\nfile: ' .. (tbl and sql(string.format("SELECT updated_at, hex(title), tags FROM %s WHERE id = '%s';",
    tbl, id)) or '') .. '\nmirror: ' .. vim.inspect(kind and mirror.item(kind, id))
    .. '\nchanges: ' .. sql('SELECT * FROM shelf_changes ORDER BY seq DESC LIMIT 3;'))
end

local tbl = { prompt = 'prompts', block = 'context_blocks', prompts = 'prompt_projects',
  datasets = 'dataset_projects' }

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format('\\u%04x', c:byte()) end) .. '"'
end

-- Another program writing the SQLite file (see O.property).
local sqlite_writer = {
  tags = function()
    if math.random(10) == 1 then
      return O.pick({ 'null', 'not json', '42', '"bare"', '{"a": 1}', '[]', '' })
    end
    local list = {}
    for i = 1, math.random(0, 4) do
      local k = math.random(8)
      list[i] = k == 1 and 'null' or k == 2 and '5' or k == 3 and '""' or k == 4 and '"dup"'
        or json_string(O.text(true):sub(1, 60))
    end
    return '[' .. table.concat(list, ', ') .. ']'
  end,
  new_folder = function(t, parent, name, icon)
    local id = new_id()
    put_folder(t, id, name, icon, parent)
    return id
  end,
  update_folder = function(t, id, name, icon, what)
    local at, us = stamp()
    sql(string.format("UPDATE %s SET name = %s, icon = %s, updated_at = %s WHERE id = '%s';", tbl[t], lit(name),
      lit(icon), lit(at), id))
    wait_row(function() return mirror.item('project', id).updated_at == us end, what)
  end,
  new_item = function(kind, fields)
    local id = new_id()
    put_item(kind, id, fields)
    return id
  end,
  update_item = function(kind, id, title, tags, what)
    local at, us = stamp()
    sql(string.format("UPDATE %s SET title = %s, tags = %s, updated_at = %s WHERE id = '%s';", tbl[kind],
      lit(title), lit(tags), lit(at), id))
    wait_row(function() return mirror.item(kind, id).updated_at == us end, what, kind, id)
  end,
  move_item = function(kind, id, to, what)
    local at, us = stamp()
    sql(string.format("UPDATE %s SET project_id = %s, updated_at = %s WHERE id = '%s';", tbl[kind], lit(to),
      lit(at), id))
    wait_row(function() return mirror.item(kind, id).updated_at == us end, what, kind, id)
  end,
  delete_item = function(kind, id, what)
    sql(string.format("DELETE FROM %s WHERE id = '%s';", tbl[kind], id))
    wait_row(function() return mirror.item(kind, id) == nil end, what, kind, id)
  end,
}

T.test('property: random odd rows from another client; the tab always equals a fresh render', function()
  local seed = tonumber(vim.env.SHELF_TEST_SEED) or (os.time() % 1000000)
  U.clean()
  T.fresh()
  local buf = open_tab()
  local st = require('shelf.tab')._state()
  local patched = st.stats.patched
  O.property(buf, seed, 50, sqlite_writer, true)
  T.ok(st.stats.patched - patched > 10, 'changes were patched in: ' .. (st.stats.patched - patched))
end)
