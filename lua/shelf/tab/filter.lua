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

local state = S.state
-- The newest search: { filter=, change=, ticket= } (change: the mirror's
-- last change when it started; a newer one means the hits may be out of
-- date). Answered when ticket is nil.
local current = nil
local answered = {} -- functions to run once the search under way is answered

local function tag_hits(tag)
  local hits = {}
  tag = tag:lower()
  for _, kind in ipairs({ 'prompt', 'block' }) do
    for _, item in ipairs(mirror.items(kind)) do
      -- The tags as shown: another client may have written odd ones.
      for _, t in ipairs(display.tags(item.tags)) do
        if t:lower():find(tag, 1, true) then
          hits[kind .. ':' .. item.id] = true
          break
        end
      end
    end
  end
  return hits
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

--- Run fn once the hits of the filter are in (now if they are).
function M.when_answered(fn)
  if state.searching then
    table.insert(answered, fn)
  else
    fn()
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
  local tag = f:match('^#(%S+)$')
  if tag then
    state.hits, state.hits_capped = tag_hits(tag), false
    state.hits_n = vim.tbl_count(state.hits)
    return
  end
  state.hits = state.hits or {}
  state.searching = true
  local ticket = client.search_async(f, nil, function(err, hits)
    if current ~= me then
      return -- a newer search replaced it
    end
    me.ticket = nil
    state.searching = false
    local set = {}
    if err then
      require('shelf.ui').warn('search: ' .. tostring(err))
    else
      for _, h in ipairs(hits or {}) do
        set[h.kind .. ':' .. h.id] = true
      end
    end
    state.hits, state.hits_n = set, #(hits or {})
    state.hits_capped = hits ~= nil and #hits >= M.limit
    redraw()
    if vim.fn.mode() == 'c' then
      vim.cmd('redraw') -- the filter is being typed: show the hits now
    end
    local fns = answered
    answered = {}
    for _, fn in ipairs(fns) do
      fn()
    end
  end, M.limit)
  me.ticket = ticket
end

return M
