-- Pickers (through vim.ui.select, answered by the test as a picker plugin
-- would), command completion, and :checkhealth shelf, with the real shelfd.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local shelf = require('shelf')
local mirror = require('shelf.mirror')

local function library()
  local code = U.create('project', { type = 'prompts', name = 'Code' })
  local review = U.create('project', { type = 'prompts', name = 'Review', parent_id = code.id })
  return {
    code = code,
    review = review,
    diff = U.create('prompt', { title = 'Diff', content = 'diff it', project_id = review.id, tags = { 'git' } }),
    loose = U.create('prompt', { title = 'Loose', content = 'loose' }),
    block = U.create('block', { title = 'Facts', content = 'facts' }),
  }
end

-- An answer for the picker: its first entry, with the labels it showed in seen.labels.
local function choose_first(seen)
  return function(items, labels)
    seen.labels = labels
    return items[1]
  end
end

T.test(':Shelf prompts lists folder and title, and inserts by default', function()
  U.clean()
  T.fresh()
  library()
  vim.cmd('enew!')
  local seen = {}
  U.answer(choose_first(seen))
  vim.cmd('Shelf prompts')
  T.eq({ 'Code / Review › Diff  #git', 'Loose' }, seen.labels, 'entries: folder path, title, tags; unsorted last')
  T.eq({ 'diff it' }, U.lines(), 'inserted')
end)

