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
local client = require('shelf.client')
local filter = require('shelf.tab.filter')
local mirror = require('shelf.mirror')
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
local hrtime = (vim.uv or vim.loop).hrtime

-- ---- rendering -------------------------------------------------------------------

-- Ages in the hints ('now', '5m') change with time alone: while the tab
-- shows, a timer redraws it when the first of them changes (the build knows
-- when: built.stale_at). Hidden, no timer runs; it redraws when shown.
local function update_age_timer()
  local built = state.built
  if not (buf_valid() and #tab_windows() > 0 and built and built.stale_at < math.huge) then
    if state.age_timer then
      state.age_timer:stop()
      state.age_timer:close()
      state.age_timer = nil
    end
    return
  end
  local at = built.stale_at
  if state.age_timer and state.age_at == at then
    return
  end
  state.age_timer = state.age_timer or (vim.uv or vim.loop).new_timer()
  state.age_at = at
  -- os.time() is whole seconds, at most a second behind: this is never early.
  state.age_timer:stop()
  state.age_timer:start(math.max(at - os.time(), 1) * 1000, 0, vim.schedule_wrap(function()
    state.age_at = nil
    if #tab_windows() > 0 then
      M.render_opened() -- thousands of lines in a big library: in slices
    else
      update_age_timer()
    end
  end))
end

local function update_spinner()
  update_age_timer()
  local st = client.status()
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

local flush_pending, render_sliced, progress_due

--- Redraw only the header (the spinner's tick, a status change).
function M.render_header()
  if not buf_valid() or state.writing then
    return -- (a sliced render setting lines draws the header after)
  end
  local h = render_.header()
  local old_n = 0
  while state.rows[old_n + 1] == nil and old_n < vim.api.nvim_buf_line_count(state.buf) do
    old_n = old_n + 1
  end
  if #h ~= old_n then
    -- The header grew or shrank (an error came or went, the library is no
    -- longer empty): a full redraw keeps the cursor on its item. Changes on
    -- their way redraw it anyway (the header too) once they are in.
    if mirror.applying() or state.building or state.flush or #state.pending > 0 then
      return
    end
    if #(state.texts or {}) >= 20000 then
      return render_sliced()
    end
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


-- A draw from a new tree (the first, or the tab shown again after changes
-- while hidden) of a library of more items than this is made in slices:
-- with nothing worked out yet for its lines (tags, ages, widths, the order
-- of each folder) a line costs some 15-30 us, and the up to `fold_above`
-- items drawn open would hold the loop for tens of ms. A draw of the tree
-- kept reuses what was worked out and is quick. The same for the hits of a
-- filter (their nodes are made for it).
local SLICED_ABOVE = 300

-- A library past which a draw that makes a new tree or item nodes goes in slices.
local function big()
  return mirror.count('prompt') + mirror.count('block') > SLICED_ABOVE
end

-- A full render. `saved`: the views from before a failed patch; `made`:
-- the lines, rows and tree render_sliced worked out (else made here).
local function render(saved, made)
  if not made then
    state.building = nil -- a sliced render under way would be older
    state.redraw_after = false
  end
  state.writing = false
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
  -- Hints are cut where the narrowest window showing the tab ends.
  state.width = nil
  for _, win in ipairs(wins) do
    state.width = math.min(state.width or math.huge, vim.api.nvim_win_get_width(win))
  end
  if not made then
    filter.update(M.render)
    if (state.hits_n or 0) > SLICED_ABOVE and not state.searching then
      -- Many hits: drawn in slices (a hit's line is worked out anew: its
      -- item's node is made for the filter).
      return render_sliced(true)
    end
  end
  -- The lines we set last, unless something else changed the buffer since.
  local old_lines = state.texts
  if not old_lines or state.texts_buf ~= state.buf or state.tick ~= vim.api.nvim_buf_get_changedtick(state.buf) then
    old_lines = vim.api.nvim_buf_get_lines(state.buf, 0, -1, false)
  end
  saved = saved or view.save_views(wins, #old_lines)
  local lines, rows, built
  if made then
    lines, rows, built = made[1], made[2], made[3]
  else
    -- The tree as it is when it took every change so far (patches keep it
    -- so): a fold, the filter or a reopened tab only draw what shows.
    local b = state.built
    local t = b and b.seen == state.seen and b.tree or nil
    local seen = state.seen
    lines, rows, built = render_.build(nil, t)
    built.seen = seen
  end
  state.rows, state.built, state.behind = rows, built, nil
  state.stats.full = state.stats.full + 1
  local texts, hls = made and made[4], made and made[5]
  if not texts then
    texts, hls = {}, {}
    for i, l in ipairs(lines) do
      texts[i], hls[i] = l.text, l.hls
    end
  end
  state.hls = hls
  patch.set_lines(state.buf, old_lines, texts)
  state.texts, state.texts_buf, state.tick = texts, state.buf, vim.api.nvim_buf_get_changedtick(state.buf)
  view.restore_views(saved)
  update_spinner()
  local fns = state.on_drawn
  state.on_drawn = {}
  for _, fn in ipairs(fns) do
    fn()
  end
end

--- Redraw the tab, keeping each window's cursor on the same item.
function M.render()
  render(nil)
end

--- Draw the tab that has just been shown (opened, or its buffer shown
--- again): at once, or in slices from a new tree of a big library. Runs
--- state.on_drawn when drawn either way.
function M.render_shown()
  if state.building then
    return -- a sliced render under way draws it
  end
  local b = state.built
  if not (b and b.seen == state.seen) then -- a new tree: nothing worked out
    if big() then
      return render_sliced()
    end
  end
  render(nil)
end

local slices = require('shelf.slices')
local slice_ns = slices.SLICE_NS

--- Tests: the time budget of a sliced render's slice, in ns (0: a slice
--- yields at its first chance, so a render takes several turns of the loop).
function M._set_slice_ns(ns)
  slice_ns = ns
end

-- A full render after a big change, a slice (shelf.slices.SLICE_NS) at a time (a libuv
-- timer between slices, so input and redraws go on): the tree, its lines,
-- then setting them in the buffer a chunk at a time. Rows and cursors change
-- only at the end; while lines are being set, the keys see no node under the
-- cursor and the header waits. Changes that come meanwhile wait for it, and
-- a full render meanwhile makes it moot (it reads the buffer as it is).
function render_sliced(keep)
  if not buf_valid() or #tab_windows() == 0 then
    return render(nil)
  end
  state.stats.sliced = state.stats.sliced + 1
  filter.update(M.render)
  -- `keep`: draw the tree kept (a folder of many items opened: its sort is
  -- what takes time) when it took every change so far.
  local b = state.built
  local kept = keep and b and b.seen == state.seen and b.tree or nil
  local deadline = 0
  local function pause()
    return hrtime() > deadline
  end
  local co = coroutine.create(function()
    local seen = kept and b.seen or state.seen
    local lines, rows, built = render_.build(pause, kept)
    built.seen = seen
    local texts, hls = {}, {}
    for i, l in ipairs(lines) do
      texts[i], hls[i] = l.text, l.hls
      if i % 1024 == 0 and pause() then
        coroutine.yield()
      end
    end
    local wins = tab_windows()
    if not buf_valid() or #wins == 0 then
      return nil
    end
    -- From here to the end the buffer is neither the old lines nor the new.
    local old_lines = state.texts
    if not old_lines or state.texts_buf ~= state.buf or state.tick ~= vim.api.nvim_buf_get_changedtick(state.buf) then
      old_lines = vim.api.nvim_buf_get_lines(state.buf, 0, -1, false)
    end
    local saved = view.save_views(wins, #old_lines)
    state.writing = true
    state.hls = hls
    patch.set_lines(state.buf, old_lines, texts, pause)
    state.texts, state.texts_buf, state.tick = texts, state.buf, vim.api.nvim_buf_get_changedtick(state.buf)
    return { lines, rows, built, texts, hls }, saved
  end)
  state.building = co
  local finish
  local function step()
    if state.building ~= co then
      return
    end
    if not buf_valid() then
      state.building, state.writing = nil, false
      return
    end
    deadline = slices.deadline(slice_ns)
    local ok, made, saved = coroutine.resume(co)
    if not ok then
      state.building, state.writing = nil, false
      error(made)
    end
    if coroutine.status(co) ~= 'dead' then
      return vim.defer_fn(step, 0)
    end
    if hrtime() > deadline then
      -- This slice is spent: what is left (rows, cursors, the header, some
      -- ms at 1000 lines) waits for the next turn of the loop.
      return vim.defer_fn(function()
        if state.building == co then
          finish(made, saved)
        end
      end, 0)
    end
    finish(made, saved)
  end
  function finish(made, saved)
    state.building = nil
    -- Without a window (closed meanwhile) it is drawn when shown again.
    render(saved, made)
    if made and made[3].seen ~= state.seen then
      -- Changes came while it was made: its folders' items may be newer
      -- than its counts. The next draw takes a new tree, or counts this
      -- one anew (recounted below).
      state.built, state.behind = nil, made[3]
    end
    -- The header was made at the start: the status may have moved on.
    M.render_header()
    if state.redraw_after then
      state.redraw_after = false
      return render_sliced()
    end
    flush_pending()
  end
  -- The first slice in a turn of its own: the turn that asked (the tab
  -- opened: a window, its buffer, the modules of the tab) has spent its
  -- share of the frame.
  vim.defer_fn(step, 0)
end

-- For patch.lua: a full render after a failed patch, and the spinner (and
-- the ages' timer); view.lua when the tab is shown or hidden.
M._render = render
M._update_spinner = update_spinner
--- Apply a `changed` push (mirror.last_change) to the lines shown. Returns
--- false, changing nothing, when only a full render can show it.
M.patch = patch.patch

--- Redraw the lines of these nodes ('prompt:<id>', 'project:<id>') after a
--- mark on them changed (render.add_mark): in place when it can, else a
--- full render.
function M.redraw(keys)
  if state.building then
    -- A sliced render made its lines before this mark changed: one more
    -- after it (its rows and lines disagree with the buffer meanwhile).
    state.redraw_after = true
    return
  end
  if not patch.redraw(keys) then
    M.render()
  end
end

-- The parts of a first load (queue_change) on the tree drawn last, when no
-- folder changed since it was built: its counts made anew, and it is drawn
-- again. True when done.
local function recounted(changes)
  for _, change in ipairs(changes) do
    if not change.first_load then
      return false
    end
  end
  local b = state.built or state.behind
  if not (b and b.tree.folder_changes == state.folder_changes) or state.hits or state.dirty
    or not tree.recount(b.tree, S.opts().fold_above) then
    return false
  end
  b.seen = state.seen
  state.built, state.behind = b, nil
  state.stats.recounted = state.stats.recounted + 1
  return true
end

--- Show changes (mirror.last_change values; default: the last one): in
--- place when M.patch can, else a full render.
function M.changed(changes)
  changes = changes or { mirror.last_change }
  if recounted(changes) then
    return render_sliced(true)
  end
  -- Many small changes at once (rows arriving one by one from elsewhere):
  -- a patch costs about what a full render spends on 80 lines, so past that
  -- one full render is cheaper than a patch each.
  local n = 0
  for _, change in ipairs(changes) do
    n = n + #(change.upserted or {}) + #(change.deleted or {})
  end
  if n > math.max(patch.PATCH_MAX * 4, #(state.texts or {}) / 80) then
    -- A new tree, in slices past a few hundred items: a thousand open
    -- items' lines at once held the loop for 10-30 ms on a busy machine.
    if n >= 2000 or big() then
      return render_sliced()
    end
    return M.render()
  end
  for _, change in ipairs(changes) do
    if not M.patch(change) then
      -- A new library (a restart, a reconnect) or a change a patch cannot
      -- show: a new tree, built in slices in a big library.
      if big() then
        return render_sliced()
      end
      return M.render()
    end
  end
end

-- Changes that arrive together are drawn once, after the last of them: a
-- folder's delete comes as one change for the folders and one for the items
-- in them, and drawing the first alone would show those items under
-- Unsorted for a moment.
local function queue_change()
  local change = mirror.last_change or {}
  if change.reset then
    tree.gone = {}
  elseif change.kind == 'project' then
    for _, id in ipairs(change.deleted or {}) do
      tree.gone[id] = true
    end
  end
  if change.reset or change.kind == 'project' then
    state.folder_changes = state.folder_changes + 1
  end
  if mirror.first_loading() then
    -- A first load is drawn whole now and then (progress_due: the tree
    -- recounted, or a new one), never patched in: one entry stands for all
    -- its parts, not their lists of ids, which kept the load's garbage
    -- alive until the next draw (RSS +2-4 MiB at 100k).
    local last = state.pending[#state.pending]
    if not (last and last.first_load) then
      last = { first_load = true, upserted = {}, deleted = {} }
      table.insert(state.pending, last)
    end
    state.seen = state.seen + 1
    patch.seq_of[last] = state.seen
    return flush_pending()
  end
  -- Numbered: the tree built before it is stale until a patch put it in.
  state.seen = state.seen + 1
  patch.seq_of[change] = state.seen
  table.insert(state.pending, change)
  flush_pending()
end

-- A first load into an empty library is drawn as it comes (the header says
-- it is loading), at most every PROGRESS_MS, so the folders show while 100k
-- items are still read. Only once it is past tab.fold_above: folders drawn
-- open would close when the rest came (a small library is in at once).
local PROGRESS_MS = 1000

function progress_due()
  if not mirror.first_loading() then
    state.progress_at = nil
    return false
  end
  if mirror.count('prompt') + mirror.count('block') <= (S.opts().fold_above or math.huge) then
    return false
  end
  local now = hrtime()
  local wait = state.progress_at and (state.progress_at + PROGRESS_MS * 1e6 - now) / 1e6 or 0
  if wait <= 0 then
    state.progress_at = now
    return true
  end
  if not state.progress_timer then
    state.progress_timer = true
    vim.defer_fn(function()
      state.progress_timer = false
      flush_pending()
    end, math.ceil(wait))
  end
  return false
end

function flush_pending()
  if state.flush or state.building or #state.pending == 0 then
    return
  end
  state.flush = true
  vim.schedule(function()
    state.flush = false
    if mirror.applying() and not progress_due() then
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
  local _, err = client.start()
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
  -- Start on the first item rather than the header.
  table.insert(state.on_drawn, function()
    if vim.api.nvim_win_is_valid(win) and vim.api.nvim_win_get_buf(win) == buf
      and vim.api.nvim_win_get_cursor(win)[1] == 1 then
      for l = 1, vim.api.nvim_buf_line_count(buf) do
        if state.rows[l] then
          vim.api.nvim_win_set_cursor(win, { l, 0 })
          break
        end
      end
    end
  end)
  M.render_shown()
end

--- Give the tab's window in this tab page its configured width again (a
--- window split from it took half; one beside it closed).
function M.restore_width()
  local win = tab_window()
  -- Alone in its row it is as wide as the screen, whatever the setting.
  if win and vim.api.nvim_win_get_width(win) < vim.o.columns then
    vim.api.nvim_win_set_width(win, S.opts().width)
  end
end

M.reset_window_options = view.reset_window_options

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
  local item = kind and mirror.item(kind, id)
  local pid = item and (kind == 'project' and item.parent_id or item.project_id)
  local seen = {}
  while pid and not seen[pid] do
    seen[pid] = true
    state.collapsed['project:' .. pid] = false
    local p = mirror.item('project', pid)
    pid = p and p.parent_id
  end
  if item then
    local section = kind == 'project' and tree.holds[item.type] or kind
    state.collapsed['section:' .. section] = false
    if item.temporary then
      state.collapsed['section:temporary'] = false
    elseif kind ~= 'project' and not (item.project_id and mirror.item('project', item.project_id)) then
      state.collapsed['unsorted:' .. kind] = false
    end
  end
  state.focus = key
  M.render_opened()
end

--- Redraw after folders were opened (by hand, or by reveal), or the filter
--- set or cleared: a folder's items get their nodes and a sort the first
--- time it shows, after a pass over every item of its kind, and thousands of
--- folder lines may come back. In a library of more than SLICED_ABOVE items
--- that is done a slice at a time (it finishes at once when it is quick).
function M.render_opened()
  if big() then
    return render_sliced(true)
  end
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

-- A new width: the hints cut to it.
ui.autocmd(vim.fn.exists('##WinResized') == 1 and 'WinResized' or 'VimResized', {
  desc = 'shelf: cut the tab\'s hints to its new width',
  callback = function()
    local wins = tab_windows()
    local w
    for _, win in ipairs(wins) do
      w = math.min(w or math.huge, vim.api.nvim_win_get_width(win))
    end
    if w and w ~= state.width then
      M.render()
    end
  end })

-- Redraw on every change and status.
ui.autocmd('User', { pattern = 'ShelfChanged', desc = 'shelf: redraw the knowledge tab',
  callback = queue_change })
ui.autocmd('User', { pattern = 'ShelfStatus', desc = 'shelf: redraw the knowledge tab header',
  callback = function()
    -- Changes that waited for the end of a burst are drawn now.
    flush_pending()
    if next(tree.gone) and not busy(client.status()) then
      -- shelfd is idle: the deletes that went with those folders are in.
      -- Anything of theirs still there shows again (under Unsorted).
      tree.gone = {}
      state.seen = state.seen + 1 -- their content shows again: a new tree
      if not state.flush then
        return M.render()
      end
    end
    M.render_header()
  end })

return M
