-- shelf.tree: the folder tree built from the mirror's summaries, as the
-- knowledge tab shows it: prompts under their prompt folders, context blocks
-- under their dataset folders, items without a folder under "Unsorted", and
-- temporary blocks apart. Pure data; the tab renders it. A folder's items
-- get nodes (and a sort) only when the tab first shows it open.
local display = require('shelf.display')
local mirror = require('shelf.mirror')
local EVERY = require('shelf.slices').EVERY

local M = {}

---@class shelf.Node
---@field key string stable across refreshes: 'section:prompt', 'project:<id>', 'prompt:<id>', ...
---@field type 'section'|'folder'|'unsorted'|'item'
---@field kind string 'prompt'|'block'|'project' for items and folders; the item kind a section holds
---@field id string|nil
---@field item table|nil the summary
---@field label string
---@field children shelf.Node[]|nil folders, then items, in order: made by M.children when first needed
---@field subs shelf.Node[] folders only: its folders, in order
---@field nitems integer folders only: how many items it holds itself
---@field count integer items inside, all levels down
---@field big boolean|nil folders only: the library is over tab.fold_above (tab/state.lua)
---@field temporary boolean|nil true for the Temporary section and its blocks

-- Folder type -> the item kind it holds, and back.
M.holds = { prompts = 'prompt', datasets = 'block' }
M.folder_type = { prompt = 'prompts', block = 'datasets' }

-- The order of a node among its siblings: folders first, then items, each by
-- lowered name, then id. Kept as fields, not joined into one string: 100k
-- such strings are what makes LuaJIT's string table grow during a render
-- (a stall of its own), and the merge sort below compares fields as fast.
local function set_order(node)
  node.rank = node.type ~= 'item' and 0 or 1
  node.low = node.label:lower()
  node.order = true
end

-- True when a comes before b.
local function by_order(a, b)
  if a.rank ~= b.rank then
    return a.rank < b.rank
  end
  if a.low ~= b.low then
    return a.low < b.low
  end
  return (a.id or '') < (b.id or '')
end

-- Past this many nodes the sort is a merge sort in plain Lua: table.sort
-- calls its comparator from C (LuaJIT compiles neither) and takes 0.25 s for
-- 100k nodes in one go; the merge sort is compiled, several times faster,
-- and lets tick() yield between steps.
local MERGE_MIN = 2048

-- Sorts nodes by order (a stable merge sort).
-- tick() is called every few hundred steps (see M.build).
local function merge_sort(nodes, tick)
  local n = #nodes
  local run = 16
  local src, dst = nodes, {}
  -- Runs of 16 by insertion, then merged in pairs until one is left.
  for lo = 1, n, run do
    for i = lo + 1, math.min(lo + run - 1, n) do
      local node = src[i]
      local j = i - 1
      while j >= lo and by_order(node, src[j]) do
        src[j + 1] = src[j]
        j = j - 1
      end
      src[j + 1] = node
    end
    if lo % 512 == 1 then
      tick()
    end
  end
  while run < n do
    local k, next_tick = 0, 512
    for lo = 1, n, 2 * run do
      local mid, hi = math.min(lo + run, n + 1), math.min(lo + 2 * run, n + 1)
      local i, j = lo, mid
      local a, b = src[i], src[j]
      while i < mid and j < hi do
        k = k + 1
        if by_order(b, a) then
          dst[k] = b
          j = j + 1
          b = src[j]
        else
          dst[k] = a
          i = i + 1
          a = src[i]
        end
        if k >= next_tick then
          tick()
          next_tick = k + 512
        end
      end
      while i < mid do
        k = k + 1
        dst[k] = src[i]
        i = i + 1
      end
      while j < hi do
        k = k + 1
        dst[k] = src[j]
        j = j + 1
      end
    end
    src, dst = dst, src
    run = run * 2
    tick()
  end
  if src ~= nodes then
    for i = 1, n do
      nodes[i] = src[i]
    end
  end
