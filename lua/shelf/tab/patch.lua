-- shelf.tab.patch: changing the tab's lines in place. set_lines replaces
-- only the lines that differ from what the buffer shows; M.patch applies a
-- change of a few items to the last full render's tree and lines; M.redraw
-- redraws given nodes' lines (a mark that changed).
local S = require('shelf.tab.state')
local mirror = require('shelf.mirror')
local render = require('shelf.tab.render')
local tree = require('shelf.tree')
local ui = require('shelf.ui')
local view = require('shelf.tab.view')

local M = {}

local state = S.state

-- Lines set by one nvim_buf_set_lines call when set_lines may pause (about
-- 3 ms of it; 100k lines at once hold the loop for 40 ms).
local CHUNK = 8192

-- Lines old_from..old_to (0-based, end excluded) become new[new_from + 1 ..
-- new_to]: in one call, or with `pause` CHUNK lines a call, yielding the
-- coroutine between calls when pause() says so.
local function replace(buf, h, new, pause)
  local at, old_left, j, new_to = h[1], h[2] - h[1], h[3], h[4]
  if not pause then
    return vim.api.nvim_buf_set_lines(buf, at, at + old_left, false, vim.list_slice(new, j + 1, new_to))
  end
  while true do
    local take_old, take_new = math.min(old_left, CHUNK), math.min(new_to - j, CHUNK)
    vim.api.nvim_buf_set_lines(buf, at, at + take_old, false, vim.list_slice(new, j + 1, j + take_new))
    at, old_left, j = at + take_new, old_left - take_old, j + take_new
    if old_left == 0 and j == new_to then
      return
    end
    if pause() then
      vim.bo[buf].modifiable = false
      coroutine.yield()
      vim.bo[buf].modifiable = true
    end
  end
end

-- Replace only the lines that differ, so nothing else moves or blinks. With
-- `pause` (inside a coroutine, see tab/init.lua render_sliced), big runs of
-- lines are set a chunk at a time, yielding when pause() says so.
function M.set_lines(buf, old, new, pause)
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
  vim.bo[buf].modifiable = true
  -- Bottom up, so the line numbers of the hunks above stay valid.
  for k = #hunks, 1, -1 do
    replace(buf, hunks[k], new, pause)
  end
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
end

-- ---- patching: a change of a few items -------------------------------------------
-- A full render walks every line: tens of ms at 10k items. A change of a few
-- items that leaves the folders alone is applied to the last render's tree
-- and lines instead: each item's line is taken out and put in at its new
-- place, and the count lines above redrawn. The result equals a full
-- render's (tests/nvim/test_tab.lua compares them after random changes).

local PATCH_MAX = 32 -- items in one change; more take a full render
M.PATCH_MAX = PATCH_MAX

--- Each change's number in the order they came (tab/init.lua numbers them;
--- state.seen is the last): a tree that took every change up to the last
--- is drawn again as it is instead of built anew.
M.seq_of = setmetatable({}, { __mode = 'k' })

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
  local line = render.node_line(node, depth, os.time())
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

-- Redraw the count lines of folder `c` and the folders above it that have lines.
local function recount_lines(c)
  while c do
    local l = view.shown(c) and view.line_of(c)
    if l then
      put_line(l, 0, c)
    end
    c = c.parent
  end
end

-- Apply one item's change to the tree and the lines shown: true when done,
-- 'draw' when the tree took it but the lines need a render of the tree (a
-- folder showing '… N more' gained or lost one), false when only a full
-- render (a new tree) can show it.
local function patch_item(built, kind, id, was)
  local t = built.tree
  local item = mirror.item(kind, id)
  -- Where it was: where the summary before this change went (the tree
  -- took every change before this one).
  local from = was and tree.place(t, kind, was) or nil
  local old = t.index[kind .. ':' .. id]
  local to
  if item then
    to = tree.place(t, kind, item)
    if not to then
      return false
    end
  end
  if from == to and ((old and old.item == item) or not (from and from.children)) then
    return true -- in the same place, and no line of its own (or the same one)
  end
  local draw = false
  if from then
    draw = from.children ~= nil and #from.children > S.limit(from)
    local l = old and not draw and view.shown(old) and view.line_of(old)
    tree.take(t, from, kind, id)
    if l then
      put_line(l, -1, old)
    end
    if from.type ~= 'folder' and from.nitems == 0 and #from.subs == 0 then
      return false -- an empty Unsorted or Temporary goes away
    end
    if not draw then
      recount_lines(from)
    end
  end
  if not item then
    return draw and 'draw' or true
  end
  local crowded = to.children ~= nil and #to.children >= S.limit(to)
  local node, i = tree.put(t, to, kind, item)
  if crowded then
    return 'draw'
  end
  if node and view.shown(node) then
    local at
    if i == 1 then
      at = view.line_of(to)
    else
      -- Below the previous sibling and everything under it.
      at = view.line_of(to.children[i - 1])
      local d = at and state.rows[at].depth
      while at and state.rows[at + 1] and state.rows[at + 1].depth > d do
        at = at + 1
      end
    end
    if not at then
      return false
    end
    put_line(at + 1, 1, node)
    local c = render.cache_of(node)
    if c and c.t and c.hint_hi then
      built.stale_at = math.min(built.stale_at, c.t + c.hint_hi)
    end
  end
  if not draw then
    recount_lines(to)
  end
  return draw and 'draw' or true
