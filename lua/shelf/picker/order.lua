-- shelf.picker.order: the items of some kinds in picker order (folder path,
-- items without a folder last, then title, then id), kept in step with the
-- mirror. Sorting 100k summaries takes a second of Lua, so a list once asked
-- for is kept (the summaries the mirror made for it, shared): a
-- change of a few items moves only those, a bigger one (a folder renamed, a
-- bulk import elsewhere, a new shelfd) sorts it again in short slices while
-- the editor goes on.
local display = require('shelf.display')
local mirror = require('shelf.mirror')
local tree = require('shelf.tree')
local ui = require('shelf.ui')

local M = {}

local hrtime = (vim.uv or vim.loop).hrtime
local slices = require('shelf.slices')
local slice_ns = slices.SLICE_NS
-- Below this many items a list is sorted at once: it costs less than a frame.
local small = 2000
-- A change of more items than this sorts the list again instead of moving
-- each (a move shifts the array, and each key costs a folder path).
local few = 32

-- kinds key ('prompt,block') -> { kinds = {..}, items = sorted summaries or
-- nil while stale, job = a sort under way, waiting = callbacks for items }
local lists = {}

--- Tests: how many full sorts ran.
M.sorts = 0

local function place_of(item, paths)
  local id = item.kind == 'project' and item.parent_id or item.project_id
  if item.temporary then
    return 'Temporary'
  elseif type(id) ~= 'string' then
    return ''
  end
  local p = paths and paths[id]
  if p == nil then
    p = tree.folder_path(id) or false
    if paths then
      paths[id] = p
    end
  end
  return p or ''
end

--- Where an item lives, as the picker shows it: 'Code / Review',
--- 'Temporary', or nil.
function M.place(item)
  local p = place_of(item)
  return p ~= '' and p or nil
end

