-- Bulk changes made elsewhere: another program importing or deleting many
-- rows reaches the mirror and the tab as a few pushes, applied in slices
-- (the editor stays responsive between them), with one redraw at the end;
-- pushes after a big one wait for it, in order.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local tab = require('shelf.tab')

local function sqlite(db, sql)
  local out = vim.fn.system({ 'sqlite3', db, sql })
  T.eq(0, vim.v.shell_error, 'sqlite3: ' .. out)
  return vim.trim(out)
end

-- Count the `changed` pushes shelfd sends from now on.
local pushes = 0
local receive = client._receive
client._receive = function(event, payload)
  if event == 'changed' then
    pushes = pushes + 1
  end
  return receive(event, payload)
end

-- The items the tab counts once it is at rest (nil while a redraw is under
-- way): what its section lines say. A library this big shows its folders
-- closed, one line each with its count (:help shelf-tab-big).
local function tab_items(st)
  if st.dirty or st.building or #st.pending > 0 then
    return nil
  end
  local n = 0
  for _, row in pairs(st.rows) do
    if row.node.type == 'section' then
      n = n + row.node.count
    end
  end
  return n
end

-- The lines a full render in one go makes of the mirror as it is (made
-- apart: the buffer is what is checked against them).
-- A `changed` push handed to the client as if shelfd sent it, applied.
local push_version = 3000
local function push_change(kind, upserted, deleted)
  push_version = push_version + 1
  local version = push_version
  client._receive('changed', { kind = kind, version = version, upserted = upserted, deleted = deleted or {} })
  T.wait(function()
    return mirror.last_change and mirror.last_change.version == version and not mirror.applying()
  end, 'push ' .. version .. ' applied')
end

local function fresh_render()
  local lines = require('shelf.tab.render').build()
  return vim.tbl_map(function(l) return l.text end, lines)
end

