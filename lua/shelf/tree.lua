-- shelf.tree: the folder tree built from the mirror's summaries, as the
-- knowledge tab shows it: prompts under their prompt folders, context blocks
-- under their dataset folders, items without a folder under "Unsorted", and
-- temporary blocks apart. Pure data; the tab renders it.
local display = require('shelf.display')
local mirror = require('shelf.mirror')

local M = {}

---@class shelf.Node
---@field key string stable across refreshes: 'section:prompt', 'project:<id>', 'prompt:<id>', ...
---@field type 'section'|'folder'|'unsorted'|'item'
---@field kind string 'prompt'|'block'|'project' for items and folders; the item kind a section holds
---@field id string|nil
---@field item table|nil the summary
---@field label string
---@field children shelf.Node[]
---@field count integer items inside, all levels down
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

-- Item nodes by kind and id, each for one summary: shelfd sends a new
-- summary table with every change, and nothing changes a built item node, so
-- a rebuild of 10k items reuses the nodes of the items that did not change.
-- Not weak tables (LuaJIT's collector goes through every entry of those in
-- one atomic step): a deleted item's node goes on its ShelfChanged.
local item_nodes = { prompt = {}, block = {} }
local listening = false

local function forget_deleted()
  local change = mirror.last_change or {}
  if change.reset then
    item_nodes = { prompt = {}, block = {} }
  elseif item_nodes[change.kind] then
    local cache = item_nodes[change.kind]
    for _, id in ipairs(change.deleted or {}) do
      cache[id] = nil
    end
  end
end

local function item_node(kind, item)
  local cache = item_nodes[kind]
  local node = cache and cache[item.id]
  if node and node.item == item then
    return node
  end
  -- One line, whatever another client wrote (tab lines, sort order).
  local label = display.title(item.title, display.max.label)
  node = { key = kind .. ':' .. item.id, type = 'item', kind = kind, id = item.id, item = item,
    label = label, children = {}, count = 0, temporary = item.temporary or nil }
  set_order(node)
  if cache and item.id ~= nil then
    cache[item.id] = node
    if not listening then
      listening = true
      vim.api.nvim_create_autocmd('User', { pattern = 'ShelfChanged', group = require('shelf.ui').augroup(),
        desc = 'shelf: forget the tree nodes of deleted items', callback = forget_deleted })
    end
  end
  return node
end

-- Counts the items below every folder, links each node to its parent and
-- indexes it by key (what M.remove and M.insert need).
local function count(node, index, tick)
  index[node.key] = node
  if node.type == 'item' then
    return 1
  end
  local n = 0
  for i, c in ipairs(node.children) do
    c.parent = node
    n = n + count(c, index, tick)
    if tick and i % 512 == 0 then
      tick()
    end
  end
  node.count = n
  return n
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

--- Build the tree: an array of section nodes (Prompts, Context blocks and,
--- when there are any, Temporary), and every node in it by key. Each node
--- has its `parent` (nil for sections). With `tick` (a sliced render, see
--- tab/init.lua), tick() is called every few hundred nodes and may yield
--- the coroutine this runs in; each kind's items are read at once, and the
--- tab draws changes that come meanwhile after this build.
---@param tick fun()|nil
---@return shelf.Node[], table<string, shelf.Node>
function M.build(tick)
  local projects = mirror.items('project')
  local hidden = hidden_folders(projects)
  M.hidden = hidden
  local folders = {}
  for _, p in ipairs(projects) do
    folders[p.id] = { key = 'project:' .. p.id, type = 'folder', kind = 'project', id = p.id, item = p,
      label = display.title(p.name, display.max.label, display.unnamed), children = {}, count = 0 }
  end
  local sections, index = {}, {}
  local temporary = { key = 'section:temporary', type = 'section', kind = 'block', label = 'Temporary',
    children = {}, count = 0, temporary = true }
  for _, kind in ipairs({ 'prompt', 'block' }) do
    local ftype = M.folder_type[kind]
    local section = { key = 'section:' .. kind, type = 'section', kind = kind,
      label = kind == 'prompt' and 'Prompts' or 'Context blocks', children = {}, count = 0 }
    local unsorted = { key = 'unsorted:' .. kind, type = 'unsorted', kind = kind, label = 'Unsorted',
      children = {}, count = 0 }
    -- Folders of this type under their parents (or the section).
    for _, p in ipairs(projects) do
      if p.type == ftype and not hidden[p.id] then
        local parent = p.parent_id and folders[p.parent_id]
        if parent and parent.item.type == ftype and not M.is_inside(p.id, p.parent_id) then
          table.insert(parent.children, folders[p.id])
        else
          table.insert(section.children, folders[p.id])
        end
      end
    end
    for i, it in ipairs(mirror.items(kind)) do
      if tick and i % 256 == 0 then
        tick()
      end
      local node = item_node(kind, it)
      local folder = it.project_id and folders[it.project_id]
      if it.temporary then
        table.insert(temporary.children, node)
      elseif it.project_id and hidden[it.project_id] then
        -- In a folder just deleted: its own delete is on the way.
      elseif folder and folder.item.type == ftype then
        table.insert(folder.children, node)
      else
        table.insert(unsorted.children, node)
      end
    end
    if #unsorted.children > 0 then
      sort(unsorted.children, tick)
      table.insert(section.children, unsorted)
    end
    table.insert(sections, section)
  end
  if #temporary.children > 0 then
    table.insert(sections, temporary)
  end
  for _, f in pairs(folders) do
    sort(f.children, tick)
  end
  for _, s in ipairs(sections) do
    sort(s.children, tick)
    -- Unsorted goes last, after the folders.
    for i, c in ipairs(s.children) do
      if c.type == 'unsorted' then
        table.remove(s.children, i)
        table.insert(s.children, c)
        break
      end
    end
    s.parent = nil
    count(s, index, tick)
  end
  return sections, index
end

--- The item node of a summary (the same table for the same summary).
M.item_node = item_node

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

-- Add `by` to the counts of a node's ancestors.
local function recount(node, by)
  local p = node.parent
  while p do
    p.count = p.count + by
    p = p.parent
  end
end

--- Take an item node out of a built tree (see M.build); the counts above it drop.
function M.remove(index, node)
  local kids = node.parent.children
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
  recount(node, -1)
  index[node.key] = nil
end

--- Put an item node under `parent` in a built tree, in order; the counts
--- above it grow. Returns its position among the children.
function M.insert(index, parent, node)
  local kids = parent.children
  local i = upper_bound(kids, node)
  table.insert(kids, i, node)
  node.parent = parent
  recount(node, 1)
  index[node.key] = node
  return i
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
  for _, f in ipairs(mirror.items('project')) do
    if f.id ~= id and M.is_inside(id, f.id) then
      inside[f.id] = true
    end
  end
  local nfolders = vim.tbl_count(inside)
  inside[id] = true
  local ids = {}
  for _, it in ipairs(mirror.items(kind)) do
    if it.project_id and inside[it.project_id] then
      table.insert(ids, it.id)
    end
  end
  return { folders = nfolders, items = #ids, kind = kind, ids = ids }
end

return M