-- An item's place in the order is three parts: a prefix its folder's items
-- share (the folder's path, lowered: items without a folder after), its
-- label compared with case ignored, then its id. No lowered copy of each
-- label is made: 100k new strings pass a size where LuaJIT's string table
-- doubles, a rehash of every string (13-25 ms at 100k items) that no slice
-- can split. ctx: caches for many calls ({} to start).
local function parts(item, ctx)
  local paths, prefixes = ctx.paths, ctx.prefixes
  if not paths then
    paths, prefixes = {}, {}
    ctx.paths, ctx.prefixes = paths, prefixes
  end
  if item.kind == 'project' then
    -- '\1' between names sorts below the end of a path ('\0'): each folder
    -- comes before the folders inside it. (A few thousand strings at most.)
    local pl = place_of(item, paths):lower()
    return '', (pl == '' and '' or (pl:gsub(' / ', '\1') .. '\1')) .. (display.text(item.name) or '')
  end
  local id = not item.temporary and item.project_id
  local pre = type(id) == 'string' and prefixes[id]
  if not pre then
    local pl = place_of(item, paths):lower()
    pre = (pl == '' and '1' or '0') .. pl
    if type(id) == 'string' then
      prefixes[id] = pre
    end
  end
  return pre, ui.label(item, display.max.label)
end

local byte, min = string.byte, math.min

-- a < b as their lowered copies compare (string.lower changes A-Z only).
local function less_ci(a, b)
  for i = 1, min(#a, #b) do
    local x, y = byte(a, i), byte(b, i)
    if x ~= y then
      x = (x >= 65 and x <= 90) and x + 32 or x
      y = (y >= 65 and y <= 90) and y + 32 or y
      if x ~= y then
        return x < y, true
      end
    end
  end
  return #a < #b, #a ~= #b
end

-- Whether the item of parts (pa, la, ia) comes before that of (pb, lb, ib).
local function before(pa, la, ia, pb, lb, ib)
  if pa ~= pb then
    return pa < pb
  end
  if la ~= lb then
    local lt, differ = less_ci(la, lb)
    if differ then
      return lt
    end
  end
  return tostring(ia) < tostring(ib)
end

--- Whether summary a comes before summary b in picker order. ctx: caches
--- for many calls ({} to start).
function M.less(a, b, ctx)
  local pa, la = parts(a, ctx)
  local pb, lb = parts(b, ctx)
  return before(pa, la, a.id, pb, lb, b.id)
end

-- The items to sort, as kinds and rows: their summaries are made in the
-- sort's slices (100k of them at once held the loop 40-75 ms).
local function sources(kinds)
  local src_kind, src_row = {}, {}
  for _, kind in ipairs(kinds) do
    for row in mirror.rows(kind) do
      src_row[#src_row + 1] = row
      src_kind[#src_row] = kind
    end
  end
  return src_kind, src_row
end

-- One sort: keys, then a bottom-up merge sort of indices, both resumable,
-- so a slice can stop anywhere. Returns true when done (l.items set).
local function run(l, deadline)
  local job = l.job
  local src, pre, lab = job.src, job.pre, job.lab
  local n = #job.rows
  while job.i <= n do
    local i = job.i
    -- (A change to these kinds drops the job: every row is still the same item.)
    src[i] = mirror.item_at(job.kinds[i], job.rows[i])
    pre[i], lab[i] = parts(src[i], job.ctx)
    job.a[i] = i
    job.i = i + 1
    if i % 256 == 0 and hrtime() > deadline then
      return false
    end
  end
  local count = 0
  while job.w < n do
    local w, a, b = job.w, job.a, job.b
    while job.lo <= n do
      local lo = job.lo
      local mid, hi = math.min(lo + w - 1, n), math.min(lo + 2 * w - 1, n)
      local i, j, k = job.mi or lo, job.mj or mid + 1, job.mk or lo
      while k <= hi do
        local x, y = a[i], a[j]
        if i <= mid and (j > hi or before(pre[x], lab[x], src[x].id, pre[y], lab[y], src[y].id)) then
          b[k] = a[i]
          i = i + 1
        else
          b[k] = a[j]
          j = j + 1
        end
        k = k + 1
        count = count + 1
        if count % 1024 == 0 and hrtime() > deadline then
          job.mi, job.mj, job.mk = i, j, k
          return false
        end
      end
      job.mi, job.mj, job.mk = nil, nil, nil
      job.lo = lo + 2 * w
    end
    job.a, job.b = b, a
    job.w, job.lo = w * 2, 1
  end
  local items = {}
  for k = 1, n do
    items[k] = src[job.a[k]]
  end
  l.items, l.job = items, nil
  M.sorts = M.sorts + 1
  return true
end

local function finish(l)
  local waiting = l.waiting
  l.waiting = {}
  for _, cb in ipairs(waiting) do
    cb(l.items)
  end
end

local function step(l)
  if not l.job then
    return
  end
  -- A burst of changes still arriving would make this sort stale again.
  if mirror.applying() then
    l.job = nil
    return
  end
  if run(l, slices.deadline(slice_ns)) then
    finish(l)
  else
    -- A timer, not vim.schedule: input and redraws come between slices.
    vim.defer_fn(function() step(l) end, 0)
  end
end

local function start(l)
  l.items = nil
  local kinds, rows = sources(l.kinds)
  l.job = { kinds = kinds, rows = rows, src = {}, pre = {}, lab = {}, ctx = {}, a = {}, b = {}, i = 1, w = 1, lo = 1 }
  if #rows <= small then
    run(l, math.huge)
    finish(l)
  else
    vim.defer_fn(function() step(l) end, 0)
  end
end

--- cb(items) with the summaries of `kinds` in picker order: at once when
--- the list is ready (or small), else once it is sorted. Returns true when
--- cb ran at once.
---@param kinds string[]
function M.get(kinds, cb)
  local name = table.concat(kinds, ',')
  local l = lists[name]
  if not l then
    l = { kinds = kinds, waiting = {} }
    lists[name] = l
  end
  if l.items then
    cb(l.items)
    return true
  end
  table.insert(l.waiting, cb)
  if not l.job then
    start(l)
  end
  return l.items ~= nil
end

-- Binary search of the first position whose item comes after `item`.
local function position(items, item, ctx)
  local lo, hi = 1, #items + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if M.less(items[mid], item, ctx) then
      lo = mid + 1
    else
      hi = mid
    end
  end
  return lo
end

-- Move the changed items of a kept list: out where they were (one pass),
-- in where they now sort.
local function patch(l, change)
  local gone = {}
  for _, id in ipairs(change.deleted) do
    gone[id] = true
  end
  for _, id in ipairs(change.upserted) do
    gone[id] = true
  end
  local items, w = l.items, 0
  for r = 1, #items do
    local it = items[r]
    if not (it.kind == change.kind and gone[it.id]) then
      w = w + 1
      items[w] = it
    end
  end
  for r = #items, w + 1, -1 do
    items[r] = nil
  end
  local ctx = {}
  for _, id in ipairs(change.upserted) do
    local item = mirror.item(change.kind, id)
    if item then
      table.insert(items, position(items, item, ctx), item)
    end
  end
end

local function on_changed()
  local change = mirror.last_change or { reset = true }
  local kind = change.kind
  local n = #(change.upserted or {}) + #(change.deleted or {})
  for _, l in pairs(lists) do
    local holds = kind ~= nil and vim.tbl_contains(l.kinds, kind)
    if change.reset or kind == 'project' or holds then
      -- (A folder's change moves the items inside it: their place changed.)
      if not change.reset and kind ~= 'project' and l.items and n <= few then
        patch(l, change)
      else
        l.items, l.job = nil, nil
      end
    end
    -- Sorted again, in slices, once the burst is over (its last ShelfChanged).
    if not l.items and not l.job and not mirror.applying() then
      start(l)
    end
  end
end

ui.autocmd('User', { pattern = 'ShelfChanged', desc = 'shelf: keep the pickers\' order in step with the library',
  callback = on_changed })

--- Tests: how long one slice may run, in ns.
function M._set_slice_ns(ns)
  slice_ns = ns
end

--- Tests: below how many items a list is sorted at once.
function M._set_small(n)
  small = n
end

--- Tests: forget every kept list.
function M._reset()
  lists = {}
end

return M
