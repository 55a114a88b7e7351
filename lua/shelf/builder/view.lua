-- shelf.builder.view: the builder's buffer, shelf://builder (one per Neovim).
-- Your text at the top, as ordinary lines; then one line per block: icon,
-- title and its id, concealed ("¶ Title [id]"); size and lines as virtual
-- text, and what the prompt weighs as a virtual line between the two parts.
-- The id in the line is what lets dd/p, :m and u move or bring back a block
-- line like any other: after each change (TextChanged, InsertLeave) the
-- lines are read back into the builder, text typed below the blocks goes up
-- to your text, and a block line edited into something else is put back.
local config = require('shelf.config')
local ui = require('shelf.ui')

local M = {}

M.name = 'shelf://builder'

local ns = vim.api.nvim_create_namespace('shelf_builder')

local V = {
  buf = nil,
  tick = nil,      -- changedtick when the buffer last showed the builder as it is
  read_tick = nil, -- changedtick when it was last read (not rewritten)
  marks = {},      -- extmark id -> block id, the mark spanning the block's line
  dirty = false,   -- a render waits for insert mode to end
}

-- A block line ends with a token of its id: its first 8 hex digits, the
-- whole id when another block shares them. Short, because concealed text
-- still counts when a line wraps.
local token_pat = '%[(%x%x%x%x%x%x%x%x[%x%-]*)%]'
local tokens = {} -- token -> block id, for the session

local function token_of(e)
  if e.token then
    return e.token
  end
  local short = e.id:sub(1, 8)
  local tok = (tokens[short] == nil or tokens[short] == e.id) and short or e.id
  tokens[tok] = e.id
  e.token = tok
  return tok
end

-- The block ids written in a line, in order.
local function ids_in(line)
  local out = {}
  if line:find('[', 1, true) then
    for tok in line:gmatch(token_pat) do
      if tokens[tok] then
        table.insert(out, tokens[tok])
      end
    end
  end
  return out
end

local function core()
  return require('shelf.builder')
end

local function loaded()
  return V.buf ~= nil and vim.api.nvim_buf_is_valid(V.buf) and vim.api.nvim_buf_is_loaded(V.buf)
end

--- The buffer while it exists (tests), or nil.
function M.buf()
  return loaded() and V.buf or nil
end

-- ---- lines --------------------------------------------------------------------------

--- A size for people: 812 B, 1.2 KiB, 5.0 MiB.
function M.size_text(bytes)
  if bytes < 1024 then
    return bytes .. ' B'
  elseif bytes < 2 ^ 20 then
    return string.format('%.1f KiB', bytes / 1024)
  end
  return string.format('%.1f MiB', bytes / 2 ^ 20)
end

-- A number with thousands separated: 12,345.
local function grouped(n)
  local s = tostring(n)
  while true do
    local r, k = s:gsub('^(%d+)(%d%d%d)', '%1,%2')
    s = r
    if k == 0 then
      return s
    end
  end
end

--- The line of a block: icon, title, [id] (concealed).
function M.line_of(e)
  local icon = config.get().tab.icons[e.temporary and 'temporary' or 'block']
  local c = e.shown
  if c and c.title == e.title and c.icon == icon then
    return c.line
  end
  local title = (e.title or ''):gsub('%s*\n%s*', ' ')
  if title == '' then
    title = '(untitled)'
  end
  local line = string.format('%s %s [%s]', icon, title, token_of(e))
  e.shown = { title = e.title, icon = icon, line = line }
  -- What it looked like before (an undo may bring that back).
  e.renders = e.renders or {}
  e.renders[line] = true
  return line
end

-- The lines the buffer should have: your text (at least one line, where
-- the cursor goes to type), then the blocks.
local function canonical()
  local S = core()._state
  local lines = vim.deepcopy(S.text)
  if #lines == 0 then
    lines = { '' }
  end
  local ntext = #lines
  for _, e in ipairs(S.entries) do
    table.insert(lines, M.line_of(e))
  end
  return lines, ntext
end

-- Replace only the lines that differ (marks and cursors elsewhere stay).
-- `join`: one undo step with the change just made (a correction of it).
local function write(lines, join)
  local buf = V.buf
  local old = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local top = 1
  while top <= #old and top <= #lines and old[top] == lines[top] do
    top = top + 1
  end
  if top > #old and top > #lines then
    return false
  end
  local bo, bn = #old, #lines
  while bo >= top and bn >= top and old[bo] == lines[bn] do
    bo, bn = bo - 1, bn - 1
  end
  vim.api.nvim_buf_call(buf, function()
    if join then
      pcall(vim.cmd, 'undojoin')
    end
    vim.api.nvim_buf_set_lines(buf, top - 1, bo, false, vim.list_slice(lines, top, bn))
  end)
  return true
