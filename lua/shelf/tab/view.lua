-- shelf.tab.view: the knowledge tab's buffer and windows: setting them up,
-- drawing the highlights of the lines on screen, the node under the cursor,
-- and keeping each window's cursor on its node (and at its screen row) while
-- the lines change under it.
local S = require('shelf.tab.state')
local tree = require('shelf.tree')
local ui = require('shelf.ui')

local M = {}

local state = S.state
local ns = S.ns

M.name = 'shelf://knowledge'
M.filetype = 'shelf'

-- Highlights are drawn as lines come on screen, from state.hls, instead of
-- stored on every line: a render of 10k lines then sets none, and a line
-- that moves takes its highlights along for free.
vim.api.nvim_set_decoration_provider(ns, {
  on_win = function(_, _, buf)
    return buf == state.buf
  end,
  on_line = function(_, _, buf, row)
    for _, h in ipairs(state.hls[row + 1] or {}) do
      -- pcall: a line someone else changed may be shorter than its highlight.
      pcall(vim.api.nvim_buf_set_extmark, buf, ns, row, h[2], { end_col = h[3], hl_group = h[1], ephemeral = true })
    end
  end,
})

-- Nodes to look for after a redraw, best first: the line's own node, then
-- the nodes below it, then above, so the cursor lands next to a removed
-- item. The own node is followed wherever it goes; a neighbour only where
-- it still is (a deleted folder's prompts, briefly under Unsorted, are no
-- place for the cursor). Each { key=, parent= (its parent's key), own= }.
local function anchors(rows, lnum, nlines)
  local out = {}
  local function add(l, own)
    local r = rows[l]
    if r then
      table.insert(out, { key = r.node.key, parent = r.parent and r.parent.key, own = own })
    end
  end
  add(lnum, true)
  for d = 1, nlines do
    add(lnum + d)
    add(lnum - d)
    if #out > 20 then
      break
    end
  end
  return out
end

-- The number of header lines: those above the first row.
function M.header_size()
  local n = 0
  while n < #(state.texts or {}) and state.rows[n + 1] == nil do
    n = n + 1
  end
  return n
end

-- True when no folder above `node` is closed (then it has a line, unless
-- it is past what its folder shows: see line_of).
function M.shown(node)
  local p = node.parent
  while p do
    if S.closed(p) then
      return false
    end
    p = p.parent
  end
  return true
end

-- The line of a node, or nil. node.line is where it was last put, and a patch
-- moves lines by a few at most, so the search starts there and goes outwards:
-- a few steps instead of a scan of 100k lines (then every line, if need be).
function M.line_of(node)
  local rows, n = state.rows, #state.texts
  local h = math.min(math.max(node.line or 1, 1), math.max(n, 1))
  for d = 0, n do
    local a, b = h - d, h + d
    if a < 1 and b > n then
      break
    end
    local r = rows[a]
    if r and r.node == node then
      node.line = a
      return a
    end
    r = rows[b]
    if r and r.node == node then
      node.line = b
      return b
    end
  end
  return nil
end

-- Each window's view and the keys of the nodes around its cursor, before a
-- change of the lines.
function M.save_views(wins, nlines)
  local saved = {}
  for _, win in ipairs(wins) do
    local view = vim.api.nvim_win_call(win, vim.fn.winsaveview)
    -- On the header (no row) the cursor stays there, not on a node nearby.
    local on_header = state.rows[view.lnum] == nil and view.lnum <= M.header_size()
    saved[win] = { view = view, on_header = on_header, anchors = on_header and {} or anchors(state.rows, view.lnum,
      nlines) }
  end
  return saved
end

-- The first line of the window `win` for the cursor on line `target`, from
-- the wanted `top`: the cursor on screen, and no rows of `~` below the last
-- line while lines above are hidden (so nothing scrolls when all fits).
local function clamp_top(win, top, target)
  local height = vim.api.nvim_win_get_height(win)
  top = math.min(math.max(top, target - height + 1), target)
  return math.max(1, math.min(top, #state.texts - height + 1))
end

-- After the change: each cursor on its node again (or on state.focus, once it
-- has a line), at the same screen row.
function M.restore_views(saved)
  -- Line numbers of the nodes the cursors may go to (not of all 10k).
  local wanted = {}
  if state.focus then
    wanted[state.focus] = true
  end
  for _, s in pairs(saved) do
    for _, a in ipairs(s.anchors) do
      wanted[a.key] = true
    end
  end
  local index = {}
  local nodes = not state.hits and state.built and state.built.index
  if nodes then
    -- Each by its node: a few steps each (line_of) instead of a scan.
    for key in pairs(wanted) do
      local node = nodes[key]
      index[key] = node and M.shown(node) and M.line_of(node) or nil
    end
  else
    for l = 1, #state.texts do
      local r = state.rows[l]
      if r and wanted[r.node.key] then
        index[r.node.key] = l
      end
    end
  end
  local focus = state.focus and index[state.focus]
  if focus then
    state.focus = nil
  end
  for win, s in pairs(saved) do
    local target = focus
    if not target then
      for _, a in ipairs(s.anchors) do
        local l = index[a.key]
        local parent = l and state.rows[l].parent
        if l and (a.own or (parent and parent.key) == a.parent) then
          target = l
          break
        end
      end
    end
    if not target and s.on_header then
      target = math.min(s.view.lnum, M.header_size())
    end
    target = target or math.min(s.view.lnum, #state.texts)
    -- Keep the cursor's screen row: move the top line by as much as the
    -- cursor's line moved.
    local top = s.view.topline + (target - s.view.lnum)
    if focus then
      top = s.view.topline
    end
    top = clamp_top(win, top, target)
    vim.api.nvim_win_call(win, function()
      vim.fn.winrestview({ lnum = target, col = 0, topline = top, leftcol = 0 })
    end)
  end
end

-- ---- the node under the cursor ---------------------------------------------------

function M.current()
  local win = vim.api.nvim_get_current_win()
  if vim.api.nvim_win_get_buf(win) ~= state.buf then
    return nil
  end
  local l = vim.api.nvim_win_get_cursor(win)[1]
  if state.writing then
    return nil, l -- the line may not be the row's yet (tab/init.lua render_sliced)
  end
  return state.rows[l], l
end

function M.require_node(types)
  local row = M.current()
  if not row or (types and not vim.tbl_contains(types, row.node.type)) then
    return nil
  end
  return row.node, row
end

-- The folder (project id, type) a new thing under the cursor goes into.
function M.context()
  local row = M.current()
  if not row then
    return {}
  end
  local node = row.node
  if node.type == 'more' then
    node = node.parent -- '… N more': the folder it is in
  end
  if node.type == 'item' then
    if node.temporary then
      return { kind = 'block', temporary = true }
    end
    return { kind = node.kind, project_id = node.item.project_id }
  elseif node.type == 'folder' then
    return { kind = tree.holds[node.item.type], project_id = node.id }
  elseif node.temporary then
    return { kind = 'block', temporary = true }
  end
  return { kind = node.kind }
end

-- The window the user came from in this tab page (to open and insert in).
function M.previous_window()
  local win = state.prev[vim.api.nvim_get_current_tabpage()]
  if win and vim.api.nvim_win_is_valid(win) and vim.api.nvim_win_get_buf(win) ~= state.buf then
    return win
  end
  for _, w in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    local b = vim.api.nvim_win_get_buf(w)
    if b ~= state.buf and vim.api.nvim_win_get_config(w).relative == '' then
      return w
    end
  end
  return nil
end

-- ---- the buffer and window -----------------------------------------------------------

local function setup_buffer(buf)
  state.buf = buf
  vim.bo[buf].buftype = 'nofile'
  vim.bo[buf].bufhidden = 'hide'
  vim.bo[buf].swapfile = false
  vim.bo[buf].buflisted = false
  vim.bo[buf].modifiable = false
  vim.bo[buf].undolevels = -1
  require('shelf.tab.actions').set_keys(buf)
  ui.autocmd('BufEnter', { buffer = buf, desc = 'shelf: remember the window the tab was entered from',
    callback = function()
      local prev = vim.fn.win_getid(vim.fn.winnr('#'))
      if prev ~= 0 and vim.api.nvim_win_get_buf(prev) ~= buf then
        state.prev[vim.api.nvim_get_current_tabpage()] = prev
      end
    end })
  ui.autocmd('BufWinEnter', { buffer = buf, desc = 'shelf: draw the tab when it is shown',
    callback = function()
      vim.schedule(function()
        local built = state.built
        -- Never drawn, changed while hidden, or ages gone stale.
        if state.dirty or not built or os.time() >= built.stale_at then
          require('shelf.tab').render_shown()
        else
          require('shelf.tab')._update_spinner() -- the ages' timer
        end
      end)
    end })
  ui.autocmd('BufWinLeave', { buffer = buf, desc = 'shelf: no timers while the tab is hidden',
    callback = function()
      vim.schedule(function()
        require('shelf.tab')._update_spinner()
      end)
    end })
  vim.bo[buf].filetype = M.filetype
end

function M.get_buffer()
  if S.buf_valid() then
    return state.buf
  end
  local existing = vim.fn.bufnr(M.name)
  local buf = existing > 0 and existing or vim.api.nvim_create_buf(false, true)
  if existing <= 0 then
    vim.api.nvim_buf_set_name(buf, M.name)
  end
  vim.fn.bufload(buf)
  state.rows, state.hls = {}, {}
  setup_buffer(buf)
  return buf
end

--- BufReadCmd for shelf://knowledge (`:edit` in the tab, a restored session).
function M.read_cmd(buf)
  state.buf = nil
  state.rows, state.hls = {}, {}
  setup_buffer(buf)
  vim.schedule(function()
    require('shelf.tab').render()
  end)
end

-- The tab window's own options.
M.window_options = {
  number = false, relativenumber = false, signcolumn = 'no', foldcolumn = '0', wrap = false,
  spell = false, list = false, cursorline = true, winfixwidth = true, colorcolumn = '',
}

-- Set as :setlocal does: vim.wo and nvim_win_set_option set the global
-- value too, which every window opened afterwards would take.
function M.set_window_options(win)
  vim.api.nvim_win_call(win, function()
    for k, v in pairs(M.window_options) do
      vim.api.nvim_set_option_value(k, v, { scope = 'local' })
    end
  end)
end

--- In the current window (split from the tab's, so a copy of its options):
--- the user's own values of the options the tab sets.
function M.reset_window_options()
  local names = vim.tbl_map(function(k) return k .. '<' end, vim.tbl_keys(M.window_options))
  vim.cmd('setlocal ' .. table.concat(names, ' '))
end

return M