end

local function sort(nodes, tick)
  for _, n in ipairs(nodes) do
    if not n.order then
      set_order(n)
    end
  end
  if #nodes >= MERGE_MIN then
    return merge_sort(nodes, tick or function() end)
  end
  table.sort(nodes, by_order)
end

-- An item's node, made when its folder's children are first needed (see
-- M.children): a tree of 100k items holds nodes only for the folders that
-- were opened, not one for every item.
local function item_node(kind, item)
  -- One line, whatever another client wrote (tab lines, sort order). Most
  -- titles are short printable ASCII with nothing to trim: as they are
  -- (what display.title gives them), without its walk over each character.
  local title, label = item.title, nil
  if type(title) == 'string' and #title <= display.max.label and (title:byte(1) or 0) > 32
    and title:byte(-1) > 32 and not title:find('[^\32-\126]') then
    label = title
  else
    label = display.title(title, display.max.label)
  end
  local node = { key = kind .. ':' .. item.id, type = 'item', kind = kind, id = item.id, item = item,
    label = label, count = 0, temporary = item.temporary or nil }
  set_order(node)
  return node
end

--- Folders just deleted whose content's deletes are still on the way: the
--- schema deletes a folder's content with it, and shelfd learns of those
--- rows a moment later. Meanwhile their subfolders and items are left out of
--- the tree instead of shown at the top or under Unsorted. Project id ->
--- true; the tab fills it and empties it once shelfd is idle.
M.gone = {}
--- The folders left out by the last M.build: the gone ones and all inside.
M.hidden = {}

-- The folders M.gone leaves out: each gone one and every folder inside it.
local function hidden_folders(projects)
  local hidden = {}
  if next(M.gone) == nil then
    return hidden
  end
  local by_id = {}
  for _, p in ipairs(projects) do
    by_id[p.id] = p
  end
  for id in pairs(M.gone) do
    hidden[id] = true
  end
  for _, p in ipairs(projects) do
    local pid, seen = p.parent_id, {}
    while pid and not seen[pid] do
      if M.gone[pid] then
        hidden[p.id] = true
        break
      end
      seen[pid] = true
      pid = by_id[pid] and by_id[pid].parent_id
    end
  end
  return hidden
end

-- Links each node below a section to its parent, indexes it by key and
-- counts the items below every folder.
local function count(node, index, big)
  index[node.key] = node
  node.big = big
  local n = node.nitems
  for _, c in ipairs(node.subs) do
    c.parent = node
    n = n + count(c, index, big)
  end
  node.count = n
  return n
end

---@class shelf.Tree
---@field sections shelf.Node[] Prompts, Context blocks and (when there are any) Temporary
---@field index table<string, shelf.Node> every folder by key; items once their folder's children were made
---@field hidden table<string, true> the folders left out (M.gone and all inside)

-- A folder-like node: `subs` (its folders, in order), `nitems` (how many
-- items it holds itself); `children` (subs, then item nodes in order) is
-- made when first needed.
local function container(t, fields)
  fields.subs, fields.nitems, fields.count, fields.tree = {}, 0, 0, t
  return fields
end

--- Where a summary of `kind` goes in a built tree: its folder, Unsorted or
--- Temporary; nil when it has no place (its folder was just deleted).
---@param t shelf.Tree
function M.place(t, kind, item)
  local index = t.index
  if item.temporary then
    return index['section:temporary']
  end
  local pid = item.project_id
  if pid and t.hidden[pid] then
    return nil
  end
  local f = pid and index['project:' .. pid]
  if f and f.item.type == M.folder_type[kind] then
    return f
  end
  return index['unsorted:' .. kind]
end

-- Each folder summary's label and its lowered form: a build takes a few
-- thousand folders' names as they were (a folder changed is a new summary).
-- Weak keys: summaries shelfd replaced go; a few thousand entries at most.
local names = setmetatable({}, { __mode = 'k' })