end

-- Marks, concealed ids, sizes and the weight line.
local function decorate(ntext)
  local buf = V.buf
  vim.api.nvim_buf_clear_namespace(buf, ns, 0, -1)
  V.marks = {}
  local S = core()._state
  local shown = vim.api.nvim_buf_get_lines(buf, ntext, ntext + #S.entries, false)
  for i, e in ipairs(S.entries) do
    local row = ntext + i - 1
    local line = shown[i] or ''
    local virt
    if e.gone then
      virt = { { '  deleted: left out of the prompt', 'ShelfError' } }
    else
      virt = { { string.format('  %s · %d line%s', M.size_text(e.size or 0), e.lines, e.lines == 1 and '' or 's'),
        'ShelfHint' } }
      if e.temporary then
        table.insert(virt, { ' · temporary', 'ShelfTemporary' })
      end
    end
    local mark = vim.api.nvim_buf_set_extmark(buf, ns, row, 0, {
      end_row = row, end_col = #line, virt_text = virt, virt_text_pos = 'eol',
      hl_group = e.gone and 'ShelfBuilderGone' or nil, right_gravity = false, end_right_gravity = true,
    })
    V.marks[mark] = e.id
  end
  local w = core().weight()
  local head
  if w.blocks == 0 then
    head = string.format('── no blocks yet · ~%s tokens (chars/4) · %s chars · :Shelf build add, b in the tab, '
      .. 'g? keys ──', grouped(w.tokens), grouped(w.chars))
  else
    -- Tokens first: what a narrow window cuts off is the least wanted.
    head = string.format('── %d block%s · ~%s tokens (chars/4) · %s chars · %s lines%s ──', w.blocks,
      w.blocks == 1 and '' or 's', grouped(w.tokens), grouped(w.chars), grouped(w.lines),
      w.gone > 0 and string.format(' · %d deleted, left out', w.gone) or '')
  end
  vim.api.nvim_buf_set_extmark(buf, ns, ntext - 1, 0, { virt_lines = { { { head, 'ShelfHeaderInfo' } } } })
end

local function in_insert_here()
  local mode = vim.api.nvim_get_mode().mode
  return vim.api.nvim_get_current_buf() == V.buf and (mode:sub(1, 1) == 'i' or mode:sub(1, 1) == 'R')
end

--- Show the builder as it is (after a change made through the API or the
--- library). Waits while you type in the buffer.
function M.render()
  if not loaded() then
    return
  end
  M.sync(false)
  if in_insert_here() then
    V.dirty = true
    return
  end
  V.dirty = false
  local lines, ntext = canonical()
  write(lines, false)
  V.tick = vim.api.nvim_buf_get_changedtick(V.buf)
  decorate(ntext)
end

-- ---- reading the buffer back ---------------------------------------------------------

local function quoted(list)
  return table.concat(vim.tbl_map(function(e) return "'" .. ui.label(e) .. "'" end, list), ', ')
end

local function sync(rewrite)
  local buf = V.buf
  local tick = vim.api.nvim_buf_get_changedtick(buf)
  if tick == V.tick or (not rewrite and tick == V.read_tick) then
    return
  end
  local c = core()
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  -- Where each known id is written.
  local written, line_ids = {}, {}
  for i, l in ipairs(lines) do
    line_ids[i] = ids_in(l)
    for _, id in ipairs(line_ids[i]) do
      written[id] = true
    end
  end
  -- A block line whose id was edited away still has its mark; the mark of
  -- a deleted line spans nothing. Looked at only when an id is missing.
  local marked = {}
  local missing = false
  for id in pairs(c._state.by_id) do
    missing = missing or not written[id]
  end
  for _, m in ipairs(missing and vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true }) or {}) do
    local id, d = V.marks[m[1]], m[4]
    if id and not written[id] and d.end_row and (d.end_row > m[2] or (d.end_col or 0) > m[3]) then
      marked[m[2] + 1] = marked[m[2] + 1] or id
    end
  end
  local text, below, ids, claimed = {}, {}, {}, {}
  local restored, copies, moved = {}, {}, 0
  local in_blocks = false
  for i, l in ipairs(lines) do
    local found = {}
    for _, id in ipairs(line_ids[i]) do
      local e = c._entry(id)
      if e then
        table.insert(found, e)
      end
    end
    if #found == 0 and marked[i] and c._entry(marked[i]) then
      table.insert(found, c._entry(marked[i]))
    end
    if #found == 0 then
      if not in_blocks then
        table.insert(text, l)
      elseif vim.trim(l) ~= '' then
        table.insert(below, l)
        moved = moved + 1
      end
    else
      local rest, intact = l, true
      for _, e in ipairs(found) do
        if claimed[e.id] then
          table.insert(copies, e)
        else
          claimed[e.id] = true
          table.insert(ids, e.id)
        end
        local s, f = rest:find(M.line_of(e), 1, true)
        if not s then
          for r in pairs(e.renders) do
            s, f = rest:find(r, 1, true)
            if s then
              break
            end
          end
        end
        if s then
          rest = rest:sub(1, s - 1) .. rest:sub(f + 1)
        else
          intact = false
        end
      end
      if not intact then
        vim.list_extend(restored, found)
      elseif vim.trim(rest) ~= '' then
        -- Text joined onto a block line (J): it stays text.
        table.insert(in_blocks and below or text, vim.trim(rest))
      end
      in_blocks = true
    end
  end
  vim.list_extend(text, below)
  if #text == 0 then
    text = { '' }
  end
  c._apply(text, ids)
  if not rewrite then
    V.read_tick = tick
    return
  end
  local want, ntext = canonical()
  write(want, true)
  V.tick = vim.api.nvim_buf_get_changedtick(buf)
  decorate(ntext)
  if #restored > 0 then
    ui.warn(string.format('block lines are not edited: %s put back (dd removes a block, dd and p or :m move '
      .. 'it; your text goes above the blocks)', quoted(restored)))
  end
  if #copies > 0 then
    ui.warn(string.format('a block is in the builder once: the copy of %s was dropped', quoted(copies)))
  end
  if moved > 0 then
    ui.notify(string.format('your text goes above the blocks: %d line%s moved up', moved, moved == 1 and '' or 's'))
  end
