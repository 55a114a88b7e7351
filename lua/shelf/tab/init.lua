-- shelf.tab: the knowledge tab. A side window on the buffer
-- `shelf://knowledge` (filetype `shelf`) showing the library as a tree of
-- folders and items, a header with the backend, user, realtime state, a
-- spinner while anything loads and the last error. It redraws on every
-- `User ShelfChanged`, keeping the cursor on the same item (by id) and the
-- window where it was. Keys are in config `tab.keys`; each is also a
-- <Plug>(shelf-tab-NAME) map.
--
-- This module draws and opens the tab; the rest is in tab/: state.lua (what
-- they share), render.lua (the lines, and marks other features add to them),
-- patch.lua (changing lines in place), view.lua (buffer, windows, cursors)
-- and actions.lua (the one table of what the keys do).
local S = require('shelf.tab.state')
local actions = require('shelf.tab.actions')
local helper = require('shelf.helper')
local patch = require('shelf.tab.patch')
local render_ = require('shelf.tab.render')
local tree = require('shelf.tree')
local ui = require('shelf.ui')
local view = require('shelf.tab.view')

local M = {}

M.name = view.name
M.filetype = view.filetype

local state = S.state
local buf_valid, tab_windows, tab_window = S.buf_valid, S.tab_windows, S.tab_window
local busy, spinner = render_.busy, render_.spinner

-- ---- rendering -------------------------------------------------------------------

local function update_spinner()
  local st = helper.status()
  if busy(st) and buf_valid() and #tab_windows() > 0 then
    if not state.timer then
      state.timer = (vim.uv or vim.loop).new_timer()
      state.timer:start(100, 100, vim.schedule_wrap(function()
        state.frame = state.frame % #spinner + 1
        M.render_header()
      end))
    end
  elseif state.timer then
    state.timer:stop()
    state.timer:close()
    state.timer = nil
  end
end