--- Build the tree: the sections (Prompts, Context blocks and, when there
--- are any, Temporary), each folder with its count of items, all levels
--- down. No item gets a node here: M.children makes a folder's when it is
--- drawn open, so a build is a count of the items and a sort of the
--- folders. Each node has its `parent` (nil for sections), and `big` when
--- the library holds more than `fold_above` items (then folders start
--- closed, see tab/state.lua). With `tick` (a sliced render, see
--- tab/init.lua), tick() is called every few hundred steps and may yield
--- the coroutine this runs in.
---@param tick fun()|nil
---@param fold_above integer|nil
---@return shelf.Tree
function M.build(tick, fold_above)
  local projects = mirror.items('project', tick)
  local hidden = hidden_folders(projects)
  M.hidden = hidden
  local t = { sections = {}, index = {}, hidden = hidden }
  local folders = {}
  -- Thousands of folders: a sliced render yields between them too (with the
  -- garbage of a library just replaced to collect, a pass takes 40-70 ms;
  -- right after a load each new table carries some of the collector's
  -- work: the 2,500 folders' summaries took 24 ms in one go at 100k).
  local function step(i)
    if tick and i % EVERY == 0 then
      tick()
    end
  end
  for i, p in ipairs(projects) do
    step(i)
    local named = names[p]
    if not named then
      named = { label = display.title(p.name, display.max.label, display.unnamed) }
      named.low = named.label:lower()
      names[p] = named
    end
    folders[p.id] = container(t, { key = 'project:' .. p.id, type = 'folder', kind = 'project', id = p.id, item = p,
      label = named.label, rank = 0, low = named.low, order = true })
  end
  local temporary = container(t, { key = 'section:temporary', type = 'section', kind = 'block', label = 'Temporary',
    temporary = true })
  local total = 0
  for _, kind in ipairs({ 'prompt', 'block' }) do
    local ftype = M.folder_type[kind]
    local section = container(t, { key = 'section:' .. kind, type = 'section', kind = kind,
      label = kind == 'prompt' and 'Prompts' or 'Context blocks' })
    local unsorted = container(t, { key = 'unsorted:' .. kind, type = 'unsorted', kind = kind, label = 'Unsorted' })
    -- Folders of this type under their parents (or the section).
    for i, p in ipairs(projects) do
      step(i)
      if p.type == ftype and not hidden[p.id] then
        local parent = p.parent_id and folders[p.parent_id]
        if parent and parent.item.type == ftype and not M.is_inside(p.id, p.parent_id) then
          table.insert(parent.subs, folders[p.id])
        else
          table.insert(section.subs, folders[p.id])
        end
      end
    end
    -- Each folder's items, from the counts the mirror keeps: no pass over
    -- every item.
    local i = 0
    for pid, n in pairs(mirror.counts[kind] or {}) do
      i = i + n
      if pid == mirror.TEMP then
        temporary.nitems = temporary.nitems + n
      elseif not (pid ~= '' and hidden[pid]) then
        -- (else in a folder just deleted: its own delete is on the way)
        local folder = pid ~= '' and folders[pid]
        local c = (folder and folder.item.type == ftype) and folder or unsorted
        c.nitems = c.nitems + n
      end
    end
    total = total + i
    sort(section.subs, tick)
    -- Unsorted goes last, after the folders.
    if unsorted.nitems > 0 then
      table.insert(section.subs, unsorted)
    end
    table.insert(t.sections, section)
  end
  if temporary.nitems > 0 then
    table.insert(t.sections, temporary)
  end
  for _, f in pairs(folders) do
    if #f.subs > 1 then
      sort(f.subs, tick)
    end
  end
  local big = total > (fold_above or math.huge)
  for _, s in ipairs(t.sections) do
    s.parent = nil
    count(s, t.index, big)
  end
  return t
end

--- The children of a folder, section, Unsorted or Temporary in order: its
--- folders, then its items, whose nodes are made (and indexed) the first
--- time: a pass over the items of its kind, and a sort (for a folder of
--- 100k items, a while: once, when it is first shown open; M.put keeps the
--- order after that). Only for a tree that took every change so far.
---@param tick fun()|nil as for M.build
function M.children(node, tick)
  local kids = node.children
  if kids then
    return kids
  end
  if node.type == 'item' then
    return {}
  end
  local t = node.tree
  if node.type ~= 'section' or node.temporary then
    t.items_made = true -- (M.recount cannot count these in)
  end
  local items = {}
  local function add(kind, it)
    local n = item_node(kind, it)
    n.parent = node
    items[#items + 1] = n
  end
  if node.nitems > 0 then
    if node.key == 'section:temporary' then
      -- The few temporary items, not a pass over every block.
      for id in pairs(mirror.temp_ids) do
        local it = mirror.item('block', id)
        if it then
          add('block', it)
        end
      end
    else
      local kind = node.type == 'folder' and M.holds[node.item.type] or node.kind
      -- Its items are those whose folder is it (a folder), or none of this
      -- tree's folders of their type (Unsorted): M.place without making a
      -- key for each item.
      local own = node.type == 'folder' and node.id
      local folders = {}
      if not own then
        local ftype = M.folder_type[kind]
        for _, f in pairs(t.index) do
          if f.type == 'folder' and f.item.type == ftype then
            folders[f.id] = true
          end
        end
      end
      local hidden = t.hidden
      local i = 0
      local temporary, folder_of = mirror.column(kind, 'temporary'), mirror.column(kind, 'project_id')
      for row in mirror.rows(kind) do
        i = i + 1
        if tick and i % 1024 == 0 then
          tick()
          -- (A field no item had gets its array when an item with it comes.)
          temporary, folder_of = mirror.column(kind, 'temporary'), mirror.column(kind, 'project_id')
        end
        if not temporary[row] then
          local pid = folder_of[row]
          if own then
            if pid == own then
              add(kind, mirror.item_at(kind, row))
            end
          elseif not (pid and (folders[pid] or hidden[pid])) then
            add(kind, mirror.item_at(kind, row))
          end
        end
      end
    end
  end
  sort(items, tick)
  -- Indexed once all are made (a sliced render may be left half way).
  kids = {}
  for i, c in ipairs(node.subs) do
    kids[i] = c
  end
  for _, n in ipairs(items) do
    kids[#kids + 1] = n
    t.index[n.key] = n
  end
  node.children = kids
  return kids
end

--- The item node of a summary (a new one: the tree keeps the nodes it made).
M.item_node = item_node
--- Sort nodes in the tree's order (folders, then items, by name, then id).
M.sort = sort

-- The first position in a sorted child list of a node after `node`.
local function upper_bound(children, node)
  local lo, hi = 1, #children + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if not by_order(node, children[mid]) then
      lo = mid + 1
    else
      hi = mid
    end
  end
  return lo
end

-- Add `by` to the counts of a node and the folders above it.
local function recount(node, by)
  local p = node
  while p do
    p.count = p.count + by
    p = p.parent
  end
end

--- Take item `id` out of folder `from` of a built tree (and out of its
--- children, when made); the counts above it drop. Returns its node, if it
--- had one.
---@param t shelf.Tree
function M.take(t, from, kind, id)
  from.nitems = from.nitems - 1
  recount(from, -1)
  local key = kind .. ':' .. id
  local node = t.index[key]
  local kids = from.children
  if node and kids then
    local i = upper_bound(kids, node) - 1
    if kids[i] ~= node then
      i = nil
      for j, c in ipairs(kids) do
        if c == node then
          i = j
          break
        end
      end
    end
    if i then
      table.remove(kids, i)
    end
  end
  t.index[key] = nil
  return node
end

--- Count the items of a built tree anew from the mirror's counts, when
--- only items came since it was built (a first load's parts, drawn as they
--- come): its folders stay, no new tree (1.6 MiB of garbage at 100k items).
--- False, changing nothing, when that cannot show them: an item's place is
--- not in the tree (Unsorted or Temporary, left out while empty), or some
--- container's items have nodes.
---@param t shelf.Tree
---@param fold_above integer|nil
function M.recount(t, fold_above)
  if t.items_made then
    return false
  end
  local index, nitems, total = t.index, {}, 0
  for _, kind in ipairs({ 'prompt', 'block' }) do
    local ftype = M.folder_type[kind]
    for pid, n in pairs(mirror.counts[kind] or {}) do
      total = total + n
      local c = false
      if pid == mirror.TEMP then
        c = index['section:temporary']
      elseif not (pid ~= '' and t.hidden[pid]) then
        local folder = pid ~= '' and index['project:' .. pid]
        c = (folder and folder.item.type == ftype) and folder or index['unsorted:' .. kind]
      end
      if c == nil then
        return false
      elseif c then
        nitems[c] = (nitems[c] or 0) + n
      end
    end
  end
  for _, node in pairs(index) do
    node.nitems = nitems[node] or 0
  end
  local big = total > (fold_above or math.huge)
  for _, s in ipairs(t.sections) do
    count(s, index, big)
  end
  return true
end

--- Put an item in folder `to` of a built tree; the counts above it grow.
--- When the folder's children are made, the item gets a node among them,
--- in order: returns it and its position among the children.
---@param t shelf.Tree
function M.put(t, to, kind, item)
  to.nitems = to.nitems + 1
  recount(to, 1)
  local kids = to.children
  if not kids then
    return nil
  end
  local node = item_node(kind, item)
  local i = upper_bound(kids, node)
  table.insert(kids, i, node)
  node.parent = to
  t.index[node.key] = node
  return node, i
end

--- True when folder `id` is `ancestor` or lies somewhere below it (guards
--- against parent cycles too).
function M.is_inside(ancestor, id)
  local seen = {}
  while id and not seen[id] do
    if id == ancestor then
      return true
    end
    seen[id] = true
    local p = mirror.item('project', id)
    id = p and p.parent_id
  end
  return false
end

-- A folder's names from the top down, as shown (display.title), or nil.
local function folder_names(id)
  local names, seen = {}, {}
  while id and not seen[id] do
    seen[id] = true
    local p = mirror.item('project', id)
    if not p then
      break
    end
    table.insert(names, 1, display.title(p.name, display.max.label, display.unnamed))
    id = p.parent_id
  end
  return #names > 0 and names or nil
end

--- 'Code / Review' for a folder id, or nil.
function M.folder_path(id)
  local names = folder_names(id)
  return names and table.concat(names, ' / ')
end

-- A path as written in an edit header split into its names: '/' separates
-- levels, '\/' is a slash inside a name. Each name trimmed and lowered.
local function split_path(text)
  local parts, cur = {}, {}
  local i = 1
  while i <= #text do
    local c = text:sub(i, i)
    if c == '\\' and text:sub(i + 1, i + 1) == '/' then
      table.insert(cur, '/')
      i = i + 2
    else
      if c == '/' then
        table.insert(parts, vim.trim(table.concat(cur)):lower())
        cur = {}
      else
        table.insert(cur, c)
      end
      i = i + 1
    end
  end
  table.insert(parts, vim.trim(table.concat(cur)):lower())
  return parts
end

local function same_names(names, parts)
  if #names ~= #parts then
    return false
  end
  for i, n in ipairs(names) do
    if vim.trim(n):lower() ~= parts[i] then
      return false
    end
  end
  return true
end

local function escape_name(name)
  return (name:gsub('/', '\\/'))
end

--- How an edit header names a folder: its path with each '/' inside a name
--- written '\/' ('Code / CI\/CD'), or 'id:' and the start of its id when
--- another folder of its type has the same path.
function M.folder_ref(id)
  local names = folder_names(id)
  if not names then
    return nil
  end
  local p = mirror.item('project', id)
  local ref = table.concat(vim.tbl_map(escape_name, names), ' / ')
  local parts = split_path(ref)
  for _, other in ipairs(mirror.items('project')) do
    if other.id ~= id and other.type == p.type and same_names(folder_names(other.id) or {}, parts) then
      return 'id:' .. require('shelf.ids').short('project', id)
    end
  end
  return ref
end

-- The words of a message about a folder type.
local function type_name(ftype)
  return ftype == 'prompts' and 'prompt' or 'context block'
end

--- The folder of a type that `text` names in an edit header, or nil and
--- why: its path ('Code / Review', '\/' for a slash in a name), just its
--- name when that is unique, or 'id:' and its id (or the id's start).
function M.find_folder(text, ftype)
  text = vim.trim(text)
  local by_id = text:match('^id:%s*(%S+)$')
  if by_id then
    local id = require('shelf.ids').resolve('project', by_id)
    local p = id and mirror.item('project', id)
    if p and p.type == ftype then
      return p
    end
  end
  local parts = split_path(text)
  -- A name with a slash written as it is ('CI/CD'): matched whole when
  -- nothing else is.
  local function norm(s)
    return vim.trim(s):gsub('%s*/%s*', ' / '):lower()
  end
  local whole = norm((text:gsub('\\/', '/')))
  local by_path, by_name, by_whole = {}, {}, {}
  for _, p in ipairs(mirror.items('project')) do
    if p.type == ftype then
      if same_names(folder_names(p.id) or {}, parts) then
        table.insert(by_path, p)
      end
      if #parts == 1 and display.title(p.name, display.max.label, display.unnamed):lower() == parts[1] then
        table.insert(by_name, p)
      end
      if norm(display.title(p.name, display.max.label, display.unnamed)) == whole then
        table.insert(by_whole, p)
      end
    end
  end
  local found = #by_path > 0 and by_path or (#by_name > 0 and by_name or by_whole)
  if #found == 1 then
    return found[1]
  end
  if #found > 1 then
    local which = {}
    for _, p in ipairs(found) do
      table.insert(which, string.format('%s (id:%s)', M.folder_path(p.id) or '?',
        require('shelf.ids').short('project', p.id)))
    end
    table.sort(which)
    return nil, string.format("several %s folders are called '%s': %s; write the whole path, or 'id:' and the "
      .. 'start of the id of the one you mean', type_name(ftype), text, table.concat(which, ', '))
  end
  if by_id then
    return nil, string.format("there is no %s folder with the id '%s'", type_name(ftype), by_id)
  end
  return nil, string.format("there is no %s folder '%s'", type_name(ftype), text)
end

--- All folder paths of a type, sorted (completion, messages, pickers).
function M.folder_paths(ftype)
  local out = {}
  for _, p in ipairs(mirror.items('project')) do
    if p.type == ftype then
      table.insert(out, { path = M.folder_path(p.id) or display.title(p.name, display.max.label, display.unnamed),
        item = p })
    end
  end
  table.sort(out, function(a, b)
    return a.path:lower() < b.path:lower()
  end)
  return out
end

--- What goes with a folder when it is deleted: { folders = n, items = n,
--- kind = 'prompt'|'block', ids = {item ids} } counting every level below it.
function M.contents(id)
  local p = mirror.item('project', id)
  local kind = p and M.holds[p.type] or 'block'
  local inside = {}
  for _, p in ipairs(mirror.items('project')) do
    if p.id ~= id and M.is_inside(id, p.id) then
      inside[p.id] = true
    end
  end
  local nfolders = vim.tbl_count(inside)
  inside[id] = true
  local ids = {}
  -- Read in place: no list of the whole library made for it.
  local folder_of = mirror.column(kind, 'project_id')
  for row in mirror.rows(kind) do
    local pid = folder_of[row]
    if pid and inside[pid] then
      table.insert(ids, mirror.id_at(kind, row))
    end
  end
  return { folders = nfolders, items = #ids, kind = kind, ids = ids }
end

return M