end

--- Read the buffer into the builder. `rewrite`: then also put back what
--- may not be (an edited block line, a copy of one, text below the blocks)
--- as one undo step with the change.
function M.sync(rewrite)
  -- Not again from inside (the ShelfBuilder it fires, the weight it shows).
  if not loaded() or V.syncing then
    return
  end
  V.syncing = true
  local ok, err = pcall(sync, rewrite)
  V.syncing = false
  if not ok then
    error(err, 0)
  end
end

-- ---- keys ---------------------------------------------------------------------------

M.descriptions = {
  insert = 'insert the prompt at the cursor of the window you came from',
  yank = 'yank the prompt (register + where there is a clipboard, else ")',
  save = 'save the prompt as a new saved prompt (an edit buffer; :w creates it)',
  clear = 'clear your text and the blocks (u brings them back)',
  add = 'add a context block or prompt (a picker)',
  open = 'open the block under the cursor in an edit buffer',
  help = 'show these keys',
}

M.order = { 'insert', 'yank', 'save', 'clear', 'add', 'open', 'help' }

local function keys_of(action)
  local k = config.get().builder.keys[action]
  if k == false or k == nil then
    return {}
  end
  return type(k) == 'string' and { k } or k
end

local actions = {}
M.actions = actions

function actions.insert()
  core().insert()
end

function actions.yank()
  core().yank()
end

function actions.save()
  core().save()
end

function actions.clear()
  core().clear()
  ui.notify('cleared the builder; u brings it back')
end

function actions.add()
  M.command_add({})
end

function actions.open()
  M.sync(true)
  local row = vim.api.nvim_win_get_cursor(0)[1]
  local _, ntext = canonical()
  local e = core()._state.entries[row - ntext]
  if not e then
    return ui.warn('put the cursor on a block line to open the block')
  end
  require('shelf.edit').open('block', e.id, { win = core()._target_window() })
end

function actions.help()
  local lines = { ' Prompt builder keys', '' }
  -- The keys as typed: <LocalLeader> is \ unless maplocalleader says.
  local ll = vim.g.maplocalleader or '\\'
  ll = ll == ' ' and '<Space>' or ll
  for _, a in ipairs(M.order) do
    local keys = table.concat(keys_of(a), ' '):gsub('<[Ll]ocal[Ll]eader>', function() return ll end)
    table.insert(lines, string.format(' %-8s %s', keys == '' and '(none)' or keys, M.descriptions[a]))
  end
  vim.list_extend(lines, { '', ' dd removes a block; dd and p, or :m, move it; your text goes on top.',
    ' Commands: :Shelf build add|remove|insert|yank|save|clear', ' :help shelf-builder' })
  M._help_buf = ui.key_help(lines)
end

local function plug(action)
  return '<Plug>(shelf-build-' .. action .. ')'
end
M.plug = plug

for _, a in ipairs(M.order) do
  vim.keymap.set('n', plug(a), function()
    actions[a]()
  end, { desc = 'shelf builder: ' .. M.descriptions[a] })
end

