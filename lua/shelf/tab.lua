-- shelf.tab: the knowledge tab. A side window on the buffer
-- `shelf://knowledge` (filetype `shelf`) showing the library as a tree of
-- folders and items, a header with the backend, user, realtime state, a
-- spinner while anything loads and the last error. It redraws on every
-- `User ShelfChanged`, keeping the cursor on the same item (by id) and the
-- window where it was. Keys are in config `tab.keys`; each is also a
-- <Plug>(shelf-tab-NAME) map.
local config = require('shelf.config')
local helper = require('shelf.helper')
local tree = require('shelf.tree')
local ui = require('shelf.ui')

local M = {}

M.name = 'shelf://knowledge'
M.filetype = 'shelf'

local ns = vim.api.nvim_create_namespace('shelf_tab')

local state = {
  buf = nil,
  collapsed = {},  -- node key -> true: survives refreshes and reopening
  filter = nil,    -- the filter text, or nil
  hits = nil,      -- 'kind:id' -> true while filtering
  rows = {},       -- line number -> { node=, depth=, parent= } (nil for header lines)
  hls = {},        -- line number -> its highlights { {group, from, to}, ... }
  prev = {},       -- tab page -> the window the tab was entered from
  focus = nil,     -- a node key to put the cursor on once it shows up
  timer = nil,     -- the spinner's timer while something loads
  frame = 1,
  dirty = false,   -- changed while hidden: render when shown
  built = nil,     -- the last full render's tree by key and hint expiry, for M.patch
  pending = {},    -- changes not drawn yet, and whether a draw is scheduled
  flush = false,
  stats = { full = 0, patched = 0 }, -- renders of each sort (tests)
}

local spinner = { '⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏' }

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

local function opts()
  return config.get().tab
end

local function buf_valid()
  return state.buf and vim.api.nvim_buf_is_valid(state.buf) and vim.api.nvim_buf_is_loaded(state.buf)
end

--- The windows showing the tab, in every tab page.
local function tab_windows()
  local out = {}
  if not buf_valid() then
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
local function tab_window()
  if not buf_valid() then
    return nil
  end
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.api.nvim_win_get_buf(win) == state.buf then
      return win
    end
  end
  return nil
end

-- ---- status and header ------------------------------------------------------

local function busy(st)
  local l = st.loading
  if type(l) == 'table' and (l.refresh or (l.actions or 0) > 0 or l.auth) then
    return true
  end
  return st.running and not st.ready
end

local function loading_text(st)
  local l = type(st.loading) == 'table' and st.loading or {}
  if st.running and not st.ready then
    return 'loading'
  elseif l.auth then
    return 'signing in'
  elseif (l.actions or 0) > 0 then
    return 'saving'
  elseif l.refresh then
    return 'syncing'
  end
  return nil
end

local realtime_text = {
  joined = 'live',
  connecting = 'connecting',
  joining = 'connecting',
  disconnected = 'offline',
  closed = 'offline',
  error = 'offline',
}

