-- Pickers with a preview: telescope.nvim (with plenary.nvim) and mini.pick,
-- unpacked at test time from the unmodified releases in
-- $SHELF_SHARED/pickers and driven by keys as a user would, on Neovim 0.10
-- and newer; and everywhere the vim.ui.select fallback (answered by the test,
-- ui_support.lua). Without $SHELF_SHARED/pickers the plugin tests say they
-- are skipped.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local mirror = require('shelf.mirror')

local archives = (vim.env.SHELF_SHARED or '') .. '/pickers'
local have_archives = vim.env.SHELF_SHARED ~= nil and vim.fn.isdirectory(archives) == 1
local new_nvim = vim.fn.has('nvim-0.10') == 1
local no_archives = 'no picker plugins to test against: ' .. archives .. ' is not there'

local function library()
  local code = U.create('project', { type = 'prompts', name = 'Code' })
  local review = U.create('project', { type = 'prompts', name = 'Review', parent_id = code.id })
  return {
    code = code,
    review = review,
    diff = U.create('prompt', { title = 'Diff', content = 'diff it\nline two', project_id = review.id,
      tags = { 'git' }, description = 'Explain a diff' }),
    summary = U.create('prompt', { title = 'Summary', content = 'sum up', tags = { 'writing' } }),
    loose = U.create('prompt', { title = 'Loose', content = 'loose text' }),
    facts = U.create('block', { title = 'Facts', content = 'the facts', project_id = nil }),
  }
end

-- Other picker options on the same library (no restart of shelfd).
local function reconfigure(db, opts)
  T.ok(require('shelf').setup(vim.tbl_extend('force', {
    sqlite = { path = db },
    helper = { log = vim.env.SHELF_TEST_TMP .. '/shelfd.log' },
  }, opts)), 'setup')
end

-- Unpack the picker plugins and put them on 'runtimepath', as a plugin
-- manager would (with their plugin/ files sourced).
local unpacked = false
local function add_pickers()
  if unpacked then
    return
  end
  -- Room for telescope's preview (it hides it below 120 columns).
  vim.o.columns, vim.o.lines = 160, 40
  local dir = T.path('pickers')
  vim.fn.mkdir(dir, 'p')
  for _, name in ipairs({ 'plenary.nvim-0.1.4', 'telescope.nvim-0.2.2', 'mini.pick-0.16.0' }) do
    local out = vim.fn.system({ 'tar', '-xzf', archives .. '/' .. name .. '.tar.gz', '-C', dir })
    T.eq(0, vim.v.shell_error, 'unpack ' .. name .. ': ' .. out)
  end
  for _, folder in ipairs({ 'plenary.nvim', 'telescope.nvim', 'mini.pick' }) do
    vim.opt.runtimepath:append(dir .. '/' .. folder)
  end
  if new_nvim then
    -- :Telescope (telescope.nvim needs Neovim 0.10).
    vim.cmd('runtime! plugin/telescope.lua')
  end
  unpacked = true
end

-- ---- the fallback ---------------------------------------------------------------------