--- :Shelf build add [title]: by title (completion), or from a picker.
function M.command_add(args)
  if not ui.ensure_helper() then
    return
  end
  local picker = require('shelf.picker')
  local function go(e)
    core().add(e.kind, e.id)
  end
  if #args == 0 then
    return picker.choose({ 'block', 'prompt' }, 'Add to the builder:', go)
  end
  picker.find(table.concat(args, ' '), { 'block', 'prompt' }, 'Add to the builder:', go)
end

-- ---- the buffer -----------------------------------------------------------------------

-- The ids of block lines are concealed by a match of the window (a line
-- put with p is concealed at once); 'conceallevel' is set for this buffer
-- only (setlocal), so another buffer shown in the window later is not.
-- Only on lines that start with a block icon.
local function conceal_pattern()
  local icons = config.get().tab.icons
  local function lit(s)
    return '\\V' .. s:gsub('\\', '\\\\') .. '\\v'
  end
  return string.format([=[\v^(%s|%s) .*\zs \[\x{8}(-\x{4}-\x{4}-\x{4}-\x{12})?\]$]=], lit(icons.block),
    lit(icons.temporary))
end

local function window_options(win)
  vim.api.nvim_win_call(win, function()
    vim.cmd('setlocal conceallevel=2 concealcursor=nc')
    if not vim.w.shelf_builder_conceal then
      vim.w.shelf_builder_conceal = vim.fn.matchadd('Conceal', conceal_pattern(), 10, -1, { conceal = '' })
    end
  end)
end

local function setup_buffer(buf)
  V.buf, V.tick, V.read_tick = buf, nil, nil
  vim.bo[buf].buftype = 'nofile'
  vim.bo[buf].bufhidden = 'hide'
  vim.bo[buf].swapfile = false
  vim.bo[buf].buflisted = true
  if vim.bo[buf].filetype ~= 'markdown' then
    vim.bo[buf].filetype = 'markdown'
  end
  for _, a in ipairs(M.order) do
    for _, lhs in ipairs(keys_of(a)) do
      vim.keymap.set('n', lhs, plug(a), { buffer = buf, remap = true, nowait = true,
        desc = 'shelf: ' .. M.descriptions[a] })
    end
  end
  if vim.b[buf].shelf_builder then
    return
  end
  vim.b[buf].shelf_builder = true
  ui.autocmd({ 'TextChanged', 'InsertLeave' }, { buffer = buf, desc = 'shelf: read the builder back',
    callback = function()
      M.sync(true)
      if V.dirty then
        -- A change that came while you typed: shown once Insert mode is over
        -- (InsertLeave may still count as Insert mode).
        vim.schedule(M.render)
      end
    end })
  ui.autocmd('BufWinEnter', { buffer = buf, desc = 'shelf: conceal the ids of block lines',
    callback = function()
      window_options(vim.api.nvim_get_current_win())
    end })
  ui.autocmd('BufWipeout', { buffer = buf, desc = 'shelf: the builder keeps its content without its buffer',
    callback = function()
      M.sync(false)
      if V.buf == buf then
        V.buf = nil
      end
    end })
end

--- BufReadCmd of shelf://builder (:e in it, a session restored): show the
--- builder as it is.
function M.read_cmd(buf)
  ui.highlights_setup()
  setup_buffer(buf)
  V.tick = nil
  local lines, ntext = canonical()
  local ul = vim.bo[buf].undolevels
  vim.bo[buf].undolevels = -1
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].undolevels = ul
  V.tick = vim.api.nvim_buf_get_changedtick(buf)
  decorate(ntext)
end

local function get_buffer()
  if loaded() then
    return V.buf
  end
  local buf = vim.fn.bufnr(M.name)
  if buf < 0 then
    buf = vim.api.nvim_create_buf(true, false)
    vim.api.nvim_buf_set_name(buf, M.name)
  elseif not vim.api.nvim_buf_is_loaded(buf) then
    vim.fn.bufload(buf)
  end
  M.read_cmd(buf)
  return buf
end

--- Open the builder (:Shelf build): go to its window in this tab page, or
--- show it as builder.open says. Returns the buffer.
function M.open()
  ui.highlights_setup()
  local cur = vim.api.nvim_get_current_win()
  local name = vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(cur))
  local in_tab = name == 'shelf://knowledge'
  if name ~= M.name then
    core()._came_from(in_tab and require('shelf.tab').previous_window() or cur)
  end
  local buf = get_buffer()
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.api.nvim_win_get_buf(win) == buf then
      vim.api.nvim_set_current_win(win)
      return buf
    end
  end
  local how = config.get().builder.open
  if how == 'tab' then
    vim.cmd('tabnew')
  elseif how == 'split' then
    vim.cmd('belowright split')
  elseif how == 'vsplit' or in_tab then
    vim.cmd('botright vsplit')
  end
  vim.api.nvim_win_set_buf(0, buf)
  window_options(vim.api.nvim_get_current_win())
  return buf
end

return M