--- Redraw only the header (the spinner's tick, a status change).
function M.render_header()
  if not buf_valid() then
    return
  end
  local h = render_.header()
  local old_n = 0
  while state.rows[old_n + 1] == nil and old_n < vim.api.nvim_buf_line_count(state.buf) do
    old_n = old_n + 1
  end
  if #h ~= old_n then
    -- The header grew or shrank (an error came or went): a full redraw keeps
    -- the cursor on its item.
    return M.render()
  end
  local old = vim.api.nvim_buf_get_lines(state.buf, 0, old_n, false)
  local new = vim.tbl_map(function(l) return l.text end, h)
  if vim.deep_equal(old, new) then
    update_spinner()
    return
  end
  local in_sync = state.texts and state.texts_buf == state.buf
    and state.tick == vim.api.nvim_buf_get_changedtick(state.buf)
  for i, l in ipairs(h) do
    state.hls[i] = l.hls
  end
  vim.bo[state.buf].modifiable = true
  vim.api.nvim_buf_set_lines(state.buf, 0, old_n, false, new)
  vim.bo[state.buf].modifiable = false
  vim.bo[state.buf].modified = false
  if in_sync then
    -- Keep render()'s copy of the lines current: it saves reading them back.
    for i, t in ipairs(new) do
      state.texts[i] = t
    end
    state.tick = vim.api.nvim_buf_get_changedtick(state.buf)
  end
  update_spinner()
end

-- A full render. `saved`: the views from before a failed patch.
local function render(saved)
  if not buf_valid() then
    return
  end
  local wins = tab_windows()
  if #wins == 0 then
    state.dirty = true
    update_spinner()
    return
  end
  state.dirty = false
  if state.filter then
    state.hits = render_.find_hits(state.filter)
  end
  -- The lines we set last, unless something else changed the buffer since.
  local old_lines = state.texts
  if not old_lines or state.texts_buf ~= state.buf or state.tick ~= vim.api.nvim_buf_get_changedtick(state.buf) then
    old_lines = vim.api.nvim_buf_get_lines(state.buf, 0, -1, false)
  end
  saved = saved or view.save_views(wins, #old_lines)
  local lines, rows, built = render_.build()
  state.rows, state.built = rows, built
  state.stats.full = state.stats.full + 1
  local texts, hls = {}, {}
  for i, l in ipairs(lines) do
    texts[i], hls[i] = l.text, l.hls
  end
  state.hls = hls
  patch.set_lines(state.buf, old_lines, texts)
  state.texts, state.texts_buf, state.tick = texts, state.buf, vim.api.nvim_buf_get_changedtick(state.buf)
  view.restore_views(saved)
  update_spinner()
end

--- Redraw the tab, keeping each window's cursor on the same item.
function M.render()
  render(nil)
end

-- For patch.lua: a full render after a failed patch, and the spinner.
M._render = render
M._update_spinner = update_spinner

--- Apply a `changed` push (helper.last_change) to the lines shown. Returns
--- false, changing nothing, when only a full render can show it.
M.patch = patch.patch

--- Redraw the lines of these nodes ('prompt:<id>', 'project:<id>') after a
--- mark on them changed (render.add_mark): in place when it can, else a
--- full render.
function M.redraw(keys)
  if not patch.redraw(keys) then
    M.render()
  end
end

--- Show changes (helper.last_change values; default: the last one): in
--- place when M.patch can, else a full render.
function M.changed(changes)
  for _, change in ipairs(changes or { helper.last_change }) do
    if not M.patch(change) then
      return M.render()
    end
  end
end

-- Changes that arrive together are drawn once, after the last of them: a
-- folder's delete comes as one change for the folders and one for the items
-- in them, and drawing the first alone would show those items under
-- Unsorted for a moment.
local function queue_change()
  local change = helper.last_change or {}
  if change.reset then
    tree.gone = {}
  elseif change.kind == 'project' then
    for _, id in ipairs(change.deleted or {}) do
      tree.gone[id] = true
    end
  end
  table.insert(state.pending, change)
  if state.flush then
    return
  end
  state.flush = true
  vim.schedule(function()
    state.flush = false
    local changes = state.pending
    state.pending = {}
    M.changed(changes)
  end)
end

-- ---- the window, and what other modules use -------------------------------------

M.read_cmd = view.read_cmd
M.previous_window = view.previous_window
M.new_folder = actions.new_folder
M.delete = actions.delete
M.move = actions.move
M.set_filter = actions.set_filter
M.first_key = actions.first_key
M.plug = actions.plug
M.run = actions.run
--- The actions (tab/actions.lua): { name=, desc=, callback= }, in order.
M.actions = actions.list

--- Open the knowledge tab in the current tab page, or go to it when it is
--- already open. Starts shelfd if needed.
function M.open()
  ui.highlights_setup()
  local _, err = helper.start()
  if err then
    ui.error(err)
  end
  local win = tab_window()
  local from = vim.api.nvim_get_current_win()
  if win then
    vim.api.nvim_set_current_win(win)
    return
  end
  local buf = view.get_buffer()
  local o = S.opts()
  vim.cmd((o.position == 'right' and 'botright' or 'topleft') .. ' vertical ' .. o.width .. 'split')
  win = vim.api.nvim_get_current_win()
  vim.api.nvim_win_set_buf(win, buf)
  view.set_window_options(win)
  if from ~= win and vim.api.nvim_win_is_valid(from) then
    state.prev[vim.api.nvim_get_current_tabpage()] = from
  end
  M.render()
  -- Start on the first item rather than the header.
  if vim.api.nvim_win_get_cursor(win)[1] == 1 then
    for l = 1, vim.api.nvim_buf_line_count(buf) do
      if state.rows[l] then
        vim.api.nvim_win_set_cursor(win, { l, 0 })
        break
      end
    end
  end
end

--- Close the tab in the current tab page.
function M.close()
  local win = tab_window()
  if win then
    vim.api.nvim_set_current_win(win)
    actions.by_name.close.callback()
  end
end

--- :Shelf: open the tab; go to it when it is open elsewhere in this tab
--- page; close it when the cursor is already in it.
function M.toggle()
  local win = tab_window()
  if win and win == vim.api.nvim_get_current_win() then
    M.close()
  else
    M.open()
  end
end

--- Open the tab with the cursor on a node ('project:<id>', 'prompt:<id>').
function M.reveal(key)
  M.open()
  -- Unfold everything above it.
  local kind, id = key:match('^(%w+):(.+)$')
  local item = kind and helper.item(kind, id)
  local pid = item and (kind == 'project' and item.parent_id or item.project_id)
  local seen = {}
  while pid and not seen[pid] do
    seen[pid] = true
    state.collapsed['project:' .. pid] = nil
    local p = helper.item('project', pid)
    pid = p and p.parent_id
  end
  if item then
    local section = kind == 'project' and tree.holds[item.type] or kind
    state.collapsed['section:' .. section] = nil
  end
  state.focus = key
  M.render()
end

--- The node under the cursor in the tab (tests, integrations).
function M.node_at_cursor()
  local row = view.current()
  return row and row.node
end

--- The tab's state, read-only use (tests).
function M._state()
  return state
end

-- Redraw on every change and status.
ui.autocmd('User', { pattern = 'ShelfChanged', desc = 'shelf: redraw the knowledge tab',
  callback = queue_change })
ui.autocmd('User', { pattern = 'ShelfStatus', desc = 'shelf: redraw the knowledge tab header',
  callback = function()
    if next(tree.gone) and not busy(helper.status()) then
      -- shelfd is idle: the deletes that went with those folders are in.
      -- Anything of theirs still there shows again (under Unsorted).
      tree.gone = {}
      if not state.flush then
        return M.render()
      end
    end
    M.render_header()
  end })

return M