T.test('without a picker plugin :Shelf prompts uses vim.ui.select; a missing one asked for is said', function()
  U.clean()
  local db = T.fresh()
  library()
  U.answer(U.choose('Summary'))
  vim.cmd('Shelf prompts')
  T.eq('select', U.asked[#U.asked].what, 'vim.ui.select asked')
  T.eq({ 'sum up' }, U.lines(), 'inserted')
  reconfigure(db, { picker = 'telescope' })
  U.answer(U.choose('Loose'))
  vim.cmd('enew!')
  vim.cmd('Shelf prompts')
  T.eq({ 'loose text' }, U.lines(), 'inserted through vim.ui.select')
  local why = new_nvim and 'telescope.nvim is not installed' or 'it needs Neovim 0.9 or newer here'
  T.ok(U.message("picker.ui is 'telescope' but " .. why .. '; using vim.ui.select'), U.all_messages())
  U.no_answers_left()
end)

T.test("picker options are checked: 'auto', 'telescope', 'mini' or 'select'; keys are keys or false", function()
  local config = require('shelf.config')
  local merged = config.merge({ picker = 'mini' })
  T.eq('mini', merged.picker.ui, 'the short form')
  T.eq('insert', merged.picker.action, 'the other picker options keep their defaults')
  local _, err = config.merge({ picker = 'fzf' })
  T.eq("option 'picker.ui' must be one of auto, telescope, mini, select, not 'fzf'", err, 'a bad picker')
  _, err = config.merge({ picker = { keys = { open = 3 } } })
  T.eq("option 'picker.keys.open' must be string or boolean, not number", err, 'a bad key')
  T.ok(config.merge({ picker = { ui = 'select', keys = { delete = false } } }), 'false unmaps a key')
end)

if not new_nvim then
  if have_archives then
    T.test('on Neovim before 0.9 the plugins on runtimepath are left alone: vim.ui.select', function()
      add_pickers()
      U.clean()
      T.fresh({ picker = 'auto' })
      library()
      U.answer(U.choose('Diff'))
      vim.cmd('Shelf prompts')
      T.eq({ 'diff it', 'line two' }, U.lines(), 'inserted through vim.ui.select')
      T.eq(nil, package.loaded['telescope'], 'telescope not loaded')
      U.no_answers_left()
    end)
  else
    T.skip('on Neovim before 0.9 the plugins on runtimepath are left alone', no_archives)
  end
  return
end

if not have_archives then
  T.skip('telescope.nvim: preview, fuzzy matching, actions on keys, :Telescope shelf', no_archives)
  T.skip('mini.pick: preview, matching, actions on keys', no_archives)
  return
end

-- ---- telescope ------------------------------------------------------------------------

-- Type keys into the picker's prompt as a user would, in Insert mode, with
-- its mappings; Insert mode ends when they are done (feedkeys 'x').
local function type_keys(keys)
  vim.cmd('startinsert!')
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'mx', false)
end

-- The open telescope picker, once its results are in.
local function telescope_picker(n, what)
  local state = require('telescope.actions.state')
  local picker
  T.wait(function()
    if vim.bo.filetype ~= 'TelescopePrompt' then
      return false
    end
    picker = state.get_current_picker(vim.api.nvim_get_current_buf())
    return picker and picker.manager and picker.manager:num_results() == n
  end, what or ('telescope with ' .. n .. ' results'))
  return picker
end

local function results(picker)
  local out = {}
  for entry in picker.manager:iter() do
    table.insert(out, entry.display)
  end
  table.sort(out)
  return out
end

-- The preview once it shows `first` on its first line.
local function telescope_preview(picker, first)
  local lines
  T.wait(function()
    local buf = picker.previewer and picker.previewer.state and picker.previewer.state.bufnr
    lines = buf and vim.api.nvim_buf_is_valid(buf) and U.lines(buf) or {}
    return lines[1] == first and not vim.tbl_contains(lines, '(loading…)')
  end, 'the preview starting with ' .. first)
  return lines
end

local function closed()
  T.wait(function()
    return vim.bo.filetype ~= 'TelescopePrompt'
  end, 'the picker closed')
end

T.test('telescope: a preview with description and tags, fuzzy matching on folder, tags and title, keys', function()
  add_pickers()
  U.clean()
  T.fresh({ picker = 'auto' })
  local L = library()
  local target = vim.api.nvim_get_current_win()
  vim.cmd('Shelf prompts')
  local picker = telescope_picker(3)
  T.eq({ 'Code / Review › Diff  #git', 'Loose', 'Summary  #writing' }, results(picker), 'the entries')
  -- The folder's name finds the item in it; the preview shows the
  -- description and the tags above the content.
  type_keys('review')
  picker = telescope_picker(1, 'only the item in Review')
  T.eq({ 'Explain a diff', '#git', string.rep('─', 40), 'diff it', 'line two' },
    telescope_preview(picker, 'Explain a diff'), 'the preview')
  type_keys('<CR>')
  closed()
  T.wait(function() return U.lines()[1] == 'diff it' end, '<CR> inserts (picker.action)')
  T.eq(target, vim.api.nvim_get_current_win(), 'into the window it came from')
  T.eq({ 'diff it', 'line two' }, U.lines(), 'the content, once')

  -- A tag finds its item; <C-o> opens it.
  vim.cmd('Shelf prompts')
  telescope_picker(3)
  type_keys('writing')
  picker = telescope_picker(1, 'only the item tagged writing')
  T.eq({ '#writing', string.rep('─', 40), 'sum up' }, telescope_preview(picker, '#writing'), 'tags, no description')
  type_keys('<C-o>')
  closed()
  T.wait(function()
    return (require('shelf.edit').info() or {}).id == L.summary.id
  end, '<C-o> opens the edit buffer')

  -- The title finds its item; <C-e> adds it to the prompt builder (a
  -- prompt: its text).
  U.clean()
  require('shelf.builder').clear()
  vim.cmd('Shelf prompts')
  telescope_picker(3)
  type_keys('loose')
  telescope_picker(1, 'only Loose')
  type_keys('<C-e>')
  closed()
  T.wait(function()
    return require('shelf.builder').text():find(L.loose.content, 1, true) ~= nil
  end, "Loose's text in the builder: " .. U.all_messages())
  require('shelf.builder').clear()

  -- <M-d> deletes, asking first.
  U.answer(true)
  vim.cmd('Shelf prompts')
  telescope_picker(3)
  type_keys('loose')
  telescope_picker(1, 'only Loose')
  type_keys('<M-d>')
  closed()
  T.wait(function() return mirror.item('prompt', L.loose.id) == nil end, 'the delete')
  T.eq("Delete prompt 'Loose'?", U.asked[#U.asked].question, 'asked first')
  U.no_answers_left()
end)

T.test('telescope: :Shelf projects previews a folder; :Telescope shelf [prompts|blocks|projects]', function()
  add_pickers()
  U.clean()
  local db = T.fresh({ picker = 'auto' })
  local L = library()
  vim.cmd('Shelf projects')
  local picker = telescope_picker(2)
  type_keys('review')
  picker = telescope_picker(1)
  T.eq({ 'Code / Review', '', 'Diff' }, telescope_preview(picker, 'Code / Review'), 'the folder and what it holds')
  type_keys('<CR>')
  closed()
  T.wait(function()
    return U.tab() ~= nil and vim.api.nvim_get_current_line():find('Review', 1, true) ~= nil
  end, 'the folder shown in the tab')

  U.clean()
  vim.cmd('Telescope shelf')
  picker = telescope_picker(4, 'prompts and blocks')
  T.ok(vim.tbl_contains(results(picker), '[block]  Facts'), vim.inspect(results(picker)))
  type_keys('facts')
  picker = telescope_picker(1)
  T.eq({ 'the facts' }, telescope_preview(picker, 'the facts'), 'a block without description or tags')
  type_keys('<CR>')
  closed()
  T.wait(function() return U.lines()[1] == 'the facts' end, 'inserted')
  vim.cmd('Telescope shelf blocks')
  picker = telescope_picker(1)
  type_keys('<C-c>')
  closed()
  vim.cmd('Telescope shelf projects')
  picker = telescope_picker(2)
  T.ok(vim.tbl_contains(results(picker), '[prompts] 📁 Code'), vim.inspect(results(picker)))
  type_keys('<C-c>')
  closed()
  -- picker.ui = 'select' keeps vim.ui.select with telescope installed.
  reconfigure(db, { picker = 'select' })
  U.answer(U.choose('Summary'))
  vim.cmd('enew!')
  vim.cmd('Shelf prompts')
  T.eq({ 'sum up' }, U.lines(), 'inserted through vim.ui.select')
  T.ok(L.code, 'library')
  U.no_answers_left()
end)

-- ---- mini.pick ------------------------------------------------------------------------

local matches
-- mini.pick reads keys itself and returns only when it closes: `steps` run
-- from a timer meanwhile, each once its condition holds, then the test goes
-- on. A step that never comes closes the picker and fails the test.
local function drive(cmd, steps)
  local MiniPick = require('mini.pick')
  local i, failure, waited = 1, nil, 0
  local timer = (vim.uv or vim.loop).new_timer()
  timer:start(10, 10, vim.schedule_wrap(function()
    if i > #steps then
      return
    end
    local step = steps[i]
    local ok, ready = pcall(step.ready, MiniPick)
    if ok and ready then
      waited = 0
      i = i + 1
      if step.keys then
        vim.api.nvim_input(step.keys)
      end
      return
    end
    waited = waited + 10
    if waited > 10000 then
      failure = string.format('timed out waiting for %s%s (query %s, matches %s)', step.what,
        ok and '' or ': ' .. tostring(ready), vim.inspect(MiniPick.get_picker_query()),
        vim.inspect(matches(MiniPick)))
      i = #steps + 1
      MiniPick.stop()
    end
  end))
  vim.cmd(cmd)
  T.wait(function() return i > #steps end, 'the steps')
  timer:stop()
  timer:close()
  T.ok(not failure, failure)
end

function matches(MiniPick)
  local m = MiniPick.get_picker_matches()
  return m and vim.tbl_map(function(x) return x.text end, m.all) or {}
end

local function preview(MiniPick)
  local st = MiniPick.get_picker_state()
  return st and vim.api.nvim_buf_is_valid(st.buffers.preview or -1) and U.lines(st.buffers.preview) or {}
end

T.test('mini.pick: a preview with description and tags, matching on folder, tags and title, keys', function()
  add_pickers()
  require('mini.pick').setup()
  U.clean()
  -- 'auto' takes mini.pick once it was set up, though telescope is there too.
  local db = T.fresh({ picker = 'auto' })
  local L = library()
  local seen = {}
  drive('Shelf prompts', {
    { what = 'the entries', ready = function(P)
      seen.all = matches(P)
      return #seen.all == 3
    end, keys = 'Review' }, -- mini.pick follows 'ignorecase', off here
    { what = 'only Diff', ready = function(P) return #matches(P) == 1 end, keys = '<Tab>' },
    { what = 'the preview', ready = function(P)
      seen.preview = preview(P)
      return seen.preview[1] == 'Explain a diff' and not vim.tbl_contains(seen.preview, '(loading…)')
    end, keys = '<CR>' },
  })
  T.eq({ 'Code / Review › Diff  #git', 'Loose', 'Summary  #writing' }, seen.all, 'the entries')
  T.eq({ 'Explain a diff', '#git', string.rep('─', 40), 'diff it', 'line two' }, seen.preview, 'the preview')
  T.wait(function() return U.lines()[1] == 'diff it' end, '<CR> inserts')
  T.eq({ 'diff it', 'line two' }, U.lines(), 'the content, once')

  drive('Shelf prompts', {
    { what = 'the entries', ready = function(P) return #matches(P) == 3 end, keys = 'writing' },
    { what = 'only Summary', ready = function(P) return #matches(P) == 1 end, keys = '<C-o>' },
  })
  T.wait(function()
    return (require('shelf.edit').info() or {}).id == L.summary.id
  end, '<C-o> opens the edit buffer')

  U.clean()
  U.answer(true)
  drive('Shelf prompts', {
    { what = 'the entries', ready = function(P) return #matches(P) == 3 end, keys = 'Loose' },
    { what = 'only Loose', ready = function(P) return #matches(P) == 1 end, keys = '<M-d>' },
  })
  T.wait(function() return mirror.item('prompt', L.loose.id) == nil end, 'the delete')
  T.eq("Delete prompt 'Loose'?", U.asked[#U.asked].question, 'asked first')

  -- picker.ui = 'mini' by name; a key set to false is not mapped.
  reconfigure(db, { picker = { ui = 'mini', keys = { open = false } } })
  drive('Shelf blocks', {
    { what = 'the block', ready = function(P)
      seen.mappings = P.get_picker_opts().mappings
      return #matches(P) == 1
    end, keys = '<Esc>' },
  })
  T.eq(nil, seen.mappings.shelf_open, 'no <C-o>')
  T.eq('<M-d>', seen.mappings.shelf_delete.char, 'the others')
  U.no_answers_left()
end)