T.test('20k rows imported and deleted by sqlite3 reach the tab in a few pushes and one redraw each', function()
  U.clean()
  local db = T.fresh()
  tab.open()
  local st = tab._state()
  T.wait(function() return not st.dirty end, 'the tab drawn')
  pushes = 0
  local full0 = st.stats.full
  sqlite(db, [[WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000)
    INSERT INTO prompts (id, title, content, tags, created_at, updated_at)
    SELECT printf('%08x-0000-4000-8000-%012x', i, i), 'bulk ' || i, '', '[]', 'a', 'a' FROM c]])
  T.wait(function() return mirror.count('prompt') == 20000 end, 'the mirror holds them', 60000)
  T.wait(function() return tab_items(st) == 20000 end, 'the tab shows them', 60000)
  T.ok(pushes <= 50, 'pushes of hundreds of rows, not one per row: ' .. pushes)
  T.ok(st.stats.full - full0 <= 2, 'one redraw, not one per push: ' .. (st.stats.full - full0))
  -- That redraw made its lines in slices: they are what a render in one go makes.
  T.wait(function() return st.building == nil end, 'the redraw finished')
  T.ok(U.find('▸ … Unsorted (20000)', st.buf), 'Unsorted closed, with its count: '
    .. vim.inspect(vim.api.nvim_buf_get_lines(st.buf, 0, 8, false)))
  T.ok(vim.api.nvim_buf_line_count(st.buf) < 20, 'a line for it, none for each item')
  -- Opened: the first page of its items in order, and a line for the rest.
  U.cursor_to('Unsorted (20000)')
  U.keys('o')
  -- (Its 20000 items are sorted a slice at a time: the editor goes on.)
  T.eq(true, st.building ~= nil, 'opening it is a sliced render')
  T.wait(function() return st.building == nil and U.find('▾ … Unsorted (20000)', st.buf) ~= nil end, 'it opened')
  local drawn = vim.api.nvim_buf_get_lines(st.buf, 0, -1, false)
  -- In order: by title, lowered, then id (the tree's merge sort past 2048).
  local shown, want = {}, mirror.items('prompt')
  for l = 1, #drawn do
    if st.rows[l] and st.rows[l].node.type == 'item' then
      shown[#shown + 1] = st.rows[l].node.id
    end
  end
  table.sort(want, function(a, b)
    if a.title:lower() ~= b.title:lower() then
      return a.title:lower() < b.title:lower()
    end
    return a.id < b.id
  end)
  local page = require('shelf.tab.state').PAGE
  T.eq(vim.tbl_map(function(p) return p.id end, vim.list_slice(want, 1, page)), shown, 'the first items in order')
  local last = 0
  for l = 1, #drawn do
    last = (st.rows[l] and st.rows[l].node.type == 'item') and l or last
  end
  T.eq('      … ' .. (20000 - page) .. ' more', drawn[last + 1], 'then how many more')
  local again = fresh_render()
  T.eq(#again, #drawn, 'as many lines as a full render')
  for i = 1, #again do
    if drawn[i] ~= again[i] then
      T.eq(again[i], drawn[i], 'line ' .. i .. ' as a full render draws it')
    end
  end
  pushes = 0
  full0 = st.stats.full
  local one = want[1]
  T.ok(require('shelf.tab.render').cache_of(st.built.index['prompt:' .. one.id]) ~= nil,
    'its line is kept while it is shown')
  sqlite(db, "DELETE FROM prompts WHERE title LIKE 'bulk %'")
  T.wait(function() return mirror.count('prompt') == 0 end, 'the mirror lets them go', 60000)
  T.wait(function() return tab_items(st) == 0 end, 'the tab too', 60000)
  -- What the tab kept for them goes with them.
  T.eq(nil, st.built.index['prompt:' .. one.id], 'a deleted item\'s node is forgotten')
  T.ok(pushes <= 50, 'pushes of hundreds of rows: ' .. pushes)
  T.ok(st.stats.full - full0 <= 2, 'one redraw: ' .. (st.stats.full - full0))
  tab.close()
end)

T.test('a few hundred rows changed elsewhere in a library past the sliced draw are drawn in slices', function()
  -- A thousand items drawn open took about 10 ms at once: a frame on a busy machine.
  U.clean()
  local db = T.fresh()
  sqlite(db, [[WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 400)
    INSERT INTO prompts (id, title, content, tags, created_at, updated_at)
    SELECT printf('%08x-0000-4000-8000-%012x', i, i), 'row ' || i, '', '[]', 'a', 'a' FROM c]])
  tab.open()
  local st = tab._state()
  T.wait(function() return tab_items(st) == 400 end, 'the tab counts the 400 items', 30000)
  local sliced, full = st.stats.sliced, st.stats.full
  local render = require('shelf.tab.render')
  local before = {}
  for key, node in pairs(st.built.index) do
    before[key] = render.cache_of(node)
  end
  sqlite(db, [[UPDATE prompts SET title = title || ' changed' WHERE rowid % 2 = 0]])
  T.wait(function()
    return tab_items(st) == 400 and U.find('row 10 changed', st.buf) ~= nil
  end, 'the changed titles shown', 30000)
  T.ok(st.stats.sliced > sliced, 'drawn in slices')
  T.eq(full + 1, st.stats.full, 'and set in the buffer once, at the end')
  T.eq(fresh_render(), vim.api.nvim_buf_get_lines(st.buf, 0, -1, false), 'the lines, as a full render of the mirror')
  -- The new tree's nodes took over what was worked out for the items that
  -- did not change, and only for those.
  local kept, made = 0, 0
  for key, node in pairs(st.built.index) do
    local c = render.cache_of(node)
    if c and before[key] then
      if node.item.title:find('changed$') then
        T.ok(c ~= before[key], 'a changed item worked out again: ' .. key)
        made = made + 1
      elseif c == before[key] then
        kept = kept + 1
      end
    end
  end
  T.ok(made > 0 and kept > 0, string.format('items of both kinds drawn (%d changed, %d kept)', made, kept))
end)

T.test('a bulk import comes in parts, taken a few at a time; a change made meanwhile is not lost', function()
  U.clean()
  local db = T.fresh()
  tab.open()
  local st = tab._state()
  T.wait(function() return not st.dirty end, 'the tab drawn')
  -- Parts received and taken (the 'taken' shelfd waits for, see client.lua).
  local received, taken, most_ahead = 0, 0, 0
  local notify = vim.rpcnotify
  vim.rpcnotify = function(chan, method, ...)
    if method == 'taken' then
      taken = taken + 1
    end
    return notify(chan, method, ...)
  end
  local edit
  local receive_ = client._receive
  client._receive = function(event, payload)
    if event == 'changed' then
      received = received + 1
      most_ahead = math.max(most_ahead, received - taken)
      if received == 3 and not edit then
        -- Another change elsewhere while the parts are on their way.
        edit = vim.fn.jobstart({ 'sqlite3', db, "UPDATE prompts SET title = 'renamed meanwhile', "
          .. "updated_at = 'b' WHERE id = '00000002-0000-4000-8000-000000000002'; "
          .. "DELETE FROM prompts WHERE id = '00000003-0000-4000-8000-000000000003';" })
      end
    end
    return receive_(event, payload)
  end
  local ok, err = pcall(function()
    sqlite(db, [[WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000)
      INSERT INTO prompts (id, title, content, tags, created_at, updated_at)
      SELECT printf('%08x-0000-4000-8000-%012x', i, i), 'part ' || i, '', '[]', 'a', 'a' FROM c]])
    T.wait(function() return edit and vim.fn.jobwait({ edit }, 0)[1] ~= -1 end, 'the change meanwhile made', 60000)
    T.wait(function()
      local p = mirror.item('prompt', '00000002-0000-4000-8000-000000000002')
      return mirror.count('prompt') == 19999 and p and p.title == 'renamed meanwhile'
    end, 'the mirror holds the parts and the change', 60000)
    T.eq(nil, mirror.item('prompt', '00000003-0000-4000-8000-000000000003'), 'the row deleted meanwhile')
    T.wait(function() return tab_items(st) == 19999 end, 'the tab shows them', 60000)
  end)
  client._receive = receive_
  vim.rpcnotify = notify
  assert(ok, err)
  T.ok(received >= 40, 'the load came in parts: ' .. received)
  T.ok(most_ahead <= 3, 'at most 2 parts ahead of the one applied: ' .. most_ahead)
  -- What the parts made is what shelfd holds, and the tab a fresh render.
  T.wait(function() return (client.status().counts or {}).prompt == 19999 end, 'shelfd counts the same')
  local drawn = vim.api.nvim_buf_get_lines(st.buf, 0, -1, false)
  T.ok(vim.deep_equal(fresh_render(), drawn), 'the lines a fresh render draws')
  -- The changed item is last in order: revealed, its page shows.
  tab.reveal('prompt:00000002-0000-4000-8000-000000000002') -- drawn in slices at this size
  T.wait(function() return U.cursor_line():find('renamed meanwhile', 1, true) end,
    'the change shown in the tab, the cursor on it')
  tab.close()
end)