-- Header lines, each { text, highlights = { {group, from, to}, ... } }.
local function header()
  local st = helper.status()
  local text = ' Shelf'
  local hls = { { 'ShelfHeader', 0, #text } }
  local info = { st.backend or '?' }
  local user = st.user
  if type(user) == 'table' then
    user = user.email or user.id
  end
  if type(user) == 'string' and user ~= '' then
    table.insert(info, user)
  elseif st.backend == 'supabase' and st.ready then
    table.insert(info, 'signed out')
  end
  if type(st.realtime) == 'string' and st.realtime ~= 'off' then
    table.insert(info, realtime_text[st.realtime] or st.realtime)
  end
  local from = #text + 2
  text = text .. '  ' .. table.concat(info, ' · ')
  table.insert(hls, { 'ShelfHeaderInfo', from, #text })
  if busy(st) then
    local s = '  ' .. spinner[state.frame] .. ' ' .. (loading_text(st) or '')
    table.insert(hls, { 'ShelfSpinner', #text, #text + #s })
    text = text .. s
  end
  local out = { { text = text, hls = hls } }
  if st.error then
    local e = ' ! ' .. tostring(st.error):gsub('\n', ' ')
    table.insert(out, { text = e, hls = { { 'ShelfError', 0, #e } } })
  end
  if state.filter then
    local n = vim.tbl_count(state.hits or {})
    local f = string.format(' / %s  (%d match%s; empty %s clears)', state.filter, n,
      n == 1 and '' or 'es', M.first_key('filter') or '<Plug>(shelf-tab-filter)')
    table.insert(out, { text = f, hls = { { 'ShelfFilter', 1, 3 + #state.filter } } })
  end
  table.insert(out, { text = '', hls = {} })
  return out
end

-- ---- rows ------------------------------------------------------------------------

local function node_visible(node)
  if not state.hits then
    return true
  end
  if node.type == 'item' then
    return state.hits[node.kind .. ':' .. node.id] == true
  end
  if node.type == 'folder' and (node.label:lower():find(state.filter:lower(), 1, true)) then
    return true
  end
  for _, c in ipairs(node.children) do
    if node_visible(c) then
      return true
    end
  end
  return node.type == 'section'
end

-- Per summary (shelfd sends a new table with every change, so entries never
-- go stale): its tags text and time, and its last line. A redraw of 10k
-- items then only rebuilds the lines that changed.
local item_cache = setmetatable({}, { __mode = 'k' })

local function cached(item)
  local c = item_cache[item]
  if not c then
    local tags = {}
    for _, tag in ipairs(item.tags or {}) do
      table.insert(tags, '#' .. tag)
    end
    c = { tags = #tags > 0 and table.concat(tags, ' ') or nil, t = ui.parse_time(item.updated_at) }
    item_cache[item] = c
  end
  return c
end

-- The span of ages [lo, hi) in seconds over which ui.age_of(d) reads the same.
local function age_span(d)
  local m, h, day, week, year = 60, 3600, 86400, 604800, 31536000
  local function span(unit, floor_, ceil_)
    local k = math.floor(d / unit)
    return math.max(k * unit, floor_), math.min((k + 1) * unit, ceil_)
  end
  if d < m then
    return -math.huge, m
  elseif d < h then
    return span(m, m, h)
  elseif d < day then
    return span(h, h, day)
  elseif d < 14 * day then
    return span(day, day, 14 * day)
  elseif d < 365 * day then
    return span(week, 14 * day, 365 * day)
  end
  return span(year, 365 * day, math.huge)
end

local function hint(item, now)
  if not opts().hints then
    return nil
  end
  local c = cached(item)
  if not c.t then
    return c.tags
  end
  local d = (now or os.time()) - c.t
  if c.hint_lo and d >= c.hint_lo and d < c.hint_hi then
    return c.hint
  end
  local age = ui.age_of(d)
  c.hint = c.tags and (c.tags .. ' ' .. age) or age
  c.hint_lo, c.hint_hi = age_span(d)
  return c.hint
end

-- One line for a node: { text, hls }.
local function node_line(node, depth, now)
  local icons = opts().icons
  local c, h
  if node.type == 'item' then
    c = cached(node.item)
    h = hint(node.item, now)
    local l = c.line
    if l and l.depth == depth and l.hint == h and l.icons == icons and l.temporary == node.temporary
      and l.label == node.label then
      return l
    end
  end
  local indent = string.rep('  ', depth)
  local text, hls = indent, {}
  local function add(s, group)
    if group then
      table.insert(hls, { group, #text, #text + #s })
    end
    text = text .. s
  end
  if node.type == 'item' then
    local icon = node.temporary and icons.temporary or icons[node.kind] or '-'
    add('  ')
    add(icon .. ' ', 'ShelfMarker')
    add(node.label, node.temporary and 'ShelfTemporary' or (node.kind == 'prompt' and 'ShelfPrompt' or 'ShelfBlock'))
    if h then
      add('  ')
      add(h, 'ShelfHint')
    end
    c.line = { text = text, hls = hls, depth = depth, hint = h, icons = icons, temporary = node.temporary,
      label = node.label }
    return c.line
  end
  local open = state.hits ~= nil or not state.collapsed[node.key]
  add(open and '▾ ' or '▸ ', 'ShelfMarker')
  if node.type == 'section' then
    add(node.label, 'ShelfSection')
  elseif node.type == 'unsorted' then
    add(icons.unsorted .. ' ', 'ShelfMarker')
    add(node.label, 'ShelfUnsorted')
  else
    local icon = node.item.icon
    if icon == nil or icon == '' then
      icon = '📁'
    end
    add(icon .. ' ')
    add(node.label, 'ShelfFolder')
  end
  add(' ')
  -- While filtering: how many of the items inside match.
  local n = state.hit_counts and state.hit_counts[node] or node.count
  add('(' .. n .. ')', 'ShelfCount')
  return { text = text, hls = hls }
end

-- Every line, the header's then the tree's, and the rows. Also the tree
-- built, by key, and the time (os.time) when the age in some hint shown
-- changes, for M.patch.
local function build()
  local lines, rows = {}, {}
  for _, h in ipairs(header()) do
    table.insert(lines, h)
  end
  local now = os.time()
  local stale_at = math.huge
  local function walk(node, depth, parent)
    if not node_visible(node) then
      return
    end
    table.insert(lines, node_line(node, depth, now))
    rows[#lines] = { node = node, depth = depth, parent = parent }
    node.line = #lines -- a hint for line_of
    if node.type == 'item' then
      local c = item_cache[node.item]
      if c.t and c.hint_hi and c.t + c.hint_hi < stale_at then
        stale_at = c.t + c.hint_hi
      end
    elseif state.hits ~= nil or not state.collapsed[node.key] then
      for _, c in ipairs(node.children) do
        walk(c, depth + 1, node)
      end
    end
  end
  local sections, index = tree.build()
  state.hit_counts = nil
  if state.hits then
    -- Each folder's count is of its matches.
    local counts = {}
    local function count_hits(node)
      if node.type == 'item' then
        return state.hits[node.kind .. ':' .. node.id] and 1 or 0
      end
      local n = 0
      for _, c in ipairs(node.children) do
        n = n + count_hits(c)
      end
      counts[node] = n
      return n
    end
    for _, section in ipairs(sections) do
      count_hits(section)
    end
    state.hit_counts = counts
  end
  for _, section in ipairs(sections) do
    walk(section, 0, nil)
  end
  return lines, rows, { index = index, stale_at = stale_at }
end

-- ---- rendering -------------------------------------------------------------------

local find_hits

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

-- Replace only the lines that differ, so nothing else moves or blinks.
local function set_lines(buf, old, new)
  local n_old, n_new = #old, #new
  local pre = 0
  while pre < n_old and pre < n_new and old[pre + 1] == new[pre + 1] do
    pre = pre + 1
  end
  local post = 0
  while post < n_old - pre and post < n_new - pre and old[n_old - post] == new[n_new - post] do
    post = post + 1
  end
  if pre == n_old and pre == n_new then
    return
  end
  -- Runs of differing lines, found by walking both lists and, where they
  -- differ, looking a few lines ahead for where they agree again: an added
  -- item, a removed one and the counts above them are a few small edits,
  -- not everything between them. { old from, old to, new from, new to }
  local hunks = {}
  local i, j, oe, ne = pre, pre, n_old - post, n_new - post
  while i < oe or j < ne do
    if i < oe and j < ne and old[i + 1] == new[j + 1] then
      i, j = i + 1, j + 1
    else
      local da, db
      for skip = 1, 8 do
        for a = 0, skip do
          local b = skip - a
          if i + a < oe and j + b < ne and old[i + a + 1] == new[j + b + 1] then
            da, db = a, b
            break
          end
        end
        if da then
          break
        end
      end
      if not da then
        da, db = oe - i, ne - j
      end
      table.insert(hunks, { i, i + da, j, j + db })
      i, j = i + da, j + db
      if #hunks > 50 then
        hunks = { { pre, oe, pre, ne } }
        break
      end
    end
  end
  vim.api.nvim_buf_set_option(buf, 'modifiable', true)
  -- Bottom up, so the line numbers of the hunks above stay valid.
  for k = #hunks, 1, -1 do
    local h = hunks[k]
    vim.api.nvim_buf_set_lines(buf, h[1], h[2], false, vim.list_slice(new, h[3] + 1, h[4]))
  end
  vim.api.nvim_buf_set_option(buf, 'modifiable', false)
  vim.api.nvim_buf_set_option(buf, 'modified', false)
end

local function update_spinner()
  local st = helper.status()
  if busy(st) and buf_valid() and #tab_windows() > 0 then
    if not state.timer then
      state.timer = vim.loop.new_timer()
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
  local h = header()
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
  vim.api.nvim_buf_set_option(state.buf, 'modifiable', true)
  vim.api.nvim_buf_set_lines(state.buf, 0, old_n, false, new)
  vim.api.nvim_buf_set_option(state.buf, 'modifiable', false)
  vim.api.nvim_buf_set_option(state.buf, 'modified', false)
  if in_sync then
    -- Keep render()'s copy of the lines current: it saves reading them back.
    for i, t in ipairs(new) do
      state.texts[i] = t
    end
    state.tick = vim.api.nvim_buf_get_changedtick(state.buf)
  end
  update_spinner()
end

-- The number of header lines: those above the first row.
local function header_size()
  local n = 0
  while n < #(state.texts or {}) and state.rows[n + 1] == nil do
    n = n + 1
  end
  return n
end

-- True when no folder above `node` is closed (then it has a line).
local function shown(node)
  local p = node.parent
  while p do
    if state.collapsed[p.key] then
      return false
    end
    p = p.parent
  end
  return true
end

-- The line of a node, or nil. node.line is where it was last put, and a patch
-- moves lines by a few at most, so the search starts there and goes outwards:
-- a few steps instead of a scan of 100k lines (then every line, if need be).
local function line_of(node)
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
local function save_views(wins, nlines)
  local saved = {}
  for _, win in ipairs(wins) do
    local view = vim.api.nvim_win_call(win, vim.fn.winsaveview)
    -- On the header (no row) the cursor stays there, not on a node nearby.
    local on_header = state.rows[view.lnum] == nil and view.lnum <= header_size()
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
local function restore_views(saved)
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
      index[key] = node and shown(node) and line_of(node) or nil
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
      target = math.min(s.view.lnum, header_size())
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

-- The items a filter matches, 'kind:id' -> true: `#word` those with a tag
-- containing word, anything else those whose title, tags or content
-- contain it (searched in shelfd).
find_hits = function(filter)
  local hits = {}
  local tag = filter:match('^#(%S+)$')
  if not tag then
    for _, h in ipairs(helper.search(filter)) do
      hits[h.kind .. ':' .. h.id] = true
    end
    return hits
  end
  tag = tag:lower()
  for _, kind in ipairs({ 'prompt', 'block' }) do
    for _, item in ipairs(helper.items(kind)) do
      for _, t in ipairs(item.tags or {}) do
        if t:lower():find(tag, 1, true) then
          hits[kind .. ':' .. item.id] = true
          break
        end
      end
    end
  end
  return hits
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
    state.hits = find_hits(state.filter)
  end
  -- The lines we set last, unless something else changed the buffer since.
  local old_lines = state.texts
  if not old_lines or state.texts_buf ~= state.buf or state.tick ~= vim.api.nvim_buf_get_changedtick(state.buf) then
    old_lines = vim.api.nvim_buf_get_lines(state.buf, 0, -1, false)
  end
  saved = saved or save_views(wins, #old_lines)
  local lines, rows, built = build()
  state.rows, state.built = rows, built
  state.stats.full = state.stats.full + 1
  local texts, hls = {}, {}
  for i, l in ipairs(lines) do
    texts[i], hls[i] = l.text, l.hls
  end
  state.hls = hls
  set_lines(state.buf, old_lines, texts)
  state.texts, state.texts_buf, state.tick = texts, state.buf, vim.api.nvim_buf_get_changedtick(state.buf)
  restore_views(saved)
  update_spinner()
end

--- Redraw the tab, keeping each window's cursor on the same item.
function M.render()
  render(nil)
end

-- ---- patching: a change of a few items -------------------------------------------
-- A full render walks every line: tens of ms at 10k items. A change of a few
-- items that leaves the folders alone is applied to the last render's tree
-- and lines instead: each item's line is taken out and put in at its new
-- place, and the count lines above redrawn. The result equals a full
-- render's (tests/nvim/test_tab.lua compares them after random changes).

local PATCH_MAX = 32 -- items in one change; more take a full render

local function depth_of(node)
  local d, p = 0, node.parent
  while p do
    d, p = d + 1, p.parent
  end
  return d
end

-- Insert (how = 1), redraw (0) or delete (-1) line l for `node`, keeping
-- texts, rows and highlights in step with the buffer.
local function put_line(l, how, node)
  local texts, rows, hls = state.texts, state.rows, state.hls
  local n = #texts
  if how == -1 then
    for i = l, n - 1 do
      texts[i], rows[i], hls[i] = texts[i + 1], rows[i + 1], hls[i + 1]
    end
    texts[n], rows[n], hls[n] = nil, nil, nil
    vim.api.nvim_buf_set_lines(state.buf, l - 1, l, false, {})
    return
  end
  local depth = depth_of(node)
  local line = node_line(node, depth, os.time())
  if how == 0 and texts[l] == line.text then
    return
  end
  if how == 1 then
    for i = n, l, -1 do
      texts[i + 1], rows[i + 1], hls[i + 1] = texts[i], rows[i], hls[i]
    end
  end
  -- The highlights first: the redraw that set_lines asks for reads them.
  texts[l], hls[l] = line.text, line.hls
  rows[l] = { node = node, depth = depth, parent = node.parent }
  node.line = l
  vim.api.nvim_buf_set_lines(state.buf, l - 1, how == 1 and l - 1 or l, false, { line.text })
end

-- Redraw the count lines of the folders above a node that have lines.
local function recount_lines(node)
  local p = node.parent
  while p do
    local l = shown(p) and line_of(p)
    if l then
      put_line(l, 0, p)
    end
    p = p.parent
  end
end

-- Where tree.build puts an item: its folder, Unsorted or Temporary; nil when
-- that node is not in the tree yet.
local function place(index, kind, item)
  if item.temporary then
    return index['section:temporary']
  end
  if item.project_id and tree.hidden[item.project_id] then
    return nil
  end
  local f = item.project_id and index['project:' .. item.project_id]
  if f and f.type == 'folder' and f.item.type == tree.folder_type[kind] then
    return f
  end
  return index['unsorted:' .. kind]
end

-- Apply one item's change; false when only a full render can show it.
local function patch_item(built, kind, id)
  local index = built.index
  local old = index[kind .. ':' .. id]
  local item = helper.item(kind, id)
  if old and old.item == item then
    return true
  end
  if old then
    local l = shown(old) and line_of(old)
    local parent = old.parent
    tree.remove(index, old)
    if l then
      put_line(l, -1, old)
    end
    if parent.type ~= 'folder' and #parent.children == 0 then
      return false -- an empty Unsorted or Temporary goes away
    end
    recount_lines(old)
  end
  if not item then
    return true
  end
  local to = place(index, kind, item)
  if not to then
    return false
  end
  local node = tree.item_node(kind, item)
  local i = tree.insert(index, to, node)
  if shown(node) then
    local at
    if i == 1 then
      at = line_of(to)
    else
      -- Below the previous sibling and everything under it.
      at = line_of(to.children[i - 1])
      local d = at and state.rows[at].depth
      while at and state.rows[at + 1] and state.rows[at + 1].depth > d do
        at = at + 1
      end
    end
    if not at then
      return false
    end
    put_line(at + 1, 1, node)
    local c = item_cache[item]
    if c.t and c.hint_hi then
      built.stale_at = math.min(built.stale_at, c.t + c.hint_hi)
    end
  end
  recount_lines(node)
  return true
end

--- Apply a `changed` push (helper.last_change) to the lines shown. Returns
--- false, changing nothing, when only a full render can show it.
function M.patch(change)
  local built = state.built
  if not (change and built and not change.reset and (change.kind == 'prompt' or change.kind == 'block'))
    or state.hits or state.focus or state.dirty or not buf_valid()
    or #change.upserted + #change.deleted > PATCH_MAX or os.time() >= built.stale_at
    or state.texts_buf ~= state.buf or state.tick ~= vim.api.nvim_buf_get_changedtick(state.buf)
    or #tab_windows() == 0 then
    return false
  end
  -- From here the tree is changed: a failure leaves it to a full render.
  state.built = nil
  local saved = save_views(tab_windows(), #state.texts)
  vim.api.nvim_buf_set_option(state.buf, 'modifiable', true)
  local ok, done = pcall(function()
    for _, list in ipairs({ change.deleted, change.upserted }) do
      for _, id in ipairs(list) do
        if not patch_item(built, change.kind, id) then
          return false
        end
      end
    end
    return true
  end)
  vim.api.nvim_buf_set_option(state.buf, 'modifiable', false)
  vim.api.nvim_buf_set_option(state.buf, 'modified', false)
  state.tick = vim.api.nvim_buf_get_changedtick(state.buf)
  if not ok then
    ui.notify('the tab could not apply a change in place (' .. tostring(done) .. '); redrawing it')
  end
  if not (ok and done) then
    -- Half applied: a full render from here, the cursors as they were.
    render(saved)
    return true
  end
  state.built = built
  state.stats.patched = state.stats.patched + 1
  restore_views(saved)
  update_spinner()
  return true
end

--- Show changes (helper.last_change values; default: the last one): in
--- place when M.patch can, else a full render.
function M.changed(changes)
  changes = changes or { helper.last_change }
  -- Many small changes at once (rows arriving one by one from elsewhere):
  -- a patch costs about what a full render spends on 80 lines, so past that
  -- one full render is cheaper than a patch each.
  local n = 0
  for _, change in ipairs(changes) do
    n = n + #(change.upserted or {}) + #(change.deleted or {})
  end
  if n > math.max(PATCH_MAX * 4, #(state.texts or {}) / 80) then
    return M.render()
  end
  for _, change in ipairs(changes) do
    if not M.patch(change) then
      return M.render()
    end
  end
end

-- Changes that arrive together are drawn once, after the last of them: a
-- folder's delete comes as one change for the folders and one for the items
-- in them, and drawing the first alone would show those items under
-- Unsorted for a moment.
local flush_pending

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
  flush_pending()
end

function flush_pending()
  if state.flush or #state.pending == 0 then
    return
  end
  state.flush = true
  vim.schedule(function()
    state.flush = false
    if helper.applying() then
      -- A big change is still being applied in slices, or more of it is on
      -- its way: one redraw after its last part (the ShelfChanged or the
      -- ShelfStatus that ends it comes here again), not one for each.
      return
    end
    local changes = state.pending
    state.pending = {}
    M.changed(changes)
    -- A status that came with them (the end of a burst) shows too.
    M.render_header()
  end)
end

-- ---- the node under the cursor ---------------------------------------------------

local function current()
  local win = vim.api.nvim_get_current_win()
  if vim.api.nvim_win_get_buf(win) ~= state.buf then
    return nil
  end
  local l = vim.api.nvim_win_get_cursor(win)[1]
  return state.rows[l], l
end

local function require_node(types)
  local row = current()
  if not row or (types and not vim.tbl_contains(types, row.node.type)) then
    return nil
  end
  return row.node, row
end

-- The folder (project id, type) a new thing under the cursor goes into.
local function context()
  local row = current()
  if not row then
    return {}
  end
  local node = row.node
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

-- ---- actions ----------------------------------------------------------------------

local actions = {}
M.actions = actions

local function toggle_node(node)
  if node.type == 'item' then
    return
  end
  if state.filter then
    ui.notify('folders stay open while filtering; ' .. (M.first_key('filter') or '/') .. ' and an empty filter clears it')
    return
  end
  state.collapsed[node.key] = not state.collapsed[node.key] or nil
  state.focus = node.key
  M.render()
end

function actions.open()
  local node = require_node()
  if not node then
    return
  end
  if node.type ~= 'item' then
    return toggle_node(node)
  end
  require('shelf.edit').open(node.kind, node.id, { win = M.previous_window() })
end

function actions.toggle()
  local node, row = require_node()
  if not node then
    return
  end
  if node.type == 'item' then
    -- Like za inside a fold: close the folder holding the item.
    if row.parent and not state.filter then
      state.collapsed[row.parent.key] = true
      state.focus = row.parent.key
      M.render()
    end
    return
  end
  toggle_node(node)
end

function actions.insert()
  local node = require_node({ 'item' })
  if not node then
    return ui.warn('put the cursor on a prompt or context block to insert it')
  end
  local win = M.previous_window()
  if not win then
    return ui.warn('no window to insert into; open a file next to the tab first')
  end
  vim.api.nvim_set_current_win(win)
  require('shelf.insert').insert(node.kind, node.id)
end

function actions.new()
  local c = context()
  local function go(kind, temporary)
    require('shelf.edit').new(kind, { project_id = c.project_id, temporary = temporary,
      win = M.previous_window() })
  end
  if c.kind then
    return go(c.kind, c.temporary)
  end
  vim.ui.select({ 'prompt', 'block', 'temporary' }, {
    prompt = 'New:',
    format_item = function(k)
      return ({ prompt = 'prompt', block = 'context block', temporary = 'temporary block' })[k]
    end,
  }, function(choice)
    if choice == 'temporary' then
      go('block', true)
    elseif choice then
      go(choice, false)
    end
  end)
end

--- Ask for a new folder's name and create it; `ftype` and `parent_id` may be
--- nil (then asked for / top level). Used by the tab and :Shelf new folder.
function M.new_folder(ftype, parent_id)
  local function ask_name(t)
    ui.input({ prompt = string.format('New %s folder%s: ', t == 'prompts' and 'prompt' or 'context block',
      parent_id and (' in ' .. (tree.folder_path(parent_id) or '?')) or '') }, function(name)
      if not name or vim.trim(name) == '' then
        return
      end
      name = vim.trim(name)
      helper.call('create', { 'project', { type = t, name = name, parent_id = parent_id } }, function(err, item)
        if err then
          return ui.error(err .. '; nothing was created')
        end
        if parent_id then
          state.collapsed['project:' .. parent_id] = nil
        end
        state.collapsed['section:' .. tree.holds[t]] = nil
        state.focus = 'project:' .. item.id
        M.render()
      end)
    end)
  end
  if ftype then
    return ask_name(ftype)
  end
  vim.ui.select({ 'prompts', 'datasets' }, {
    prompt = 'Folder for:',
    format_item = function(t)
      return t == 'prompts' and 'prompts' or 'context blocks'
    end,
  }, function(t)
    if t then
      ask_name(t)
    end
  end)
end

function actions.new_folder()
  local row = current()
  local node = row and row.node
  if not node or node.temporary then
    return M.new_folder(nil, nil)
  end
  if node.type == 'folder' then
    return M.new_folder(node.item.type, node.id)
  end
  if node.type == 'item' then
    return M.new_folder(tree.folder_type[node.kind], node.item.project_id)
  end
  M.new_folder(tree.folder_type[node.kind], nil)
end

function actions.rename()
  local node = require_node({ 'item', 'folder' })
  if not node then
    return ui.warn('put the cursor on an item or a folder to rename it')
  end
  local field = node.type == 'folder' and 'name' or 'title'
  ui.input({ prompt = 'Rename to: ', default = node.label }, function(text)
    if not text or vim.trim(text) == '' or vim.trim(text) == node.label then
      return
    end
    local kind = node.type == 'folder' and 'project' or node.kind
    helper.call('update', { kind, node.id, { [field] = vim.trim(text) } }, function(err)
      if err then
        ui.error(err .. '; the old name stays')
      end
    end)
  end)
end

--- Ask, then delete an item or folder (saying what goes with a folder).
function M.delete(kind, id)
  local item = helper.item(kind, id)
  if not item then
    return ui.warn('that ' .. ui.kind_names[kind] .. ' no longer exists')
  end
  local question
  local going = { kind = kind, ids = { id } } -- the items whose edit buffers go too
  if kind == 'project' then
    local c = tree.contents(id)
    going = { kind = c.kind, ids = c.ids }
    local parts = {}
    if c.folders > 0 then
      table.insert(parts, string.format('%d folder%s', c.folders, c.folders == 1 and '' or 's'))
    end
    if c.items > 0 then
      local what = c.kind == 'prompt' and 'prompt' or 'context block'
      table.insert(parts, string.format('%d %s%s', c.items, what, c.items == 1 and '' or 's'))
    end
    if #parts > 0 then
      question = string.format("Delete folder '%s' and everything in it: %s?", ui.label(item),
        table.concat(parts, ' and '))
    else
      question = string.format("Delete the empty folder '%s'?", ui.label(item))
    end
  elseif item.temporary then
    question = string.format("Delete temporary block '%s'? It was never saved.", ui.label(item))
  else
    question = string.format("Delete %s '%s'?", ui.kind_names[kind], ui.label(item))
  end
  if not ui.confirm(question, '&Delete') then
    return
  end
  local edit = require('shelf.edit')
  edit.deleting(going.kind, going.ids, true)
  helper.call('delete', { kind, id }, function(err)
    if err then
      edit.deleting(going.kind, going.ids, false)
      ui.error(err .. '; nothing was deleted')
    else
      ui.notify(string.format("deleted %s '%s'", ui.kind_names[kind], ui.label(item)))
    end
  end)
end

function actions.delete()
  local node = require_node({ 'item', 'folder' })
  if not node then
    return ui.warn('put the cursor on an item or a folder to delete it')
  end
  M.delete(node.type == 'folder' and 'project' or node.kind, node.id)
end

function actions.yank()
  local node = require_node({ 'item' })
  if not node then
    return ui.warn('put the cursor on a prompt or context block to yank it')
  end
  local full, err = helper.get(node.kind, node.id)
  if not full then
    return ui.error('cannot read ' .. node.label .. ': ' .. (err or 'it no longer exists'))
  end
  local content = full.content or ''
  local reg = vim.v.register
  vim.fn.setreg(reg, content, content:find('\n') and 'l' or 'c')
  ui.notify(string.format("yanked '%s' (%d bytes) into register %s", node.label, #content, reg))
end

function actions.new_temporary()
  require('shelf.edit').new('block', { temporary = true, win = M.previous_window() })
end

function actions.save_temporary()
  local node = require_node({ 'item' })
  if not node or not node.temporary then
    return ui.warn('put the cursor on a temporary block to save it as a real one')
  end
  helper.call('save_temp', { node.id }, function(err, item)
    if err then
      return ui.error(err .. '; it stays temporary')
    end
    state.focus = 'block:' .. item.id
    ui.notify(string.format("saved '%s' as a context block", ui.label(item)))
  end)
end

--- Pick another folder for an item or folder and move it there.
function M.move(kind, id)
  local item = helper.item(kind, id)
  if not item then
    return
  end
  local ftype = kind == 'project' and item.type or tree.folder_type[kind]
  local choices = { { label = kind == 'project' and '(top level)' or '(Unsorted: no folder)', id = vim.NIL } }
  for _, f in ipairs(tree.folder_paths(ftype)) do
    if not (kind == 'project' and tree.is_inside(id, f.item.id)) then
      table.insert(choices, { label = f.path, id = f.item.id })
    end
  end
  vim.ui.select(choices, {
    prompt = string.format("Move '%s' to:", ui.label(item)),
    kind = 'shelf.folder',
    format_item = function(c)
      return c.label
    end,
  }, function(choice)
    if not choice then
      return
    end
    local field = kind == 'project' and 'parent_id' or 'project_id'
    if (item[field] or vim.NIL) == choice.id then
      return
    end
    helper.call('update', { kind, id, { [field] = choice.id } }, function(err)
      if err then
        return ui.error(err .. '; it stays where it was')
      end
      if choice.id ~= vim.NIL then
        state.collapsed['project:' .. choice.id] = nil
      end
      state.focus = (kind == 'project' and 'project:' or (kind .. ':')) .. id
      M.render()
    end)
  end)
end

function actions.move()
  local node = require_node({ 'item', 'folder' })
  if not node then
    return ui.warn('put the cursor on an item or a folder to move it')
  end
  M.move(node.type == 'folder' and 'project' or node.kind, node.id)
end

--- Filter the tab by title, tags and content (`#word`: by tag); '' or nil
--- clears. A new filter puts the cursor on the first match.
function M.set_filter(text)
  if text == nil or vim.trim(text) == '' then
    state.filter, state.hits = nil, nil
    return M.render()
  end
  state.filter = vim.trim(text)
  M.render()
  local win = tab_window()
  if not win then
    return
  end
  for l = 1, #state.texts do
    local r = state.rows[l]
    if r and r.node.type == 'item' then
      vim.api.nvim_win_set_cursor(win, { l, 0 })
      return
    end
  end
end

function actions.filter()
  ui.input({ prompt = 'Filter (title, tags, content): ', default = state.filter or '' }, function(text)
    if text == nil then
      return
    end
    M.set_filter(text)
  end)
end

function actions.refresh()
  helper.call('refresh', {}, function(err)
    if err then
      ui.error(err)
    end
  end)
  M.render_header()
end

function actions.close()
  local win = tab_window()
  if not win then
    return
  end
  if #vim.api.nvim_tabpage_list_wins(0) == 1 then
    -- The last window of the tab page: show another buffer instead.
    vim.api.nvim_win_call(win, function()
      vim.cmd('enew')
    end)
    return
  end
  vim.api.nvim_win_close(win, false)
end

M.descriptions = {
  open = 'open the item in an edit buffer; fold or unfold a folder',
  toggle = 'fold or unfold the folder (on an item: its folder)',
  insert = 'insert the item into the window you came from, at its cursor',
  new = 'new item in the folder under the cursor',
  new_folder = 'new folder (inside the folder under the cursor)',
  rename = 'rename the item or folder',
  delete = 'delete the item or folder (asks first)',
  yank = 'yank the content into a register',
  new_temporary = 'new temporary block (this session only)',
  save_temporary = 'save a temporary block as a real context block',
  move = 'move the item or folder to another folder',
  filter = 'filter by title, tags and content (empty clears)',
  refresh = 'refresh from the backend',
  close = 'close the tab',
  help = 'show these keys',
}

M.order = { 'open', 'toggle', 'insert', 'new', 'new_folder', 'rename', 'delete', 'yank', 'new_temporary',
  'save_temporary', 'move', 'filter', 'refresh', 'close', 'help' }

local function keys_of(action)
  local k = opts().keys[action]
  if k == false or k == nil then
    return {}
  end
  if type(k) == 'string' then
    return { k }
  end
  return k
end

--- The first key of an action, for messages.
function M.first_key(action)
  return keys_of(action)[1]
end

function actions.help()
  local lines = { ' Knowledge tab keys', '' }
  for _, a in ipairs(M.order) do
    local keys = table.concat(keys_of(a), ' ')
    if keys == '' then
      keys = '(none)'
    end
    table.insert(lines, string.format(' %-10s %s', keys, M.descriptions[a]))
  end
  table.insert(lines, '')
  table.insert(lines, ' Each is also <Plug>(shelf-tab-NAME); :help shelf-tab-keys')
  local width = 0
  for _, l in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(l) + 1)
  end
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.api.nvim_buf_set_option(buf, 'modifiable', false)
  vim.api.nvim_buf_set_option(buf, 'bufhidden', 'wipe')
  vim.api.nvim_buf_add_highlight(buf, ns, 'ShelfHeader', 0, 0, -1)
  local win = vim.api.nvim_open_win(buf, true, {
    relative = 'editor',
    width = math.min(width, vim.o.columns - 4),
    height = math.min(#lines, vim.o.lines - 4),
    row = 1,
    col = 2,
    style = 'minimal',
    border = 'rounded',
  })
  for _, k in ipairs({ 'q', '<Esc>', 'g?' }) do
    vim.keymap.set('n', k, function()
      pcall(vim.api.nvim_win_close, win, true)
    end, { buffer = buf, nowait = true, desc = 'shelf: close the key help' })
  end
  ui.autocmd('BufLeave', { buffer = buf, once = true, desc = 'shelf: close the key help',
    callback = function()
      pcall(vim.api.nvim_win_close, win, true)
    end })
end

-- Run an action in the tab; from elsewhere (a <Plug> map) say where it works.
local function run(action)
  if not buf_valid() or vim.api.nvim_get_current_buf() ~= state.buf then
    return ui.warn('<Plug>(shelf-tab-' .. action:gsub('_', '-') .. ') works in the knowledge tab; open it with :Shelf')
  end
  actions[action]()
end
M.run = run

-- ---- <Plug> maps and keys ----------------------------------------------------------

local function plug(action)
  return '<Plug>(shelf-tab-' .. action:gsub('_', '-') .. ')'
end
M.plug = plug

for _, a in ipairs(M.order) do
  vim.keymap.set('n', plug(a), function()
    run(a)
  end, { desc = 'shelf tab: ' .. M.descriptions[a] })
end

local function set_keys(buf)
  for _, a in ipairs(M.order) do
    for _, lhs in ipairs(keys_of(a)) do
      vim.keymap.set('n', lhs, plug(a), { buffer = buf, remap = true, nowait = true,
        desc = 'shelf: ' .. M.descriptions[a] })
    end
  end
end

-- ---- the buffer and window -----------------------------------------------------------

local function setup_buffer(buf)
  state.buf = buf
  vim.api.nvim_buf_set_option(buf, 'buftype', 'nofile')
  vim.api.nvim_buf_set_option(buf, 'bufhidden', 'hide')
  vim.api.nvim_buf_set_option(buf, 'swapfile', false)
  vim.api.nvim_buf_set_option(buf, 'buflisted', false)
  vim.api.nvim_buf_set_option(buf, 'modifiable', false)
  vim.api.nvim_buf_set_option(buf, 'undolevels', -1)
  set_keys(buf)
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
        if state.dirty or #state.rows == 0 then
          M.render()
        end
      end)
    end })
  vim.api.nvim_buf_set_option(buf, 'filetype', M.filetype)
end

local function get_buffer()
  if buf_valid() then
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
  vim.schedule(M.render)
end

local function set_window_options(win)
  local o = {
    number = false, relativenumber = false, signcolumn = 'no', foldcolumn = '0', wrap = false,
    spell = false, list = false, cursorline = true, winfixwidth = true, colorcolumn = '',
  }
  for k, v in pairs(o) do
    vim.api.nvim_win_set_option(win, k, v)
  end
end

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
  local buf = get_buffer()
  local o = opts()
  vim.cmd((o.position == 'right' and 'botright' or 'topleft') .. ' vertical ' .. o.width .. 'split')
  win = vim.api.nvim_get_current_win()
  vim.api.nvim_win_set_buf(win, buf)
  set_window_options(win)
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
    actions.close()
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
  local row = current()
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
    -- Changes that waited for the end of a burst are drawn now.
    flush_pending()
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
