-- shelf.tab.state: what the knowledge tab's modules share: the buffer, the
-- rows and lines last drawn, folds, the filter, and the windows showing the
-- buffer. No drawing here.
local config = require('shelf.config')

local M = {}

M.ns = vim.api.nvim_create_namespace('shelf_tab')

M.state = {
  buf = nil,
  collapsed = {},  -- node key -> true (closed) or false (opened): survives refreshes and reopening
  limits = {},     -- node key -> how many of its children show (more than M.PAGE: '… N more' opened)
  seen = 0,        -- changes to the mirror seen (the tree built after the last is reused)
  filter = nil,    -- the filter text, or nil
  hits = nil,      -- while filtering: kind -> { [id] = true }
  hit_named = nil, -- { hits=, filter=, n= }: how many folders match by name (the last draw's)
  searching = false, -- the filter's search is under way (tab/filter.lua)
  hits_capped = false, -- the search found as many as it was asked for
  rows = {},       -- line number -> { node=, depth=, parent= } (nil for header lines)
  hls = {},        -- line number -> its highlights { {group, from, to}, ... }
  prev = {},       -- tab page -> the window the tab was entered from
  focus = nil,     -- a node key to put the cursor on once it shows up
  timer = nil,     -- the spinner's timer while something loads
  age_timer = nil, -- redraws when an age shown changes, while the tab shows
  age_at = nil,    -- when it fires (os.time)
  width = nil,     -- the narrowest tab window's width at the last render
  frame = 1,
  dirty = false,   -- changed while hidden: render when shown
  built = nil,     -- the last full render's tree by key and hint expiry, for patch.lua
  behind = nil,    -- ... or the last one drawn, when changes came while it was made
  folder_changes = 0, -- changes to folders seen (a tree built before the last may lack one)
  pending = {},    -- changes not drawn yet, and whether a draw is scheduled
  flush = false,
  progress_at = nil,     -- a first load drawn as it comes: when it was last drawn (hrtime)
  progress_timer = false, -- ... and the next draw is waited for
  building = nil,  -- the coroutine of a sliced full render under way
  writing = false, -- it is setting the lines: rows and buffer disagree
  redraw_after = false, -- a mark changed meanwhile: render again after it
  on_drawn = {},   -- functions to run once the next full render has drawn
  stats = { full = 0, patched = 0, sliced = 0, recounted = 0 }, -- renders of each sort (tests)
}
local state = M.state

-- A long list of children shows this many, then a '… N more' line that
-- shows as many more: a draw is as long as what can be seen, not the library.
M.PAGE = 200

--- True when a folder (section, Unsorted, Temporary) shows no children: the
--- user closed it, or never opened it in a library too big to show whole
--- (tab.fold_above; sections start open). Everything is open while filtering.
function M.closed(node)
  if state.hits ~= nil or node.type == 'item' then
    return false
  end
  local c = state.collapsed[node.key]
  if c ~= nil then
    return c
  end
  return node.type ~= 'section' and node.big == true
end

--- How many of a node's children show.
function M.limit(node)
  return state.limits[node.key] or M.PAGE
end

function M.opts()
  return config.get().tab
end

function M.buf_valid()
  return state.buf and vim.api.nvim_buf_is_valid(state.buf) and vim.api.nvim_buf_is_loaded(state.buf)
end

--- The windows showing the tab, in every tab page.
function M.tab_windows()
  local out = {}
  if not M.buf_valid() then
    return out
  end
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_buf(win) == state.buf then
      table.insert(out, win)
    end
  end
  return out
end

--- The tab's window in the current tab page, or nil.
function M.tab_window()
  if not M.buf_valid() then
    return nil
  end
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.api.nvim_win_get_buf(win) == state.buf then
      return win
    end
  end
  return nil
end

return M
