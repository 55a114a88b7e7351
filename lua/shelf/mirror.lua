-- shelf.mirror: the Lua copy of the library, as shelfd pushed it (summaries,
-- no content), and the temporary blocks Neovim keeps for the next shelfd.
-- Views read the library from here; only shelf.client writes to it, through
-- the functions under "For shelf.client" below. It never talks to shelfd.
-- A big `changed` push is applied in slices so typing and redraws go on; a
-- new shelfd's first load is staged and replaces the old copy when ready,
-- unless there is no old copy to show meanwhile: then it comes in as it is
-- read, so views can show the library before all of it is in.
local ui = require('shelf.ui')
local uuid = require('shelf.uuid')
local EVERY = require('shelf.slices').EVERY

local M = {}

local kinds = { block = true, prompt = true, project = true }

-- A kind's items are kept one array per field, a row per item, not a table
-- per item: at 100k items those tables were 27 MiB of Lua heap, the arrays
-- are 8 bytes a field. A summary table is made when one is asked for
-- (M.item) and shared while someone holds it.
--   cols: field -> row -> value (a field no item has reads as an empty
--   array); free: rows to reuse; top: the highest row.
-- The ids of prompts and blocks are no strings here (see shelf.uuid): a
-- UUID is three numbers, in ida, idb, idc; any other id is its string, in
-- sid. A folder's id stays a string: the items' project_id hold it anyway.
--   index: key -> row for ids that are no UUIDs (the id itself);
--   shards: INDEX_SHARDS tables key -> row for UUIDs, the key a number of
--   its digits (rows with the same key chain through `chain`, newest
--   first), in shard key % INDEX_SHARDS + 1. One table of 50k keys doubled
--   in one put (5 ms at 32k keys, twice that at 64k); a shard is a 64th of
--   that, and shards double at different rows.
--   cap: the row past which the arrays double next (see grow_ahead).
local EMPTY = setmetatable({}, { __newindex = function() error('shelf.mirror: a column is read-only') end })
local cols_mt = { __index = function() return EMPTY end }

local INDEX_SHARDS = 64
-- Arrays smaller than this double in well under a millisecond each.
local GROW_FROM = 8192

local function new_store(kind)
  local shards = {}
  for i = 1, INDEX_SHARDS do
    shards[i] = {}
  end
  return { kind = kind, index = {}, shards = shards, chain = {}, ida = {}, idb = {}, idc = {}, sid = {},
    cols = setmetatable({}, cols_mt), free = {}, top = 0, cap = GROW_FROM, made = setmetatable({}, { __mode = 'v' }) }
end

local function shard(s, k)
  return s.shards[k % INDEX_SHARDS + 1]
end