T.test('a big push is applied in slices; what comes after it waits, in order', function()
  U.clean()
  T.fresh()
  mirror._set_slice_ns(0) -- 512 items a slice, whatever the machine's speed
  local items = {}
  for i = 1, 5000 do
    items[i] = { id = string.format('%08x-1111-4111-8111-%012x', i, i), kind = 'prompt', title = 'slice ' .. i,
      tags = {}, updated_at = '2026-01-01T00:00:00+00:00' }
  end
  local changes = {}
  local au = vim.api.nvim_create_autocmd('User', { pattern = 'ShelfChanged', callback = function()
    local c = mirror.last_change
    table.insert(changes, { up = #c.upserted, del = #c.deleted, applying = mirror.applying() })
  end })
  client._receive('changed', { kind = 'prompt', version = 1000, upserted = items, deleted = {}, more = true })
  client._receive('changed', { kind = 'prompt', version = 1001, upserted = {}, deleted = { items[1].id },
    more = false })
  T.ok(mirror.count('prompt') < 5000, 'not all at once: ' .. mirror.count('prompt'))
  T.eq(true, mirror.applying(), 'applying')
  T.wait(function() return not mirror.applying() end, 'all applied')
  vim.api.nvim_del_autocmd(au)
  mirror._set_slice_ns(require('shelf.slices').SLICE_NS)
  T.eq(4999, mirror.count('prompt'), 'the delete came after the upserts')
  T.eq(nil, mirror.item('prompt', items[1].id), 'and took effect')
  -- Items with the same tags share one value of the tags column (no table
  -- each); their summaries give the list.
  local tags = mirror.column('prompt', 'tags')
  local r2, r3 = mirror.row('prompt', items[2].id), mirror.row('prompt', items[3].id)
  T.eq('string', type(tags[r2]), 'tags kept as one string')
  T.ok(tags[r2] == tags[r3], 'the same for the same tags')
  local p2, p3 = mirror.item('prompt', items[2].id), mirror.item('prompt', items[3].id)
  T.eq({}, p2.tags, 'the list in the summary')
  T.ok(p2.tags == p3.tags, 'one list for the same tags')
  T.ok(#changes >= 10, 'one ShelfChanged per slice: ' .. #changes)
  local total = 0
  for _, c in ipairs(changes) do
    total = total + c.up
    T.ok(c.up <= 512, 'a slice of at most 512: ' .. c.up)
  end
  T.eq(5000, total, 'every upsert told once')
  T.eq(false, changes[#changes].applying, 'the last one says it is over')
  T.eq(true, changes[1].applying, 'the first says more is coming')
end)

T.test('a big first load is drawn as it is read: folders closed, loading, then every item', function()
  U.clean()
  local db = T.fresh()
  client._stop_and_wait(10000)
  -- 200 folders with 30k prompts in them, written while no shelfd runs.
  sqlite(db, [[WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200)
    INSERT INTO prompt_projects (id, name, created_at, updated_at)
    SELECT printf('f0000000-0000-4000-8000-%012d', i), printf('Folder %03d', i), 'a', 'a' FROM c;
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 30000)
    INSERT INTO prompts (id, title, content, tags, project_id, created_at, updated_at)
    SELECT printf('%08x-0000-4000-8000-%012x', i, i), 'loaded ' || i, '', '[]',
      printf('f0000000-0000-4000-8000-%012d', 1 + i % 200), 'a', 'a' FROM c]])
  T.eq(0, mirror.count('prompt'), 'nothing shown before the load')
  local slices = require('shelf.slices')
  T.wait(function() return not slices.collecting() end, 'no collection of an earlier library under way')
  local steps = slices.gc_stats.steps
  tab.open() -- starts shelfd
  local buf = vim.fn.bufnr('shelf://knowledge')
  local early
  local st = tab._state()
  local pending_max, ids_held = 0, 0
  T.wait(function()
    if client.status().ready then
      return true
    end
    -- The parts waiting for the next draw are one entry, with no lists of
    -- ids: those kept the load's garbage alive.
    pending_max = math.max(pending_max, #st.pending)
    for _, c in ipairs(st.pending) do
      ids_held = ids_held + #c.upserted + #c.deleted
    end
    local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
    local folder = lines[4] or ''
    if not early and folder:find('Folder 001', 1, true) then
      early = { header = lines[1], folder = folder, items = mirror.count('prompt') }
    end
  end, 'the load', 60000)
  T.ok(early, 'the tab showed the folders before the load was over')
  T.ok(early.items < 30000, 'drawn with part of the library: ' .. early.items)
  T.ok(early.header:find('loading, %d+ in'), 'the header said loading, and how far: ' .. early.header)
  T.ok(early.folder:find('▸', 1, true), 'the folder drawn closed, as it stays: ' .. early.folder)
  -- Its garbage collected as it came, not left to pile up.
  T.ok(slices.gc_stats.steps > steps, 'the load paid the collector')
  T.eq(1, pending_max, 'one entry waited for the next draw')
  T.eq(0, ids_held, 'the parts waiting held no ids')
  T.ok(st.stats.recounted > 0, 'a draw after the first counted the tree drawn anew, not a new tree')
  T.wait(function() return tab_items(st) == 30000 end, 'the tab counts every item', 30000)
  T.eq(fresh_render(), vim.api.nvim_buf_get_lines(buf, 0, -1, false), 'the lines, as a full render of the mirror')
end)

T.test('after a load the collector keeps its own pace again (it was driven by the load)', function()
  local slices = require('shelf.slices')
  T.wait(function() return not slices.collecting() end, 'the load collected', 30000)
  -- 5M small tables of garbage (over 150 MB): a collector left stopped
  -- would keep them all.
  local base, peak = collectgarbage('count'), 0
  local keep = {}
  for i = 1, 5e6 do
    keep[i % 8] = { i }
    if i % 4096 == 0 then
      peak = math.max(peak, collectgarbage('count'))
    end
  end
  T.ok(peak - base < 100 * 1024, string.format('the heap grew %.0f MB only', (peak - base) / 1024))
end)

T.test('a restart in a big library draws the library it loaded in slices, not in one go', function()
  -- The new library replaces the old at once (a new tree of every folder:
  -- 40-70 ms at 100k items in one go, with the old one's garbage to collect).
  local st = tab._state()
  T.wait(function() return tab_items(st) == 30000 end, 'the library of the test before')
  T.eq(true, tab_items(st) > 300, 'a library past the sliced draw')
  local sliced, full = st.stats.sliced, st.stats.full
  local slices = require('shelf.slices')
  local old = setmetatable({ mirror.library }, { __mode = 'v' })
  local runs = slices.gc_stats.runs
  client.restart()
  T.wait(function() return client.status().ready == true and not mirror.applying() end, 'the new load', 60000)
  T.wait(function() return tab_items(st) == 30000 end, 'the tab drawn again', 30000)
  T.ok(st.stats.sliced > sliced, 'the new library drawn in slices')
  T.eq(full + 1, st.stats.full, 'and set in the buffer once, at the end')
  -- The library replaced is collected a slice at a time, not left to the
  -- bursts of the next allocations.
  T.eq(runs + 1, slices.gc_stats.runs, 'a collection started')
  T.wait(function() return not slices.collecting() end, 'the collection', 30000)
  T.eq(nil, old[1], 'the replaced library collected')
  local buf = vim.fn.bufnr('shelf://knowledge')
  T.eq(fresh_render(), vim.api.nvim_buf_get_lines(buf, 0, -1, false), 'the lines, as a full render of the mirror')
end)

T.test('the mirror finds every id as pushed: UUIDs that share a key, other text, in any order of deletes', function()
  U.clean()
  T.fresh()
  local uuid = require('shelf.uuid')
  local function push(upserted, deleted)
    push_change('block', upserted, deleted)
  end
  -- Three UUIDs of one key: random first digits until three meet.
  local same
  local by_key = {}
  math.randomseed(7)
  while not same do
    local a = math.floor(math.random() * 2 ^ 48)
    local k = uuid.key(a, 0x422282220000, 9)
    by_key[k] = by_key[k] or {}
    table.insert(by_key[k], uuid.text(a, 0x422282220000, 9))
    if #by_key[k] == 3 then
      same = by_key[k]
    end
  end
  T.eq(uuid.key(uuid.parts(same[1])), uuid.key(uuid.parts(same[3])), 'one key')
  local other = { 'AAAAAAAA-2222-4222-8222-000000000009', 'plain id', 'aaaaaaaa-2222-4222-8222-00000000000' }
  local all = vim.list_extend(vim.list_extend({}, same), other)
  local list = {}
  for i, id in ipairs(all) do
    list[i] = { id = id, kind = 'block', title = 'title ' .. i }
  end
  push(list)
  local function check(want)
    local seen = {}
    for row in mirror.rows('block') do
      local id = mirror.id_at('block', row)
      seen[#seen + 1] = id
      T.eq(row, mirror.row('block', id), 'the row of ' .. id)
      T.eq(id, mirror.item_at('block', row).id, 'the summary of row ' .. row)
    end
    table.sort(seen)
    local sorted = vim.list_extend({}, want)
    table.sort(sorted)
    T.eq(sorted, seen, 'every id, once')
    T.eq(#want, mirror.count('block'), 'counted')
    for i, id in ipairs(all) do
      local item = mirror.item('block', id)
      if vim.tbl_contains(want, id) then
        T.eq({ id, 'title ' .. i }, { item and item.id, item and item.title }, id)
      else
        T.eq(nil, item, id .. ' deleted')
      end
    end
  end
  check(all)
  -- The middle of a chain, then its newest, then the rest.
  push({}, { same[2] })
  check({ same[1], same[3], other[1], other[2], other[3] })
  push({}, { same[3], other[2] })
  check({ same[1], other[1], other[3] })
  push({ { id = same[2], kind = 'block', title = 'title 2' } }, { same[1] })
  check({ same[2], other[1], other[3] })
  push({}, { same[2], other[1], other[3] })
  check({})
  T.eq(nil, mirror.item('block', 'aaaaaaaa-2222-4222-8222-00000000000a'), 'an id never pushed')
  -- Ids as people write them: as long as tells them apart, read back.
  local twins = { 'abcdef12-3456-4000-8000-000000000001', 'abcdef12-3456-4000-8000-000000000002',
    'abcdef13-3456-4000-8000-000000000001', 'abcdef12-plain' }
  push(vim.tbl_map(function(id) return { id = id, kind = 'block', title = 'x' } end, twins))
  local ids = require('shelf.ids')
  T.eq(twins[1], ids.short('block', twins[1]), 'a twin to its last digit')
  T.eq('abcdef13', ids.short('block', twins[3]), 'apart within the first 8')
  T.eq('abcdef12-p', ids.short('block', twins[4]), 'other text beside UUIDs')
  T.eq(twins[3], ids.resolve('block', 'ABCDEF13'), 'a prefix, case ignored')
  T.eq({ nil, 'several' }, { ids.resolve('block', 'abcdef12') }, 'a prefix of several')
  T.eq(twins[2], ids.resolve('block', twins[2]:sub(1, 35) .. '2'), 'a whole id')
  T.eq(twins[4], ids.resolve('block', 'abcdef12-p'), 'other text, by its start')
  T.eq({ nil, 'none' }, { ids.resolve('block', 'abcdef14') }, 'none')
end)

T.test('the mirror holds each item as last pushed: a field an update drops is gone, a freed row is taken clean',
  function()
  U.clean()
  T.fresh()
  local function push(upserted, deleted)
    push_change('prompt', upserted, deleted)
  end
  local a, b, c = 'aaaaaaaa-2222-4222-8222-000000000001', 'aaaaaaaa-2222-4222-8222-000000000002',
    'aaaaaaaa-2222-4222-8222-000000000003'
  push({
    { id = a, kind = 'prompt', title = 'first', tags = { 'x' }, project_id = 'folder', updated_at = 1 },
    { id = b, kind = 'prompt', title = 'second', tags = {}, updated_at = 2 },
  })
  local function field(id, key)
    return mirror.column('prompt', key)[mirror.row('prompt', id)]
  end
  T.eq({ 'first', 'folder' }, { field(a, 'title'), field(a, 'project_id') }, 'as pushed')
  push({ { id = a, kind = 'prompt', title = 'first again', tags = {}, updated_at = 3 } })
  T.eq({ 'first again', nil }, { field(a, 'title'), field(a, 'project_id') }, 'the update dropped its folder')
  T.eq({ 2, nil }, { mirror.counts.prompt[''], mirror.counts.prompt.folder }, 'counted as in no folder')
  local row_a = mirror.row('prompt', a)
  push({}, { a })
  T.eq(nil, mirror.row('prompt', a), 'deleted')
  push({ { id = c, kind = 'prompt', title = 'third' } })
  T.eq(row_a, mirror.row('prompt', c), 'the freed row is taken again')
  T.eq({ 'third', nil, nil, nil }, { field(c, 'title'), field(c, 'project_id'), field(c, 'tags'), field(c, 'updated_at') },
    'with none of the fields of the item that had it')
  collectgarbage()
  collectgarbage()
  T.eq({ id = c, kind = 'prompt', title = 'third' }, mirror.item('prompt', c), 'its summary, made from the columns')
  local held = mirror.item('prompt', b)
  collectgarbage()
  T.ok(held == mirror.item('prompt', b), 'one table while it is held')
  T.eq(2, mirror.count('prompt'), 'two left')
  -- As shelfd sends them: one array per field, vim.NIL where a row has none.
  push({ n = 2, id = { b, c }, title = { 'second again', vim.NIL }, project_id = { 'folder', vim.NIL } })
  T.eq({ 'second again', 'folder', nil }, { field(b, 'title'), field(b, 'project_id'), field(b, 'updated_at') },
    'a row of columns')
  T.eq({ nil, nil }, { field(c, 'title'), field(c, 'project_id') }, 'vim.NIL is no value')
  T.ok(held ~= mirror.item('prompt', b) and mirror.item('prompt', b).title == 'second again', 'its summary made anew')
  T.eq({ 1, 1 }, { mirror.counts.prompt[''], mirror.counts.prompt.folder }, 'counted where it now is')
  -- Tags: a list of strings is kept as one string, and given back as the list;
  -- whatever else another client wrote comes back as it was sent.
  local sent = {
    { 'x' }, { 'a', 'b c', 'ü' }, {}, 'solo', { '', 'a' }, { 1, 'a' }, '\0odd', { k = 'v' },
  }
  for i, tags in ipairs(sent) do
    push({ { id = b, kind = 'prompt', title = 'tagged', tags = tags } })
    local want = tags == '\0odd' and { '\0odd' } or tags
    T.eq(want, mirror.item('prompt', b).tags, 'tags ' .. vim.inspect(tags))
  end
  push({ { id = b, kind = 'prompt', title = 'tagged', tags = { 'a', 'b c', 'ü' } } })
  T.eq('\0a\0b c\0ü', field(b, 'tags'), 'a list of strings is one string in the column')
end)

T.test('a tree counted anew from the mirror shows the items that came, or says it cannot', function()
  U.clean()
  T.fresh()
  local tree = require('shelf.tree')
  local folder = 'f1000000-0000-4000-8000-000000000001'
  local n = 0
  local function prompts(k, pid)
    local list = {}
    for _ = 1, k do
      n = n + 1
      list[#list + 1] = { id = string.format('c1000000-0000-4000-8000-%012d', n), kind = 'prompt',
        title = 'p' .. n, project_id = pid }
    end
    return list
  end
  push_change('project', { { id = folder, kind = 'project', type = 'prompts', name = 'Folder' } })
  push_change('prompt', prompts(3, folder))
  local t = tree.build(nil, 0)
  local f, section = t.index['project:' .. folder], t.index['section:prompt']
  T.eq({ 3, 3 }, { f.count, section.count }, 'built')
  push_change('prompt', prompts(4, folder))
  T.eq(true, tree.recount(t, 0), 'items in a folder it has')
  T.eq({ 7, 7, 7 }, { f.nitems, f.count, section.count }, 'counted anew')
  -- No Unsorted was drawn (it was empty): an item in no folder needs a new tree.
  push_change('prompt', prompts(1, nil))
  T.eq(false, tree.recount(t, 0), 'an item whose place the tree lacks')
  T.eq({ 7, 7 }, { f.count, section.count }, 'nothing changed')
  t = tree.build(nil, 0)
  T.eq(8, t.index['section:prompt'].count, 'a new tree has it')
  T.eq(true, tree.recount(t, 0), 'counted anew with Unsorted in it')
  -- A folder whose items have nodes: those would be missing.
  tree.children(t.index['project:' .. folder])
  push_change('prompt', prompts(1, folder))
  T.eq(false, tree.recount(t, 0), 'a folder whose items have nodes')
end)

T.test("a load brings every item's tags as written, whatever another client wrote", function()
  U.clean()
  local db = T.fresh()
  client._stop_and_wait(10000)
  -- shelfd sends a load's tags packed (csrc/cols.c): each of these comes back as written.
  local written = {
    { '["x","y"]', { 'x', 'y' } }, { '[]', {} }, { '"solo"', 'solo' }, { '["","a"]', { '', 'a' } },
    { '[1,"a"]', { 1, 'a' } }, { '["ü","b c"]', { 'ü', 'b c' } },
  }
  local values = {}
  for i, w in ipairs(written) do
    values[i] = string.format("('%08d-0000-4000-8000-000000000000', 't%d', '', '%s', 'a', 'a')", i, i, w[1])
  end
  sqlite(db, 'INSERT INTO prompts (id, title, content, tags, created_at, updated_at) VALUES '
    .. table.concat(values, ', '))
  client.start()
  T.wait(function() return client.status().ready == true and not mirror.applying() end, 'the load', 30000)
  for i, w in ipairs(written) do
    T.eq(w[2], mirror.item('prompt', string.format('%08d-0000-4000-8000-000000000000', i)).tags, 'tags ' .. w[1])
  end
end)

T.test('the folders of a sliced tree build are listed with pauses, not in one go', function()
  U.clean()
  T.fresh()
  local folders = {}
  for i = 1, 100 do
    folders[i] = { id = string.format('f2000000-0000-4000-8000-%012d', i), kind = 'project', type = 'prompts',
      name = 'F' .. i }
  end
  push_change('project', folders)
  local ticks = 0
  T.eq(100, #mirror.items('project', function() ticks = ticks + 1 end), 'every folder')
  local every = require('shelf.slices').EVERY
  T.ok(every > 1 and every <= 32, 'a pause every few folders: ' .. every)
  T.eq(math.floor(100 / every), ticks, 'a pause every ' .. every)
  -- (After a load, each new table carries some of the collector's work: a
  -- build that made its folders' summaries in one go held the loop 24 ms.)
  ticks = 0
  require('shelf.tree').build(function() ticks = ticks + 1 end, 0)
  T.ok(ticks >= 2 * math.floor(100 / every), 'the build paused while listing and while making its folders: ' .. ticks)
end)

T.test('sliced jobs share one budget per turn of the loop, each getting a tenth of its own at least', function()
  local slices = require('shelf.slices')
  local hrtime = (vim.uv or vim.loop).hrtime
  -- No other sliced job under way (the earlier tests' collection, a draw):
  -- its slice in this turn would take its share first.
  local st = tab._state()
  T.wait(function() return not slices.collecting() and not st.building and not mirror.applying() end,
    'no sliced job under way', 30000)
  vim.wait(5, function() return false end) -- a new turn
  local t1 = hrtime()
  local d1 = slices.deadline(slices.SLICE_NS)
  T.ok(d1 - t1 >= slices.SLICE_NS, 'the first slice of a turn gets its whole budget')
  local spin = t1 + 3e6 -- that slice ran 3 ms
  while hrtime() < spin do
  end
  -- Its own budget would give it 2 ms from now; shared, what is left of
  -- the turn (1 ms; a tenth of its own had the turn been spent).
  local t2 = hrtime()
  local d2 = slices.deadline(2e6)
  T.ok(d2 - t2 < 1.5e6, string.format('the next one gets what the turn has left: %.2f ms', (d2 - t2) / 1e6))
  vim.wait(5, function() return false end)
  local t3 = hrtime()
  T.ok(slices.deadline(2e6) - t3 >= 2e6, 'a later turn begins afresh')
end)

T.test('an array made for rows up to a power of two is doubled at once when most of it is set, never when few are',
  function()
  -- What is measured: the heap grows when the array part does. The collector
  -- is stopped meanwhile, so only what is allocated counts.
  collectgarbage('collect')
  collectgarbage('stop')
  local dense = {}
  for r = 1, 7000 do
    dense[r] = r
  end
  local before = collectgarbage('count')
  mirror._double(dense, 8192, 7000)
  local grew = collectgarbage('count') - before
  T.ok(grew >= 60, 'doubled: 8192 more slots of 8 bytes, KiB allocated: ' .. grew)
  before = collectgarbage('count')
  for r = 7001, 16384 do
    dense[r] = r
  end
  T.ok(collectgarbage('count') - before < 1, 'rows up to 16384 then need nothing more')
  local sparse = {}
  for r = 1, 7000, 100 do
    sparse[r] = r
  end
  before = collectgarbage('count')
  mirror._double(sparse, 8192, 7000)
  T.ok(collectgarbage('count') - before < 8, 'a sparse one is left as it is')
  for r = 1, 8193 do
    T.eq(r % 100 == 1 and r <= 7000 and r or nil, sparse[r], 'row ' .. r .. ' as it was')
  end
  collectgarbage('restart')
end)

T.test("a store's arrays double a few a slice ahead of its rows, and rows past them wait until all have", function()
  U.clean()
  T.fresh()
  mirror._set_slice_ns(0) -- one array a slice, whatever the machine's speed
  local seen = {}
  local au = vim.api.nvim_create_autocmd('User', { pattern = 'ShelfChanged', callback = function()
    table.insert(seen, mirror._growth('block'))
  end })
  local cap = mirror._growth('block').cap
  local items = {}
  for i = 1, cap + 600 do
    items[i] = { id = string.format('%08x-2222-4222-8222-%012x', i, i), title = 'grow ' .. i, project_id = 'p',
      tags = {}, updated_at = 5 }
  end
  for from = 1, #items, 500 do
    push_change('block', vim.list_slice(items, from, from + 499))
  end
  vim.api.nvim_del_autocmd(au)
  mirror._set_slice_ns(require('shelf.slices').SLICE_NS)
  local waited = 0
  for _, g in ipairs(seen) do
    if g.waiting > 0 then
      waited = waited + 1
      T.ok(g.top <= cap, 'no row past the arrays while some wait: ' .. vim.inspect(g))
    end
  end
  -- ida, idb, idc and the fields title, project_id, tags, updated_at: one a slice.
  T.ok(waited >= 5, 'doubled over several slices, not in one: ' .. waited)
  local last = mirror._growth('block')
  T.eq(2 * cap, last.cap, 'all doubled')
  T.eq(cap + 600, last.top, 'every row in')
  for _, i in ipairs({ 1, cap, cap + 1, cap + 600 }) do
    T.eq('grow ' .. i, mirror.item('block', items[i].id).title, 'item ' .. i)
  end
end)

T.test('ids pushed as the parts of a UUID are the same items as their text; parts out of range are no item', function()
  U.clean()
  T.fresh()
  local uuid = require('shelf.uuid')
  local ids = { '0123abcd-ef01-4234-9567-89abcdef0123', '00000000-0000-4000-8000-000000000001' }
  local cols = { n = 5, ida = {}, idb = {}, idc = {}, id = { vim.NIL, vim.NIL, 'plain-id', vim.NIL, vim.NIL },
    title = { 'first', 'second', 'plain', 'too big', 'not whole' }, temporary = { vim.NIL, true } }
  for i, id in ipairs(ids) do
    cols.ida[i], cols.idb[i], cols.idc[i] = uuid.parts(id)
  end
  cols.ida[3], cols.idb[3], cols.idc[3] = vim.NIL, vim.NIL, vim.NIL
  cols.ida[4], cols.idb[4], cols.idc[4] = 2 ^ 48, 1, 1
  cols.ida[5], cols.idb[5], cols.idc[5] = 1, 1.5, 1
  push_change('block', cols)
  T.eq('first', mirror.item('block', ids[1]).title, 'found by its text')
  T.eq('second', mirror.item('block', ids[2]).title, 'a temporary one too')
  T.eq('plain', mirror.item('block', 'plain-id').title, 'an id that is no UUID, as text')
  T.eq(3, mirror.count('block'), 'the rows whose parts are no UUID are no item')
  T.eq({ ids[1], ids[2], 'plain-id' }, mirror.last_change.upserted, 'the change names them by their text')
  T.eq(true, mirror.temp_ids[ids[2]], 'the temporary one is known by its text')
  T.eq(1, mirror.counts.block[mirror.TEMP], 'and counted where temporary blocks are')
  -- A folder's id is kept as its text, however it came.
  local fa, fb, fc = uuid.parts(ids[1])
  push_change('project', { n = 1, ida = { fa }, idb = { fb }, idc = { fc }, name = { 'Folder' } })
  T.eq('Folder', mirror.item('project', ids[1]).name, 'a folder pushed so')
  -- Deleted by the text of the id.
  push_change('block', { n = 0 }, { ids[2] })
  T.eq(nil, mirror.item('block', ids[2]), 'deleted')
  T.eq(nil, mirror.temp_ids[ids[2]], 'no longer a temporary one')
end)
