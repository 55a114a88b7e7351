-- shelf.tab.filter: the hits of the tab's `/` filter. Text is searched in
-- shelfd (its store: see doc/shelf.txt, shelf-tab-filter) with a query
-- answered later, never a blocking request: the tab keeps what it shows and
-- its header says "searching" until the answer comes. A newer filter, or a
-- change to the library, cancels the search under way, and an answer to
-- anything but the newest search is dropped. `#word` is matched here against
-- the tags the mirror holds.
local client = require('shelf.client')
local display = require('shelf.display')
local mirror = require('shelf.mirror')
local S = require('shelf.tab.state')

local M = {}

-- The most hits a filter shows: past it the filter line says "1000+ items"
-- (a filter that matches more is a filter to narrow).
M.limit = 1000

-- A #tag filter looks at the library this long at a time (ns; tests: 0).
M.slice_ns = require('shelf.slices').SLICE_NS

local state = S.state
-- The newest search: { filter=, change=, ticket= } (change: the mirror's
-- last change when it started; a newer one means the hits may be out of
-- date). Answered when ticket is nil.
local current = nil
local answered = {} -- functions to run once the search under way is answered

-- The items whose tags hold `tag` (case ignored), found a slice of the
-- library at a time (at 100k items a pass is some 100 ms): done(hits, n) at
-- the end, unless `me` is no longer the search of the tab, or the library
-- changed meanwhile (the redraw that change brings starts another).
local function tag_hits(tag, me, done)
  local hits, n = { prompt = {}, block = {} }, 0
  tag = tag:lower()
  local library = mirror.library
  -- Whether tags match, by the tags column's value: items with the same
  -- tags share one (shelf.mirror).
  local matches = {}
  local function match(tags)
    local m = matches[tags]
    if m == nil then
      m = false
      -- The tags as shown: another client may have written odd ones.
      for _, t in ipairs(display.tags(mirror.tags(tags))) do
        if t:lower():find(tag, 1, true) then
          m = true
          break
        end
      end
      matches[tags] = m
    end
    return m
  end
  local slices = require('shelf.slices')
  slices.run(function() return M.slice_ns end, function(pause)
    local tags_of = { prompt = mirror.column('prompt', 'tags', library), block = mirror.column('block', 'tags', library) }
    slices.each_item(library, { 'prompt', 'block' }, pause, function(kind, row)
      local tags = tags_of[kind][row]
      -- (Any value: another client may have written a bare string.)
      if tags ~= nil and match(tags) then
        hits[kind][mirror.id_at(kind, row, library)] = true
        n = n + 1
      end
    end)
  end, function()
    -- Stopped, or the library moved on: the table may not be walked further.
    return current == me and mirror.library == library and mirror.last_change == me.change
  end, function()
    done(hits, n)
  end)
end

local function stop()
  if current and current.ticket then
    client.cancel(current.ticket)
  end
  current = nil
  state.searching = false
end

--- Forget the search under way (the filter was cleared).
function M.cancel()
  stop()
  answered = {}
end

-- Run fn once the tab is drawn: now, or after a draw in slices under way.
local function after_drawn(fn)
  if state.building then
    table.insert(state.on_drawn, fn)
  else
    fn()
  end
end

--- Run fn once the hits of the filter are in and drawn (now if they are).
function M.when_answered(fn)
  if state.searching then
    table.insert(answered, fn)
  else
    after_drawn(fn)
  end
end

--- Make state.hits follow state.filter: called before each full render. A
--- search starts when the filter or the library changed since the last one;
--- on its answer `redraw()` runs. Meanwhile the hits shown stay (none before
--- the first answer).
function M.update(redraw)
  local f = state.filter
  if not f then
    state.hits_capped, state.hits_n = false, nil
    return M.cancel()
  end
  local change = mirror.last_change
  if current and current.filter == f and current.change == change then
    return
  end
  stop()
  local me = { filter = f, change = change }
  current = me
  state.hits = state.hits or {}
  state.searching = true
  -- The hits are in: shown, and those waiting for them run.
  local function answer(set, n, capped)
    state.searching = false
    state.hits, state.hits_n, state.hits_capped = set, n, capped
    redraw()
    if vim.fn.mode() == 'c' then
      vim.cmd('redraw') -- the filter is being typed: show the hits now
    end
    local fns = answered
    answered = {}
    -- Many hits are drawn in slices: those waiting run once they are drawn.
    after_drawn(function()
      for _, fn in ipairs(fns) do
        fn()
      end
    end)
  end
  local tag = f:match('^#(%S+)$')
  if tag then
    return tag_hits(tag, me, function(hits, n)
      answer(hits, n, false)
    end)
  end
  local ticket = client.search_async(f, nil, function(err, hits)
    if current ~= me then
      return -- a newer search replaced it
    end
    me.ticket = nil
    local set = { prompt = {}, block = {} }
    if err then
      require('shelf.ui').warn('search: ' .. tostring(err))
    else
      for _, h in ipairs(hits or {}) do
        local of = set[h.kind] or {}
        set[h.kind] = of
        of[h.id] = true
      end
    end
    answer(set, #(hits or {}), hits ~= nil and #hits >= M.limit)
  end, M.limit)
  me.ticket = ticket
end

return M
