-- shelf.tab.render: the knowledge tab's lines, from the mirror: the header
-- (backend, user, realtime, spinner, last error, filter) and one line per
-- folder and item, each with its highlights. Pure: nothing here touches a
-- buffer or window. Other features decorate lines through M.add_mark.
local display = require('shelf.display')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local tree = require('shelf.tree')
local ui = require('shelf.ui')
local S = require('shelf.tab.state')
local EVERY = require('shelf.slices').EVERY

local M = {}

local state = S.state
-- The kinds an item is, which a filter's hits are counted and drawn of.
local ITEM_KINDS = { 'prompt', 'block' }
local opts = S.opts

M.spinner = { '⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏' }
local spinner = M.spinner

-- ---- status and header ------------------------------------------------------

function M.busy(st)
  local l = st.loading
  if type(l) == 'table' and (l.refresh or (l.actions or 0) > 0 or l.auth) then
    return true
  end
  return st.running and not st.ready
end

local function loading_text(st)
  local l = type(st.loading) == 'table' and st.loading or {}
  if st.running and not st.ready then
    if mirror.first_loading() then -- drawn as it comes: say how far it is
      local n = mirror.count('prompt') + mirror.count('block')
      return n > 0 and string.format('loading, %d in', n) or 'loading'
    end
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
function M.header()
  local st = client.status()
  local text = ' Shelf'
  local hls = { { 'ShelfHeader', 0, #text } }
  local info = { st.backend or '?' }
  local user = st.user
  if type(user) == 'table' then
    user = user.email or user.id
  end
  if type(user) == 'string' and user ~= '' then
    table.insert(info, display.line(user, display.max.label))
  elseif st.backend == 'supabase' and st.ready then
    table.insert(info, 'signed out')
  end
  if type(st.realtime) == 'string' and st.realtime ~= 'off' then
    table.insert(info, realtime_text[st.realtime] or display.line(st.realtime, display.max.tag))
  end
  local from = #text + 2
  text = text .. '  ' .. table.concat(info, ' · ')
  table.insert(hls, { 'ShelfHeaderInfo', from, #text })
  if M.busy(st) then
    local s = '  ' .. spinner[state.frame] .. ' ' .. (loading_text(st) or '')
    table.insert(hls, { 'ShelfSpinner', #text, #text + #s })
    text = text .. s
  end
  local out = { { text = text, hls = hls } }
  if st.error then
    local e = ' ! ' .. display.line(tostring(st.error))
    table.insert(out, { text = e, hls = { { 'ShelfError', 0, #e } } })
  end
  if state.filter then
    local shown = display.line(state.filter, display.max.label)
    local f = string.format(' / %s  (%s; empty %s clears)', shown, M.hit_summary(),
      require('shelf.tab.actions').first_key('filter') or '<Plug>(shelf-tab-filter)')
    table.insert(out, { text = f, hls = { { 'ShelfFilter', 1, 3 + #shown } } })
  end
  if st.ready and mirror.count('prompt') + mirror.count('block') + mirror.count('project') == 0 then
    -- An empty library: how to put something in it (a line a key, to fit
    -- the narrow window).
    local keys = require('shelf.tab.actions').first_key
    table.insert(out, { text = ' The library is empty.', hls = { { 'ShelfHint', 0, 22 } } })
    for _, k in ipairs({ { 'new', 'new prompt or block' }, { 'new_folder', 'new folder' },
      { 'help', 'all keys' } }) do
      if keys(k[1]) then
        local e = string.format('   %-4s %s', keys(k[1]), k[2])
        table.insert(out, { text = e, hls = { { 'ShelfHint', 0, #e } } })
      end
    end
  end
  table.insert(out, { text = '', hls = {} })
  return out
end

-- What the filter shows, counted as it is shown: '2 items, 1 folder', or
-- 'no matches'. Once per search (the header redraws with each spinner tick).
local summaries = setmetatable({}, { __mode = 'k' })

local plural = ui.plural

function M.hit_summary()
  local hits = state.hits
  if not hits or state.searching then
    return 'searching'
  end
  if summaries[hits] and summaries[hits].filter == state.filter then
    return summaries[hits].text
  end
  local items = 0
  for _, kind in ipairs(ITEM_KINDS) do
    for _ in pairs(hits[kind] or {}) do
      items = items + 1
    end
  end
  -- Folders show by their name (filter_shows counts them as it draws);
  -- other hits of shelfd's search on folders show nothing of their own.
  local named = state.hit_named
  local folders = named and named.hits == hits and named.filter == state.filter and named.n
  if not folders then
    return 'searching' -- not drawn yet: the draw of these hits comes next
  end
  local parts = {}
  if state.hits_capped then
    table.insert(parts, string.format('%d+ items', items))
  elseif items > 0 or folders == 0 then
    table.insert(parts, plural(items, 'item'))
  end
  if folders > 0 then
    table.insert(parts, plural(folders, 'folder'))
  end
  local text = (items == 0 and folders == 0) and 'no matches' or table.concat(parts, ', ')
  summaries[hits] = { filter = state.filter, text = text }
  return text
end

-- ---- rows ------------------------------------------------------------------------

-- While filtering: folder node -> how many items inside it match (all
-- levels down), and -> the matching items directly inside ({ kind, id }).
-- Worked out from the hits and where each goes in the tree, not by a walk of
-- every item.
local function filter_counts(t, tick)
  local counts, inside = {}, {}
  local n = 0
  for _, kind in ipairs(ITEM_KINDS) do
    for id in pairs(state.hits[kind] or {}) do
      n = n + 1
      if tick and n % EVERY == 0 then
        tick()
      end
      local it = mirror.item(kind, id)
      local c = it and tree.place(t, kind, it)
      if c then
        local list = inside[c] or {}
        inside[c] = list
        list[#list + 1] = { kind, id }
        while c do
          counts[c] = (counts[c] or 0) + 1
          c = c.parent
        end
      end
    end
  end
  return counts, inside
end

-- While filtering, the folders that show: those holding a hit (counts),
-- those whose own name matches, and those above either. One pass over the
-- folders, bottom up, instead of asking again below each folder drawn.
local function filter_shows(t, counts, tick)
  local want, shows, n, named = state.filter:lower(), {}, 0, 0
  local function visit(node)
    n = n + 1
    if tick and n % EVERY == 0 then
      tick()
    end
    local show = (counts[node] or 0) > 0
    if node.type == 'folder' and (node.low or node.label:lower()):find(want, 1, true) then
      show, named = true, named + 1
    end
    for _, c in ipairs(node.subs or {}) do
      if visit(c) then
        show = true
      end
    end
    shows[node] = show or nil
    return show
  end
  for _, section in ipairs(t.sections) do
    visit(section)
  end
  state.hit_named = { hits = state.hits, filter = state.filter, n = named }
  return shows
end

--- True when a node shows: always, but while filtering only matching items
--- and the folders holding them or whose own name matches (filter_shows,
--- worked out by the build before it walks the tree).
function M.node_visible(node)
  if not state.hits then
    return true
  end
  if node.type == 'item' then
    local of = state.hits[node.kind]
    return of ~= nil and of[node.id] ~= nil
  end
  return node.type == 'section' or (state.hit_shows ~= nil and state.hit_shows[node] == true)
end

-- While filtering, a folder's children that show: its folders that do, and
-- nodes for its matching items, in order.
local function filtered_children(node, inside)
  local out = {}
  for _, c in ipairs(node.subs) do
    if M.node_visible(c) then
      out[#out + 1] = c
    end
  end
  local items = {}
  for _, ki in ipairs(inside[node] or {}) do
    local n = node.children and node.tree.index[ki[1] .. ':' .. ki[2]]
    if not n then
      local it = mirror.item(ki[1], ki[2])
      n = it and tree.item_node(ki[1], it)
      if n then
        n.parent = node
      end
    end
    items[#items + 1] = n
  end
  tree.sort(items)
  for _, n in ipairs(items) do
    out[#out + 1] = n
  end
  return out
end

--- The line that stands for the children of `node` past what it shows
--- (`shown` of them): the open key shows more (tab/actions.lua).
local function more_node(node, kids, shown)
  return { key = 'more:' .. node.key, type = 'more', kind = node.kind, parent = node, label = '',
    count = #kids - shown, next_key = kids[shown + 1].key }
end

-- What was worked out for an item node's line (its tags text and time, its
-- last line) is kept on the node: nodes exist for the items of folders
-- shown open only, and go with the tree, so this costs what is drawn, not
-- the library (no table of 100k entries for LuaJIT's collector to walk).

--- What was worked out for an item node's summary, or nil.
function M.cache_of(node)
  return node.c
end

-- '#a #b' for a list display.tags gave (one per tags list: summaries with
-- the same tags share it, shelf.mirror), or false for none.
local tags_texts = setmetatable({}, { __mode = 'k' })

local function tags_text(list)
  local text = tags_texts[list]
  if text == nil then
    text = #list > 0 and ('#' .. table.concat(list, ' #')) or false
    tags_texts[list] = text
  end
  return text
end

-- What was worked out for a summary, by the summary: a summary stays the
-- same table until its item changes (shelf.mirror), so the nodes of the
-- next tree (after a change of other items) take it over instead of working
-- out every line again (5-12 ms for a thousand open items, 1.5-4 ms so).
local by_item = setmetatable({}, { __mode = 'k' })

local function cached(node)
  local c = node.c
  if not c then
    local item = node.item
    c = by_item[item]
    if not c then
      c = { tags = tags_text(display.tags(item.tags)) or nil, t = ui.parse_time(item.updated_at) }
      by_item[item] = c
    end
    node.c = c
  end
  return c
end

-- [k * unit, (k + 1) * unit) around d, kept within [lo, hi).
local function span(d, unit, lo, hi)
  local k = math.floor(d / unit)
  return math.max(k * unit, lo), math.min((k + 1) * unit, hi)
end

-- The span of ages [lo, hi) in seconds over which ui.age_of(d) reads the same.
-- (No closures here or in node_line: LuaJIT cannot compile a function that
-- makes one, and these run for every line drawn.)
local function age_span(d)
  local m, h, day, week, year = 60, 3600, 86400, 604800, 31536000
  if d < m then
    return -math.huge, m
  elseif d < h then
    return span(d, m, m, h)
  elseif d < day then
    return span(d, h, h, day)
  elseif d < 14 * day then
    return span(d, day, day, 14 * day)
  elseif d < 365 * day then
    return span(d, week, 14 * day, 365 * day)
  end
  return span(d, year, 365 * day, math.huge)
end

local function hint(node, now)
  if not opts().hints then
    return nil
  end
  local c = cached(node)
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

-- ---- marks: other features' decorations of lines -------------------------------
-- A mark is fn(node) -> text, highlight group (or nil: no mark on that line),
-- shown before the node's label on item and folder lines, in the order
-- added. When what a mark shows changes, call require('shelf.tab').redraw
-- with the node keys ('prompt:<id>', 'project:<id>') to redraw those lines.
M.marks = {} -- { name=, fn= }, in order

--- Add (or, by the same name, replace) a mark.
---@param name string
---@param fn fun(node: table): string|nil, string|nil
function M.add_mark(name, fn)
  for _, m in ipairs(M.marks) do
    if m.name == name then
      m.fn = fn
      return
    end
  end
  table.insert(M.marks, { name = name, fn = fn })
end

--- Remove a mark (then redraw the lines it was on).
function M.remove_mark(name)
  for i, m in ipairs(M.marks) do
    if m.name == name then
      table.remove(M.marks, i)
      return
    end
  end
end

-- The marks of a node: a list of { text, group }, and a string that differs
-- when they do (for the line cache); nil, nil without any.
local function marks_of(node)
  if #M.marks == 0 then
    return nil, nil
  end
  local out, sig = {}, {}
  for _, m in ipairs(M.marks) do
    local text, group = m.fn(node)
    if text and text ~= '' then
      table.insert(out, { text, group })
      table.insert(sig, text .. '\0' .. tostring(group))
    end
  end
  if #out == 0 then
    return nil, nil
  end
  return out, table.concat(sig, '\1')
end

local byte = string.byte

-- The display width of a string, without an API call for plain ASCII (a
-- loop LuaJIT compiles: faster than a pattern for a title's few bytes); and
-- true for printable ASCII, a cell a byte.
local function strwidth(s)
  for i = 1, #s do
    local b = byte(s, i)
    if b < 32 or b > 126 then
      return vim.api.nvim_strwidth(s), false
    end
  end
  return #s, true
end

-- The widths of the few short strings on every line (icons), kept.
local short_widths, n_short = {}, 0
local function short_width(s)
  local w = short_widths[s]
  if not w then
    if n_short >= 64 then
      short_widths, n_short = {}, 0
    end
    w = strwidth(s)
    short_widths[s], n_short = w, n_short + 1
  end
  return w
end

-- The width of an item's label, kept on its node while the label stays.
local function label_width(node)
  if node.w_label ~= node.label then
    node.w_label, node.w = node.label, strwidth(node.label)
  end
  return node.w
end

-- `h` cut to `cells` display cells, ending in '…' when cut; nil when not
-- even that fits.
local function fit(h, cells)
  local w, ascii = strwidth(h)
  if w <= cells then
    return h
  end
  if cells < 2 then
    return nil
  end
  if ascii then
    return h:sub(1, cells - 1) .. '…'
  end
  local out, used = {}, 0
  for ch in h:gmatch('[%z\1-\127\194-\244][\128-\191]*') do
    local w = vim.api.nvim_strwidth(ch)
    if used + w > cells - 1 then
      break
    end
    table.insert(out, ch)
    used = used + w
  end
  return table.concat(out) .. '…'
end

-- A line is made of pieces joined once at the end (each `a .. b` would make,
-- and intern, a string of its own, and at 100k lines those strings are what
-- makes LuaJIT's string table grow: a stall of its own). add puts s after the
-- n pieces (len bytes) so far, its highlight in hls with a group, and returns
-- the new n and len: kept in locals, not in a table's fields (LuaJIT 2.1.0-
-- beta3, Neovim 0.7's, now and then lost an update of such a field in the
-- compiled code: highlights a line's label long too early).
local function add(parts, hls, n, len, s, group)
  if group then
    hls[#hls + 1] = { group, len, len + #s }
  end
  parts[n + 1] = s
  return n + 1, len + #s
end

local function add_marks(parts, hls, n, len, marks)
  for _, m in ipairs(marks or {}) do
    n, len = add(parts, hls, n, len, m[1], m[2])
    n, len = add(parts, hls, n, len, ' ')
  end
  return n, len
end

local INDENT = {}
for d = 0, 8 do
  INDENT[d] = string.rep('  ', d)
end
local function indent_of(depth)
  return INDENT[depth] or string.rep('  ', depth)
end

-- One line for a node: { text, hls }.
function M.node_line(node, depth, now)
  local icons = opts().icons
  local c, h
  local marks, msig = marks_of(node)
  if node.type == 'more' then
    local indent = indent_of(depth)
    local text = string.format('%s  … %d more', indent, node.count)
    return { text = text, hls = { { 'ShelfHint', #indent + 2, #text } } }
  end
  if node.type == 'item' then
    c = cached(node)
    h = hint(node, now)
    local kept = c.line
    if kept and kept.depth == depth and kept.hint == h and kept.icons == icons and kept.temporary == node.temporary
      and kept.label == node.label and kept.marks == msig and kept.width == state.width then
      return kept
    end
  end
  local indent = indent_of(depth)
  local parts, hls, n, len = { indent }, {}, 1, #indent
  if node.type == 'item' then
    local icon = node.temporary and icons.temporary or icons[node.kind] or '-'
    n, len = add(parts, hls, n, len, '  ')
    n, len = add(parts, hls, n, len, icon .. ' ', 'ShelfMarker')
    n, len = add_marks(parts, hls, n, len, marks)
    n, len = add(parts, hls, n, len, node.label,
      node.temporary and 'ShelfTemporary' or (node.kind == 'prompt' and 'ShelfPrompt' or 'ShelfBlock'))
    -- The hint where the window ends: cut, with '…' to say so.
    local cells = depth * 2 + 2 + short_width(icon) + 1 + label_width(node)
    for _, m in ipairs(marks or {}) do
      cells = cells + strwidth(m[1]) + 1
    end
    local shown = h and (state.width and fit(h, state.width - cells - 2) or h)
    if shown then
      n, len = add(parts, hls, n, len, '  ')
      add(parts, hls, n, len, shown, 'ShelfHint')
    end
    c.line = { text = table.concat(parts), hls = hls, depth = depth, hint = h, icons = icons,
      temporary = node.temporary, label = node.label, marks = msig, width = state.width }
    return c.line
  end
  n, len = add(parts, hls, n, len, not S.closed(node) and '▾ ' or '▸ ', 'ShelfMarker')
  if node.type == 'section' then
    n, len = add_marks(parts, hls, n, len, marks)
    n, len = add(parts, hls, n, len, node.label, 'ShelfSection')
  elseif node.type == 'unsorted' then
    n, len = add(parts, hls, n, len, icons.unsorted .. ' ', 'ShelfMarker')
    n, len = add_marks(parts, hls, n, len, marks)
    n, len = add(parts, hls, n, len, node.label, 'ShelfUnsorted')
  else
    n, len = add(parts, hls, n, len, display.icon(node.item.icon) .. ' ')
    n, len = add_marks(parts, hls, n, len, marks)
    n, len = add(parts, hls, n, len, node.label, 'ShelfFolder')
  end
  n, len = add(parts, hls, n, len, ' ')
  -- While filtering: how many of the items inside match.
  local count = state.hit_counts and (state.hit_counts[node] or 0) or node.count
  add(parts, hls, n, len, '(' .. count .. ')', 'ShelfCount')
  return { text = table.concat(parts), hls = hls }
end

--- Every line, the header's then the tree's, and the rows. Closed folders
--- draw one line, open ones at most S.limit(node) children and a '… N more'
--- line: what is drawn is what can be seen, whatever the library's size.
--- `t`: the tree to draw (tree.build's; nil: built from the mirror now).
--- Also what patch.lua needs: the tree, its index, and the time (os.time)
--- when the age in some hint shown changes. With `pause` (inside a
--- coroutine), the lines are made a slice at a time: it yields whenever
--- pause() says so.
function M.build(pause, t)
  local lines, rows = {}, {}
  local made = 0
  local now = os.time()
  local stale_at = math.huge
  local tick = pause and function()
    if pause() then
      coroutine.yield()
    end
  end
  local inside
  local function walk(node, depth, parent)
    if not M.node_visible(node) then
      return
    end
    if pause then
      made = made + 1
      if made % EVERY == 0 and pause() then
        coroutine.yield()
      end
    end
    table.insert(lines, M.node_line(node, depth, now))
    rows[#lines] = { node = node, depth = depth, parent = parent }
    node.line = #lines -- a hint for line_of
    if node.type == 'item' then
      local c = cached(node)
      if c.t and c.hint_hi and c.t + c.hint_hi < stale_at then
        stale_at = c.t + c.hint_hi
      end
      return
    end
    if S.closed(node) then
      return
    end
    local kids = inside and filtered_children(node, inside) or tree.children(node, tick)
    local limit = S.limit(node)
    if state.focus and #kids > limit then
      -- The node the cursor goes to shows, with the page it is on.
      for i = limit + 1, #kids do
        if kids[i].key == state.focus then
          limit = math.ceil(i / S.PAGE) * S.PAGE
          state.limits[node.key] = limit
          break
        end
      end
    end
    for i = 1, math.min(#kids, limit) do
      walk(kids[i], depth + 1, node)
    end
    if #kids > limit then
      local more = more_node(node, kids, limit)
      table.insert(lines, M.node_line(more, depth + 1, now))
      rows[#lines] = { node = more, depth = depth + 1, parent = node }
    end
  end
  if not t then
    local folder_changes = state.folder_changes
    t = tree.build(tick, opts().fold_above)
    t.folder_changes = folder_changes
  end
  if state.focus and not state.hits then
    -- The node the cursor goes to shows: the folders above it open.
    local kind, id = state.focus:match('^(%a+):(.+)$')
    local node = t.index[state.focus]
    local it = not node and (kind == 'prompt' or kind == 'block') and mirror.item(kind, id)
    local p = node and node.parent or (it and tree.place(t, kind, it))
    while p do
      if S.closed(p) then
        state.collapsed[p.key] = false
      end
      p = p.parent
    end
  end
  state.hit_counts, state.hit_shows = nil, nil
  if state.hits then
    local counts
    counts, inside = filter_counts(t, tick)
    state.hit_shows = filter_shows(t, counts, tick)
    state.hit_counts = counts
  end
  -- The header after the hits are worked out: it says how many folders match.
  for _, h in ipairs(M.header()) do
    table.insert(lines, h)
  end
  for _, section in ipairs(t.sections) do
    walk(section, 0, nil)
  end
  return lines, rows, { tree = t, index = t.index, stale_at = stale_at }
end

return M