T.test("with Neovim's own vim.ui.select a long list asks for part of a title first", function()
  U.clean()
  T.fresh()
  library()
  for i = 1, 4 do
    U.create('prompt', { title = 'Review step ' .. i, content = 'step ' .. i })
  end
  local picker = require('shelf.picker')
  local builtin, above = picker.select_is_builtin, picker.narrow_above
  picker.select_is_builtin = function() return true end -- the test's vim.ui.select stands in for it
  picker.narrow_above = 3
  local ok, err = pcall(function()
    vim.cmd('enew!')
    U.asked = {}
    -- 6 prompts, more than 3: asked for text; 'REVIEW' holds 4 titles, still
    -- more than 3: asked again; 'step 2' leaves one to choose.
    local seen = {}
    U.answer('REVIEW', 'step 2', choose_first(seen))
    vim.cmd('Shelf prompts')
    T.eq({ 'input', 'input', 'select' }, vim.tbl_map(function(a) return a.what end, U.asked), vim.inspect(U.asked))
    T.ok(U.asked[1].question:find('6 items; type part of a title', 1, true), U.asked[1].question)
    T.ok(U.asked[2].question:find('4 items', 1, true), U.asked[2].question)
    T.eq({ 'Review step 2' }, seen.labels, 'the one title that holds it')
    T.eq({ 'step 2' }, U.lines(), 'inserted')
    -- Nothing holds it: said, nothing chosen.
    U.answer('no such title')
    vim.cmd('Shelf prompts')
    T.ok(U.message("no title holds 'no such title'"), 'said')
    -- A plugin's vim.ui.select gets the whole list.
    picker.select_is_builtin = builtin
    local labels
    U.answer(function(_, l)
      labels = l
      return nil
    end)
    vim.cmd('Shelf prompts')
    T.eq(6, #labels, 'every prompt')
  end)
  picker.select_is_builtin, picker.narrow_above = builtin, above
  assert(ok, err)
end)

T.test('a picker asked for while the library loads opens once it is in, not empty', function()
  U.clean()
  T.fresh()
  library()
  local client = require('shelf.client')
  local ready = client.status()
  -- shelfd says its first load is under way (as a new one does at start).
  client._receive('status', vim.tbl_extend('force', ready, { ready = false }))
  vim.cmd('enew!')
  local seen = {}
  U.answer(choose_first(seen))
  vim.cmd('Shelf prompts')
  T.ok(U.message('the library is still loading; the list opens when it is in'), 'said')
  T.eq(nil, seen.labels, 'no list yet')
  client._receive('status', ready)
  T.wait(function() return seen.labels ~= nil end, 'the list, once loaded')
  T.eq({ 'Code / Review › Diff  #git', 'Loose' }, seen.labels, 'the whole list')
  T.eq({ 'diff it' }, U.lines(), 'inserted')
end)

T.test(':Shelf insert <title> looks through the titles a slice at a time', function()
  U.clean()
  local db = T.fresh()
  require('shelf.client')._stop_and_wait()
  local out = vim.fn.system({ 'sqlite3', db, [[WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 400)
    INSERT INTO prompts (id, title, content, tags, created_at, updated_at)
    SELECT printf('0f0f0f0f-0000-4000-8000-%012d', i), printf('Many %03d', i), 'many', '[]',
    '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM c;
    INSERT INTO prompts (id, title, content, tags, created_at, updated_at) VALUES
    ('0f0f0f0f-0000-4000-8000-000000000999', 'Unique title', 'unique text', '[]',
    '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
    ('0f0f0f0f-0000-4000-8000-000000000998', 'Cost: 50% (a.b) [x]', 'cost text', '[]',
    '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');]] })
  T.eq(0, vim.v.shell_error, 'sqlite3: ' .. out)
  T.ready()
  local picker = require('shelf.picker')
  picker.slice_ns = 0 -- a slice yields at its first chance, however fast this machine
  local ok, err = pcall(function()
    vim.cmd('enew!')
    vim.cmd('Shelf insert unique TITLE')
    T.eq({ '' }, U.lines(), 'not found yet when the command returned: the editor was free meanwhile')
    T.wait(function() return U.lines()[1] == 'unique text' end, 'the one title, inserted')
    -- Typed text is text, not a pattern: '.' matches a dot only.
    vim.cmd('enew!')
    vim.cmd('Shelf insert COST: 50% (A.B) [X]')
    T.wait(function() return U.lines()[1] == 'cost text' end, 'the title with pattern characters, inserted')
    U.messages = {}
    vim.cmd('Shelf insert many 0.1')
    T.wait(function() return U.message("nothing is titled 'many 0.1'") ~= nil end,
      "'.' matched no digit of 'Many 001'")
  end)
  picker.slice_ns = require('shelf.slices').SLICE_NS
  assert(ok, err)
end)

T.test('the action is configurable and can be given per call', function()
  U.clean()
  T.fresh({ picker = { action = 'open' } })
  local L = library()
  U.answer(U.choose('Facts'))
  vim.cmd('Shelf blocks')
  T.eq(L.block.id, (require('shelf.edit').info() or {}).id, 'opened (config action)')
  U.answer(U.choose('Loose'), true)
  vim.cmd('Shelf prompts delete')
  T.eq("Delete prompt 'Loose'?", U.asked[#U.asked].question, 'asks before deleting')
  T.wait(function() return mirror.item('prompt', L.loose.id) == nil end, 'the delete')
  U.answer(U.choose('Diff'), function(items) return items[1] end)
  vim.cmd('enew!')
  vim.cmd('Shelf prompts ask')
  T.eq('Do:', U.asked[#U.asked].question, 'a second menu')
  T.eq({ 'diff it' }, U.lines(), 'its first choice inserts')
  -- :Shelf projects: folders, each saying what it holds; choosing one shows
  -- it in the tab.
  U.create('project', { type = 'datasets', name = 'Docs' })
  local labels
  U.answer(function(items, l)
    labels = l
    for i, x in ipairs(l) do
      if x:find('Review', 1, true) then
        return items[i]
      end
    end
  end)
  U.create('project', { type = 'prompts', name = 'Art', icon = '🎨' })
  U.create('project', { type = 'prompts', name = '0 first', parent_id = L.code.id })
  U.create('project', { type = 'prompts', name = 'Code2' })
  vim.cmd('Shelf projects')
  T.eq('Folders (show in the tab):', U.asked[#U.asked].question, 'the title says what choosing does')
  T.eq({ '[prompts] 🎨 Art', '[prompts] 📁 Code', '[prompts] Code › 📁 0 first', '[prompts] Code › 📁 Review',
    '[prompts] 📁 Code2', '[blocks]  📁 Docs' }, labels,
    'folder entries by path, each before the folders inside it')
  T.ok(vim.api.nvim_get_current_line():find('Review', 1, true), 'cursor on the folder in the tab: '
    .. vim.api.nvim_get_current_line())
  U.no_answers_left()
  T.fresh()
end)

T.test('the picker order follows the library: moved in place, or sorted again in slices', function()
  U.clean()
  T.fresh()
  local order = require('shelf.picker.order')
  local picker = require('shelf.picker')
  order._reset()
  order._set_small(0) -- every list sorted in slices, as a big library's is
  order._set_slice_ns(1)
  local L = library()
  local b = U.create('prompt', { title = 'Beta', content = 'b', project_id = L.code.id })
  U.create('prompt', { title = 'alpha', content = 'a', project_id = L.code.id })
  local misc = U.create('project', { type = 'prompts', name = 'Misc' })
  U.create('prompt', { title = 'Mid', content = 'm', project_id = misc.id })
  local function titles()
    local got
    local at_once = picker.entries({ 'prompt' }, function(list)
      got = vim.tbl_map(function(e) return e.title end, list)
    end)
    if not at_once then
      T.wait(function() return got ~= nil end, 'the sorted list')
    end
    return got, at_once
  end
  local first, at_once = titles()
  T.eq(false, at_once, 'the first list is sorted in slices')
  T.eq({ 'alpha', 'Beta', 'Diff', 'Mid', 'Loose' }, first, 'folder path, then title; no folder last')
  -- A few items changed: moved where they now sort, the list ready at once.
  local changed = T.count_events('ShelfChanged')
  local sorts = order.sorts
  U.update('prompt', b.id, { title = 'Zeta' })
  T.wait(function() return changed.n > 0 end, 'ShelfChanged')
  local now, ready = titles()
  T.eq(true, ready, 'ready at once')
  T.eq(sorts, order.sorts, 'patched, not sorted again')
  T.eq({ 'alpha', 'Zeta', 'Diff', 'Mid', 'Loose' }, now, 'the renamed item moved')
  U.delete('prompt', L.loose.id)
  T.eq({ 'alpha', 'Zeta', 'Diff', 'Mid' }, (titles()), 'the deleted item gone')
  -- A folder renamed moves what is inside it: sorted again.
  U.update('project', misc.id, { name = 'Aaa' })
  T.eq({ 'Mid', 'alpha', 'Zeta', 'Diff' }, (titles()), 'what Aaa holds sorts first')
  T.ok(order.sorts > sorts, 'sorted again')
  order._set_small(2000)
  order._set_slice_ns(require('shelf.slices').SLICE_NS)
end)

T.test('the picker order ignores case as lowered titles compare, in slices or at once', function()
  U.clean()
  T.fresh()
  local order = require('shelf.picker.order')
  local picker = require('shelf.picker')
  local folder = U.create('project', { type = 'prompts', name = 'Case' })
  -- '[' sorts between 'Z' and 'a': before 'beta' only when case is ignored.
  local made = {}
  for _, title in ipairs({ 'zed', 'Émile', 'beta', 'ABD', '[draft]', 'abc', 'Ab', 'Same', 'same' }) do
    made[#made + 1] = U.create('prompt', { title = title, content = 'x', project_id = folder.id })
  end
  local same = vim.tbl_filter(function(p) return p.title:lower() == 'same' end, made)
  table.sort(same, function(a, b) return a.id < b.id end)
  local want = { '[draft]', 'Ab', 'abc', 'ABD', 'beta', same[1].title, same[2].title, 'zed', 'Émile' }
  for _, small in ipairs({ 2000, 0 }) do
    order._reset()
    order._set_small(small)
    order._set_slice_ns(1)
    local got
    picker.entries({ 'prompt' }, function(list)
      got = vim.tbl_map(function(e) return e.title end, list)
    end)
    T.wait(function() return got ~= nil end, 'the sorted list')
    T.eq(want, got, small == 0 and 'sorted in slices' or 'sorted at once')
  end
  -- Moved in place (a binary search over the kept list) by the same order.
  U.update('prompt', made[1].id, { title = 'AAA' })
  local got
  picker.entries({ 'prompt' }, function(list)
    got = vim.tbl_map(function(e) return e.title end, list)
  end)
  T.eq('AAA', got and got[2], 'the renamed item moved after [draft]: ' .. vim.inspect(got))
  order._set_small(2000)
  order._set_slice_ns(require('shelf.slices').SLICE_NS)
end)

T.test('completion of subcommands, kinds and titles', function()
  U.clean()
  T.fresh()
  local L = library()
  local subs = vim.fn.getcompletion('Shelf ', 'cmdline')
  for _, s in ipairs({ 'tab', 'new', 'insert', 'edit', 'save', 'prompts', 'blocks', 'projects', 'refresh', 'status' }) do
    T.ok(vim.tbl_contains(subs, s), s .. ' in ' .. vim.inspect(subs))
  end
  T.eq({ 'prompt', 'block', 'temp', 'folder' }, vim.fn.getcompletion('Shelf new ', 'cmdline'), 'new')
  T.eq({ 'prompt' }, vim.fn.getcompletion('Shelf save pr', 'cmdline'), 'save')
  T.eq({ 'insert', 'open', 'delete', 'build', 'ask' }, vim.fn.getcompletion('Shelf prompts ', 'cmdline'), 'actions')
  T.eq({ 'Diff', 'Facts', 'Loose' }, vim.fn.getcompletion('Shelf edit ', 'cmdline'), 'titles')
  T.eq({ 'Facts' }, vim.fn.getcompletion('Shelf edit fA', 'cmdline'), 'titles, case ignored')
  T.eq({}, vim.fn.getcompletion('Shelf edit F.', 'cmdline'), "titles: '.' is a dot")
  local ids = require('shelf.ids')
  T.eq(L.block.id, ids.resolve('block', L.block.id:sub(1, 8):upper()), 'an id prefix, case ignored')
  T.eq(nil, ids.resolve('block', L.block.id:sub(1, 4) .. '....'), "an id prefix: '.' is a dot")
  vim.cmd('Shelf edit Facts')
  T.eq('Facts', T.get('block', require('shelf.edit').info().id).title, ':Shelf edit by title')
end)

T.test(':checkhealth shelf reports the helper, its version and the backend', function()
  U.clean()
  T.fresh()
  vim.cmd('checkhealth shelf')
  local text = table.concat(U.lines(), '\n')
  T.ok(text:find('shelfd found', 1, true), text)
  T.ok(text:find('shelfd version ', 1, true), 'the version: ' .. text)
  for _, lib in ipairs({ 'libuv', 'sqlite', 'libcurl', 'libwebsockets', 'msgpack', 'cJSON' }) do
    T.ok(text:find('links ' .. lib .. ' %d+%.%d+[%d.]*[ \n]'), lib .. ' with its version, nothing after it: ' .. text)
  end
  T.ok(text:find('OpenSSL/%d'), 'the TLS library: ' .. text)
  T.ok(text:find('database writable', 1, true), text)
  T.ok(text:find('no errors', 1, true), text)
  T.ok(not text:find('ERROR', 1, true), text)
  vim.cmd('bwipeout!')
  require('shelf').setup({ helper = { cmd = '/nonexistent/shelfd' } })
  vim.cmd('checkhealth shelf')
  text = table.concat(U.lines(), '\n')
  T.ok(text:find('shelfd not found; looked at: /nonexistent/shelfd', 1, true), text)
  vim.cmd('bwipeout!')
  T.fresh()
end)

T.test(':Shelf login password says why nothing happened when no email or password is given', function()
  U.clean()
  require('shelf').setup({ backend = 'supabase', supabase = { url = 'http://127.0.0.1:9', anon_key = 'k' },
    helper = { log = vim.env.SHELF_TEST_TMP .. '/shelfd.log' } })
  U.answer('  ')
  vim.cmd('Shelf login password')
  T.ok(U.message('not signed in: no email was given'), U.all_messages())
  U.reset()
  U.answer(false)
  vim.cmd('Shelf login password')
  T.eq('', U.all_messages(), 'Esc: nothing said')
  U.no_answers_left()
  require('shelf.client').stop()
  T.fresh()
end)