-- Whether store s keeps UUID ids as their parts (folders keep their text:
-- the items' project_id hold it anyway).
local function keeps_parts(s)
  return s.kind ~= 'project'
end

-- The parts of `id` as store s keeps it (nil: as a string).
local function parts(s, id)
  if keeps_parts(s) then
    return uuid.parts(id)
  end
end

-- The row of item `id` in store s, or nil. a, b, c: its parts when the
-- caller has them (then id may be nil).
local function row_of(s, id, a, b, c)
  if not a then
    a, b, c = parts(s, id)
  end
  if not a then
    return type(id) == 'string' and s.index[id] or nil
  end
  local ida, idb, idc, chain = s.ida, s.idb, s.idc, s.chain
  local k = uuid.key(a, b, c)
  local r = shard(s, k)[k]
  while r and not (ida[r] == a and idb[r] == b and idc[r] == c) do
    r = chain[r]
  end
  return r
end

-- The id of row r of store s (a new string for a UUID), or nil: none.
local function id_at(s, r)
  local a = s.ida[r]
  if a then
    return uuid.text(a, s.idb[r], s.idc[r])
  end
  return s.sid[r]
end

-- Row r of store s is item `id` (new in the index); a, b, c as for row_of.
local function index_add(s, id, r, a, b, c)
  if not a then
    a, b, c = parts(s, id)
  end
  if not a then
    s.index[id], s.sid[r] = r, id
    return
  end
  local k = uuid.key(a, b, c)
  local index = shard(s, k)
  s.ida[r], s.idb[r], s.idc[r] = a, b, c
  s.chain[r], index[k] = index[k], r
end

-- Row r of store s is no item now.
local function index_remove(s, r)
  local a = s.ida[r]
  if not a then
    s.index[s.sid[r]], s.sid[r] = nil, nil
    return
  end
  local k, chain = uuid.key(a, s.idb[r], s.idc[r]), s.chain
  local index = shard(s, k)
  local p = index[k]
  if p == r then
    index[k] = chain[r]
  else
    while p and chain[p] ~= r do
      p = chain[p]
    end
    if p then
      chain[p] = chain[r]
    end
  end
  s.ida[r], s.idb[r], s.idc[r], chain[r] = nil, nil, nil, nil
end

-- The summary of row r of store `s`, as shelfd pushed it. id: its id, when
-- the caller has it (else made from the row).
local function summary_at(s, r, id)
  local made = s.made[r]
  if made then
    return made
  end
  local item = { id = id or id_at(s, r), kind = s.kind }
  for key, col in pairs(s.cols) do
    item[key] = col[r]
  end
  if item.tags ~= nil then
    item.tags = M.tags(item.tags)
  end
  s.made[r] = item
  return item
end

-- The summary of item `id` of store `s` (nil: none).
local function summary(s, id)
  local r = row_of(s, id)
  return r and summary_at(s, r, id)
end

-- Items store s holds.
local function held(s)
  return s.top - #s.free
end

-- The tags column keeps a list of tags as one string, each tag after a NUL
-- ('\0' alone: none). Lua keeps one copy of equal strings, so items with the
-- same tags share it, and there is no table per item. shelfd's columns
-- come so already (packed_tags; csrc/cols.c follows the rules here): a
-- first load made no table per item either. Anything else another
-- client wrote (a bare string, a list of other values or with an empty tag)
-- is kept as sent; a bare string that starts with a NUL is kept as the list
-- of it, which every view shows the same way.
local function pack_tags(v)
  if type(v) == 'string' then
    return v:byte(1) == 0 and { v } or v
  elseif type(v) ~= 'table' or getmetatable(v) ~= nil then
    return v
  end
  local n = #v
  if next(v, n > 0 and n or nil) ~= nil then
    return v -- not a plain list
  end
  for i = 1, n do
    local t = v[i]
    if type(t) ~= 'string' or t == '' or t:find('\0', 1, true) then
      return v
    end
  end
  return '\0' .. table.concat(v, '\0', 1, n)
end

-- Lists made of packed tags, by the packed string: summaries with the same
-- tags share one (the picker's 100k summaries, a few thousand lists), and
-- whatever keeps something per list keeps it once. A plain table with a
-- bound, emptied when full: a weak one is swept whole at every collection.
local tag_lists, n_tag_lists, TAG_LISTS_MAX = {}, 0, 4096

--- A value of the tags column (M.column(kind, 'tags')) as shelfd sent it:
--- the packed form as its list (read-only: shared by equal tags). Equal
--- values are equal tags.
function M.tags(v)
  if type(v) ~= 'string' or v:byte(1) ~= 0 then
    return v
  end
  local list = tag_lists[v]
  if list then
    return list
  end
  list = {}
  local at = 2
  while at <= #v do
    local nul = v:find('\0', at, true) or #v + 1
    list[#list + 1] = v:sub(at, nul - 1)
    at = nul + 1
  end
  if n_tag_lists >= TAG_LISTS_MAX then
    tag_lists, n_tag_lists = {}, 0
  end
  tag_lists[v], n_tag_lists = list, n_tag_lists + 1
  return list
end

-- A push's summaries as columns ({ n = rows, field = {..} }): shelfd sends
-- them so (cols.c), with vim.NIL where a row has no such field. A list of
-- summaries (what shelfd sends should they not make columns, and tests)
-- is turned into that form here.
local function as_columns(ups)
  if type(ups) ~= 'table' then
    return { n = 0 }
  elseif type(ups.n) == 'number' then
    return ups
  end
  local cols = { n = #ups }
  for i = 1, cols.n do
    for key, v in pairs(type(ups[i]) == 'table' and ups[i] or {}) do
      local col = cols[key]
      if not col then
        col = {}
        cols[key] = col
      end
      col[i] = v
    end
  end
  return cols
end

-- Not fields of a row: the count, the id (the row's key), the kind (the
-- store's), and shelfd's word that its tags come packed already.
local not_fields = { n = true, id = true, kind = true, packed_tags = true, ida = true, idb = true, idc = true }

-- Put row i of pushed columns `src` as item `id` (or of parts a, b, c) of
-- store `s`, at row `r` (nil: a new item). Returns its row.
local function store_put(s, id, r, src, i, a, b, c)
  local cols = s.cols
  if r then
    -- A field the item no longer has goes.
    for key, col in pairs(cols) do
      if col[r] ~= nil then
        local vals, v = src[key], nil
        if type(vals) == 'table' then
          v = vals[i]
        end
        if v == nil or v == vim.NIL then
          col[r] = nil
        end
      end
    end
  else
    local nfree = #s.free
    if nfree > 0 then
      r, s.free[nfree] = s.free[nfree], nil
    else
      s.top = s.top + 1
      r = s.top
    end
    index_add(s, id, r, a, b, c)
  end
  for key, vals in pairs(src) do
    if not not_fields[key] and type(vals) == 'table' then
      local v = vals[i]
      if v ~= nil and v ~= vim.NIL then
        local col = rawget(cols, key)
        if not col then
          col = {}
          cols[key] = col
        end
        if key == 'tags' and src.packed_tags ~= true then
          v = pack_tags(v)
        end
        col[r] = v
      end
    end
  end
  -- Made again when asked for.
  s.made[r] = nil
  return r
end

-- Row r of store s holds no item now.
local function store_delete(s, r)
  for _, col in pairs(s.cols) do
    col[r] = nil
  end
  index_remove(s, r)
  s.made[r] = nil
  s.free[#s.free + 1] = r
end

--- The library: kind -> its store (above). Replaced whole when a new shelfd
--- finished its first load, so read it through this field each time; read
--- it through the functions below.
M.library = { block = new_store('block'), prompt = new_store('prompt'), project = new_store('project') }
--- How many items each folder holds itself, kept as changes are applied so
--- that views need no pass over every item to count them: kind ('prompt',
--- 'block') -> project id ('' for none, M.TEMP for temporary items) -> n.
--- Replaced with the library: read it through this field each time.
M.counts = { block = {}, prompt = {} }
M.TEMP = '\0temporary'
--- The ids of temporary blocks: block id -> true (few; replaced with the
--- library).
M.temp_ids = {}

-- The counts and temporary ids of each library (M.library, staging).
local extra = setmetatable({}, { __mode = 'k' })
extra[M.library] = { counts = M.counts, temp_ids = M.temp_ids }

local function new_library()
  local lib = { block = new_store('block'), prompt = new_store('prompt'), project = new_store('project') }
  extra[lib] = { counts = { block = {}, prompt = {} }, temp_ids = {} }
  return lib
end

-- Where row r of store s is counted: M.TEMP, its folder's id, '' for none
-- (nil: no row).
local function place_of_row(s, r)
  if not r then
    return nil
  elseif s.cols.temporary[r] then
    return M.TEMP
  end
  return s.cols.project_id[r] or ''
end

-- Count item `id` of `kind` moved in `library`: out of place `was`, into
-- place `now` (nil: none).
local function recount(library, kind, id, was, now)
  local e = extra[library]
  local c = e and e.counts[kind]
  if not c then
    return
  end
  if was then
    local n = (c[was] or 1) - 1
    c[was] = n > 0 and n or nil
    if was == M.TEMP then
      e.temp_ids[id] = nil
    end
  end
  if now then
    c[now] = (c[now] or 0) + 1
    if now == M.TEMP then
      e.temp_ids[id] = true
    end
  end
end

-- Put row i of pushed columns `src` as item `id` of `kind` in `library`
-- (src nil: delete it), its folder's count following: every write of a
-- library goes through here. a, b, c: the id's parts, when pushed so (then
-- id may be nil: its text is made only if a temporary block needs it).
local function put_counted(library, kind, id, src, i, a, b, c)
  local s = library[kind]
  local r = row_of(s, id, a, b, c)
  local was = place_of_row(s, r)
  if src then
    r = store_put(s, id, r, src, i, a, b, c)
  elseif r then
    store_delete(s, r)
    r = nil
  end
  local now = place_of_row(s, r)
  if not id and (was == M.TEMP or now == M.TEMP) then
    id = uuid.text(a, b, c)
  end
  recount(library, kind, id, was, now)
end

--- The last change applied: { kind=, upserted={ids}, deleted={ids}, version=,
--- reset=bool, other=bool (the reset is another database's library) }, for
--- `User ShelfChanged` listeners (0.7 has no autocmd data).
M.last_change = nil
--- Temporary blocks with their content, as shelfd last confirmed them: id ->
--- item. They live in shelfd's memory only, so Neovim keeps this copy and
--- gives them to the next shelfd (:Shelf restart, a crash) for as long as it
--- runs (:help shelf-temporary).
M.temps = {}

local state = {
  staging = nil,       -- a new shelfd's first load, swapped in when ready
  first = false,       -- a first load into an empty library, applied as it comes
  applying = nil,      -- a big `changed` push being applied in slices (see apply_slices)
  more = false,        -- the last `changed` push said more of its burst follow
  other = false,       -- the next library swapped in is another database's (switch_library)
}

-- Change (a last_change table) -> the summaries it replaced. Apart from the
-- change itself: that goes to every listener as autocmd data, copied.
local replaced = setmetatable({}, { __mode = 'k' })

--- The summaries a change replaced: id -> the summary before it, or false
--- (none). nil for a change that did not say (a reset).
function M.replaced(change)
  return replaced[change]
end

local function changed()
  ui.fire('ShelfChanged', function() return M.last_change end)
end

-- The store of `kind` in `library` (M.library when nil), or nil.
local function store(kind, library)
  return (library or M.library)[kind]
end

--- The rows of the items of `kind` in `library` (M.library when nil), for
--- a for loop: `for row in mirror.rows(kind) do`. Read their fields with
--- M.column, their ids with M.id_at (a new string each: not for every row
--- of a big library), their summaries with M.item_at.
function M.rows(kind, library)
  local s = store(kind, library)
  if not s then
    return function() end
  end
  local ida, sid, r = s.ida, s.sid, 0
  return function()
    while r < s.top do
      r = r + 1
      if ida[r] or sid[r] then
        return r
      end
    end
  end
end

--- Summaries of one kind, unordered: a table each, so for the few folders,
--- not for every block (read those through M.rows and M.column).
--- tick(), when given, is called every slices.EVERY (a sliced view
--- may yield there; the collector, behind after a load, takes its share
--- of each new table).
---@param tick fun()|nil
function M.items(kind, tick)
  local out, n = {}, 0
  local s = store(kind)
  for r in M.rows(kind) do
    n = n + 1
    out[n] = summary_at(s, r)
    if tick and n % EVERY == 0 then
      tick()
    end
  end
  return out
end

--- The row of item `id` of `kind` in `library` (M.library when nil), or nil.
function M.row(kind, id, library)
  local s = store(kind, library)
  return s and row_of(s, id)
end

--- The id of the item at `row` (from M.rows) of `kind` in `library`
--- (M.library when nil), or nil.
function M.id_at(kind, row, library)
  local s = store(kind, library)
  return s and id_at(s, row)
end

--- The three numbers of the id at `row` when it is a UUID (shelf.uuid),
--- else nil: comparing them makes no string.
function M.id_parts(kind, row, library)
  local s = store(kind, library)
  local a = s and s.ida[row]
  if a then
    return a, s.idb[row], s.idc[row]
  end
end

--- One field of every item of `kind` in `library` (M.library when nil):
--- row (from M.rows) -> value; read-only.
function M.column(kind, key, library)
  local s = store(kind, library)
  return s and s.cols[key] or EMPTY
end

--- How many items of `kind` the library holds.
function M.count(kind)
  local s = M.library[kind]
  return s and held(s) or 0
end

--- One summary (read-only: the same table while someone holds it), or nil.
function M.item(kind, id, library)
  local s = store(kind, library)
  return s and summary(s, id)
end

--- The summary of the item at `row` (from M.rows), as M.item.
function M.item_at(kind, row, library)
  local s = store(kind, library)
  return s and (s.ida[row] or s.sid[row]) and summary_at(s, row) or nil
end

--- Tests: put `item` (nil: none) as the summary of `id`, counts and all, as
--- if shelfd had pushed it, without telling anyone.
function M._put(kind, id, item)
  put_counted(M.library, kind, id, item and as_columns({ item }), 1)
end

--- True while a big change is being applied in slices, or more pushes of
--- the same burst are on their way: views may wait for the ShelfChanged
--- after which this is false before a full redraw.
function M.applying()
  return state.applying ~= nil or state.more
end

-- A `changed` push is applied for at most this long at a time; a bigger one
-- (an import of 100k rows elsewhere comes as many pushes of 2000 items) goes
-- on in later turns of the loop, so typing and redraws go on meanwhile.
local slice_ns = require('shelf.slices').SLICE_NS

--- Tests: the time budget of one slice, in ns (0: 512 items at a time).
function M._set_slice_ns(ns)
  slice_ns = ns
end

-- Lua doubles a table's array part when the key just past it is set. A
-- store's arrays (the id parts and the fields: a value per row) all did so
-- in the same put: 9 ms for ten arrays at row 32769, twice that at 65537.
-- So as the rows near s.cap, slices double them one at a time, and rows
-- past s.cap wait until all are.

-- Double the array part of t (made for rows up to cap) now, if it is one:
-- its holes up to cap + 1 are set for a moment, and Lua, counting more than
-- cap rows, doubles it. A table with fewer than half its rows set (a field
-- few items have) is not: Lua sizes it by what it holds, not by the rows.
local function double(t, cap, top)
  local n = 0
  for r = 1, top do
    if t[r] ~= nil then
      n = n + 1
    end
  end
  if n <= cap / 2 then
    return
  end
  local holes, nh = {}, 0
  for r = 1, cap + 1 do
    if t[r] == nil then
      nh = nh + 1
      holes[nh] = r
      t[r] = false
    end
  end
  for i = 1, nh do
    t[holes[i]] = nil
  end
end

-- Double store s's arrays ahead of its rows, one at least and more while
-- the slice's time (until `deadline`) lasts. Returns false while some wait
-- to be (rows past s.cap must wait too).
local function grow_ahead(s, deadline)
  local cap = s.cap
  if s.top < cap - cap / 8 then
    return true
  end
  local todo = s.to_double
  if not todo then
    todo = { s.ida, s.idb, s.idc, s.sid }
    for _, col in pairs(s.cols) do
      todo[#todo + 1] = col
    end
    s.to_double = todo
  end
  repeat
    local t = table.remove(todo)
    if t then
      double(t, cap, s.top)
    end
  until #todo == 0 or (vim.uv or vim.loop).hrtime() > deadline
  if #todo > 0 then
    return false
  end
  s.cap, s.to_double = cap * 2, nil
  return true
end

--- Tests: how store `kind` of the shown library grows: its highest row, the
--- row past which its arrays double next, how many wait to be.
function M._growth(kind)
  local s = M.library[kind]
  return { top = s.top, cap = s.cap, waiting = s.to_double and #s.to_double or 0 }
end
M._double = double

-- Value i of a pushed column (nil when the push has no such column).
local function at(col, i)
  return type(col) == 'table' and col[i] or nil
end

-- The id of row i of pushed columns `ups` as store s keeps it: its text
-- (nil for a UUID unless `named`: a staged load needs none) and its parts
-- (nil: s keeps it as text, see parts()). shelfd pushes a UUID as its parts
-- (csrc/cols.h), anything else as text; nothing when neither is valid.
local function pushed_id(s, ups, i, named)
  local a, b, c = at(ups.ida, i), at(ups.idb, i), at(ups.idc, i)
  if not uuid.is_parts(a, b, c) then
    local id = at(ups.id, i)
    return type(id) == 'string' and id or nil
  elseif not keeps_parts(s) then
    return uuid.text(a, b, c)
  end
  return named and uuid.text(a, b, c) or nil, a, b, c
end

-- Apply what is left of a push (job: { payload, up = next upsert, del = next
-- delete }) to a library table until the slice's time is up. Returns the ids
-- applied and whether the push is done. named: the ids applied and the
-- summaries they replaced are wanted (a load that is staged needs neither:
-- no id is made a string then).
local function apply_part(library, job, deadline, named)
  local payload = job.payload
  local kind = payload.kind
  local target = library[kind]
  local grown = grow_ahead(target, deadline - slice_ns / 2)
  local ups = job.columns
  local nups = ups.n
  local dels = type(payload.deleted) == 'table' and payload.deleted or {}
  local up, del, old = {}, {}, {}
  local hrtime = (vim.uv or vim.loop).hrtime
  local i, j = job.up, job.del
  while i <= nups do
    if not grown and target.top >= target.cap then
      break -- the next slice doubles the arrays left first
    end
    local id, a, b, c = pushed_id(target, ups, i, named)
    if id or a then
      if named and old[id] == nil then
        local r = row_of(target, id, a, b, c)
        old[id] = r and summary_at(target, r, id) or false
      end
      put_counted(library, kind, id, ups, i, a, b, c)
      up[#up + 1] = id
    end
    i = i + 1
    if i % 512 == 0 and hrtime() > deadline then
      break
    end
  end
  while i > nups and j <= #dels do
    local id = dels[j]
    if named and old[id] == nil then
      old[id] = summary(target, id) or false
    end
    put_counted(library, kind, id, nil)
    del[#del + 1] = id
    j = j + 1
    if j % 512 == 0 and hrtime() > deadline then
      break
    end
  end
  job.up, job.del = i, j
  return up, del, i > nups and j > #dels, old
end

-- A temporary block deleted, or saved as a real one (same id), is no longer
-- kept for the next shelfd.
local function follow_temps(change)
  if not change or change.kind ~= 'block' then
    return
  end
  for _, id in ipairs(change.deleted) do
    M.temps[id] = nil
  end
  for _, id in ipairs(change.upserted) do
    local row = M.temps[id] and M.row('block', id)
    if row and not M.column('block', 'temporary')[row] then
      M.temps[id] = nil
    end
  end
end

-- Items a load holds before its pushes pay the collector (shelf.slices):
-- a smaller one makes little garbage, and is in sooner without.
local PAY_FROM = 10000

-- Apply a push in slices, one per turn of the loop, until it is done.
local function apply_slices(job)
  if state.applying ~= job then
    return -- shelfd was stopped meanwhile
  end
  local deadline = (vim.uv or vim.loop).hrtime() + slice_ns
  local up, del, done, old = apply_part(state.staging or M.library, job, deadline, not state.staging)
  if done then
    state.applying = nil
  end
  if not state.staging then
    M.last_change = { kind = job.payload.kind, upserted = up, deleted = del, version = job.payload.version }
    replaced[M.last_change] = old
    follow_temps(M.last_change)
    changed()
  end
  local loading = state.staging or (state.first and M.library)
  if loading and held(loading.block) + held(loading.prompt) >= PAY_FROM then
    require('shelf.slices').pay_collector() -- a big load: its garbage comes as fast as it goes on
  end
  if not done then
    -- A timer, not vim.schedule: the loop polls (input, timers, shelfd)
    -- before the next slice runs.
    vim.defer_fn(function() apply_slices(job) end, 0)
  elseif job.when_done then
    job.when_done()
  end
end

-- For shelf.client: what it learns from shelfd and its process.

--- A new shelfd starts: its first load goes to a fresh staging copy while
--- views keep the old one; with nothing to keep, straight in.
function M.begin_load()
  local lib = M.library
  state.first = held(lib.block) + held(lib.prompt) + held(lib.project) == 0
  state.staging = not state.first and new_library() or nil
  state.other = state.other and state.staging ~= nil -- (nothing shown to tell apart)
  state.applying = nil
  state.more = false
end

--- The shelfd whose first load was staged is gone (it did not start, or it
--- ended): no load to swap in.
function M.drop_load()
  state.staging = nil
  state.first = false
end

--- True while a first load goes straight into an empty library: views may
--- show what is in so far (the status says it is loading) instead of
--- waiting for the end of the burst.
function M.first_loading()
  return state.first
end

--- shelfd was stopped: a push under way goes no further.
function M.stop_applying()
  state.applying = nil
  state.more = false
end

--- True while a push is being applied in slices: later pushes must wait
--- (shelf.client keeps them, in order) until when_done of apply() runs.
function M.busy()
  return state.applying ~= nil
end

--- A `changed` push: applied in slices; when_done() runs once all of it is.
function M.apply(payload, when_done)
  if not kinds[payload.kind] then
    return
  end
  state.more = payload.more == true
  state.applying = { payload = payload, columns = as_columns(payload.upserted), up = 1, del = 1,
    when_done = when_done }
  apply_slices(state.applying)
end

--- A `status` push. It ends every burst of changes: nothing more is on its
--- way. A ready one from a new shelfd ends its first load: that library
--- replaces the old.
function M.status_pushed(payload)
  if payload.ready then
    state.first = false
  end
  if not state.first then
    state.more = false -- (a first load is one burst until it is ready)
  end
  if not (state.staging and payload.ready) then
    return
  end
  -- Temporary blocks lived in the old shelfd's memory: those given back to
  -- the new one (M.temps) stay listed while it takes them; one Neovim never
  -- had the content of is lost.
  local lost = {}
  for id in pairs(M.temp_ids) do
    local b = M.item('block', id)
    if b and not row_of(state.staging.block, id) then
      if M.temps[id] then
        put_counted(state.staging, 'block', id, as_columns({ b }), 1)
      else
        table.insert(lost, "'" .. require('shelf.display').title(b.title, 60) .. "'")
      end
    end
  end
  if #lost > 0 then
    table.sort(lost)
    local n = #lost == 1 and '1 temporary block was' or (#lost .. ' temporary blocks were')
    ui.notify_later(string.format(state.other
      and 'another library opened: %s dropped (they belong to the library they were made beside): %s'
      or 'shelfd restarted: %s lost (they lived in its memory only): %s; an open edit buffer keeps its text, '
        .. 'and :w there creates it again', n, table.concat(lost, ', ')), vim.log.levels.WARN)
  end
  M.library = state.staging
  M.counts, M.temp_ids = extra[M.library].counts, extra[M.library].temp_ids
  state.staging = nil
  M.last_change = { reset = true, upserted = {}, deleted = {}, version = payload.version,
    other = state.other or nil }
  state.other = false
  changed()
  -- The library replaced is garbage now.
  require('shelf.slices').collect_garbage()
end

--- An item shelfd confirmed (a `done` push): a temporary block created,
--- changed or given back is kept, with its content, for the next shelfd.
function M.confirmed(item)
  if type(item) == 'table' and item.temporary == true and type(item.id) == 'string'
    and type(item.content) == 'string' then
    M.temps[item.id] = item
  end
end

--- setup() named another database or project: the next shelfd opens
--- another library. Temporary blocks belong to the one they were made
--- beside, so none is given to it, and the library it loads is told as
--- another one (last_change.other), not as everything deleted.
function M.switch_library()
  M.temps = {}
  state.other = true
end

--- A kept temporary block the new shelfd refused: no longer kept, nor
--- listed.
function M.forget_temp(id)
  M.temps[id] = nil
  local shown = M.item('block', id)
  if shown and shown.temporary then
    put_counted(M.library, 'block', id, nil)
    M.last_change = { kind = 'block', upserted = {}, deleted = { id }, version = nil }
    replaced[M.last_change] = { [id] = shown }
    changed()
  end
end

return M