end

--- Apply a `changed` push (mirror.last_change) to the lines shown. Returns
--- false, changing nothing, when only a full render can show it.
function M.patch(change)
  local built = state.built
  local seq = M.seq_of[change]
  if built and seq and seq <= built.seen and not state.dirty then
    return true -- the tree was built after it: it is drawn
  end
  if not (change and built and not change.reset and (change.kind == 'prompt' or change.kind == 'block'))
    or not mirror.replaced(change)
    or state.hits or state.focus or state.dirty or not S.buf_valid()
    or #change.upserted + #change.deleted > PATCH_MAX or os.time() >= built.stale_at
    or state.texts_buf ~= state.buf or state.tick ~= vim.api.nvim_buf_get_changedtick(state.buf)
    or #S.tab_windows() == 0 then
    return false
  end
  -- From here the tree is changed: a failure leaves it to a full render.
  state.built = nil
  local saved = view.save_views(S.tab_windows(), #state.texts)
  vim.bo[state.buf].modifiable = true
  local ok, done = pcall(function()
    local draw, done, was = false, {}, mirror.replaced(change)
    for _, list in ipairs({ change.deleted, change.upserted }) do
      for _, id in ipairs(list) do
        if not done[id] then
          done[id] = true
          local r = patch_item(built, change.kind, id, was[id])
          if not r then
            return false
          end
          draw = draw or r == 'draw'
        end
      end
    end
    return draw and 'draw' or true
  end)
  vim.bo[state.buf].modifiable = false
  vim.bo[state.buf].modified = false
  state.tick = vim.api.nvim_buf_get_changedtick(state.buf)
  if not ok then
    ui.notify('the tab could not apply a change in place (' .. tostring(done) .. '); redrawing it')
  end
  if not (ok and done) then
    -- Half applied: a full render from here, the cursors as they were.
    require('shelf.tab')._render(saved)
    return true
  end
  state.built = built
  -- The tree holds this change now: a render may draw it as it is.
  if seq == built.seen + 1 then
    built.seen = seq
  end
  if done == 'draw' then
    require('shelf.tab')._render(saved)
    return true
  end
  state.stats.patched = state.stats.patched + 1
  view.restore_views(saved)
  require('shelf.tab')._update_spinner()
  return true
end

--- Redraw the lines of the nodes with these keys ('prompt:<id>',
--- 'project:<id>') in place, for a mark (render.add_mark) that changed;
--- false, changing nothing, when only a full render can show them.
function M.redraw(keys)
  local built = state.built
  if not built or state.hits or state.dirty or not S.buf_valid()
    or state.texts_buf ~= state.buf or state.tick ~= vim.api.nvim_buf_get_changedtick(state.buf) then
    return false
  end
  vim.bo[state.buf].modifiable = true
  local ok, err = pcall(function()
    for _, key in ipairs(keys) do
      local node = built.index[key]
      local l = node and view.shown(node) and view.line_of(node)
      if l then
        put_line(l, 0, node)
      end
    end
  end)
  vim.bo[state.buf].modifiable = false
  vim.bo[state.buf].modified = false
  state.tick = vim.api.nvim_buf_get_changedtick(state.buf)
  if not ok then
    ui.notify('the tab could not redraw a line in place (' .. tostring(err) .. '); redrawing it')
    return false
  end
  return true
end

return M
