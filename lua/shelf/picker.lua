-- shelf.picker: choosing prompts, blocks and folders with vim.ui.select, so
-- telescope, fzf-lua, snacks, mini.pick or dressing take over where the user
-- installed one. Also finding items by title for :Shelf insert/edit and their
-- completion.
local config = require('shelf.config')
local display = require('shelf.display')
local mirror = require('shelf.mirror')
local tree = require('shelf.tree')
local ui = require('shelf.ui')

local M = {}

M.actions = { 'insert', 'open', 'delete', 'build' }

-- Where an item lives, for the picker line: 'Code / Review', 'Temporary', nil.
local function place(kind, item)
  if item.temporary then
    return 'Temporary'
  end
  return item.project_id and tree.folder_path(item.project_id) or nil
end

--- Entries for the items of `kinds`, sorted by folder, then title.
---@param kinds string[] e.g. { 'prompt', 'block' }
function M.entries(kinds)
  local out, paths, order = {}, {}, {}
  -- Folder paths once per folder, not once per item.
  local function path_of(id)
    if paths[id] == nil then
      paths[id] = tree.folder_path(id) or false
    end
    return paths[id] or nil
  end
  for _, kind in ipairs(kinds) do
    for _, item in ipairs(mirror.items(kind)) do
      local e = { kind = kind, id = item.id, item = item, label = ui.label(item, display.max.label) }
      if kind == 'project' then
        e.place = item.parent_id and path_of(item.parent_id) or nil
        e.label = display.icon(item.icon) .. ' ' .. e.label
      elseif item.temporary then
        e.place = place(kind, item)
      else
        e.place = item.project_id and path_of(item.project_id) or nil
      end
      -- Sorted by folder (items without one last), then title, then id, on
      -- one string: a comparator lowering titles costs 10x at 10k items.
      -- Folders by their path, so each comes before the folders inside it.
      local pl = (e.place or ''):lower()
      if kind == 'project' then
        -- '\1' between names sorts below the end of a path ('\0').
        order[e] = (pl == '' and '' or (pl:gsub(' / ', '\1') .. '\1')) .. (item.name or ''):lower() .. '\0' .. e.id
      else
        order[e] = (pl == '' and '1' or '0') .. pl .. '\0' .. e.label:lower() .. '\0' .. e.id
      end
      table.insert(out, e)
    end
  end
  table.sort(out, function(a, b)
    return order[a] < order[b]
  end)
  return out
end

--- The text a picker shows for an entry.
function M.format(e, show_kind)
  local parts = {}
  if e.kind == 'project' then
    -- Which items the folder holds.
    table.insert(parts, e.item.type == 'prompts' and '[prompts]' or '[blocks] ')
  elseif show_kind then
    table.insert(parts, e.kind == 'prompt' and '[prompt]' or (e.item.temporary and '[temp]  ' or '[block] '))
  end
  if e.place then
    table.insert(parts, e.place .. ' ›')
  end
  table.insert(parts, e.label)
  local tags = display.tags(e.item.tags)
  if #tags > 0 then
    table.insert(parts, ' #' .. table.concat(tags, ' #'))
  end
  return table.concat(parts, ' ')
end

--- Let the user choose one item of `kinds`; cb(entry) (not called on cancel).
function M.choose(kinds, prompt, cb, entries)
  entries = entries or M.entries(kinds)
  if #entries == 0 then
    local names = vim.tbl_map(function(k) return ui.kind_names[k] .. 's' end, kinds)
    return ui.notify('there are no ' .. table.concat(names, ' or ') .. ' yet; :Shelf new makes one')
  end
  vim.ui.select(entries, {
    prompt = prompt,
    kind = 'shelf.' .. table.concat(kinds, '_'),
    format_item = function(e)
      return M.format(e, #kinds > 1)
    end,
  }, function(choice)
    if choice then
      cb(choice)
    end
  end)
end

--- Do `action` ('insert', 'open', 'delete') with an item.
function M.act(action, kind, id)
  if kind == 'project' then
    if action == 'delete' then
      return require('shelf.tab').delete('project', id)
    end
    return require('shelf.tab').reveal('project:' .. id)
  end
  if action == 'insert' then
    return require('shelf.insert').insert(kind, id)
  elseif action == 'open' then
    return require('shelf.edit').open(kind, id)
  elseif action == 'delete' then
    return require('shelf.tab').delete(kind, id)
  elseif action == 'build' then
    return require('shelf.builder').add(kind, id)
  end
  ui.error("unknown picker action '" .. tostring(action) .. "'; use insert, open, delete or build")
end

--- The second menu of the 'ask' action: what to do with the item.
function M.ask_action(kind, id)
  local choices = kind == 'project' and { 'open', 'delete' } or M.actions
  vim.ui.select(choices, {
    prompt = 'Do:',
    kind = 'shelf.action',
    format_item = function(a)
      return ({ insert = 'Insert at the cursor', open = kind == 'project' and 'Show in the tab'
        or 'Open in an edit buffer', delete = 'Delete', build = kind == 'prompt' and 'Use in the prompt builder'
        or 'Add to the prompt builder' })[a]
    end,
  }, function(a)
    if a then
      M.act(a, kind, id)
    end
  end)
end

--- :Shelf prompts|blocks|projects [action]
---@param kind 'prompt'|'block'|'project'
---@param action string|nil overrides config picker.action
function M.pick(kind, action)
  if not ui.ensure_helper() then
    return
  end
  action = action or config.get().picker.action
  if action ~= 'ask' and not vim.tbl_contains(M.actions, action) then
    return ui.error("unknown action '" .. action .. "'; use insert, open, delete, build or ask")
  end
  local prompt = ({ prompt = 'Prompts', block = 'Context blocks', project = 'Folders' })[kind]
  -- What choosing does, in the title: for a folder, insert and open show it.
  local doing = action
  if kind == 'project' and (action == 'insert' or action == 'open') then
    doing = 'show in the tab'
  end
  -- telescope or mini.pick with a preview where the user has one.
  if require('shelf.picker.native').open({ kind }, action, prompt .. ' (' .. doing .. ')') then
    return
  end
  M.choose({ kind }, prompt .. ' (' .. doing .. '):', function(e)
    if action == 'ask' then
      M.ask_action(e.kind, e.id)
    elseif kind == 'project' and (action == 'insert' or action == 'build') then
      M.act('open', e.kind, e.id)
    else
      M.act(action, e.kind, e.id)
    end
  end)
end

--- Completion of the action after :Shelf prompts|blocks|projects.
function M.complete_actions(arglead, args)
  if #args > 1 then
    return {}
  end
  return vim.tbl_filter(function(a)
    return a:sub(1, #arglead) == arglead
  end, { 'insert', 'open', 'delete', 'build', 'ask' })
end

-- ---- titles ---------------------------------------------------------------------------

--- Items of `kinds` whose title is `text` (case-insensitive), as entries.
function M.by_title(text, kinds)
  local want = vim.trim(text):lower()
  local out = {}
  for _, e in ipairs(M.entries(kinds)) do
    -- As written, or as shown (what completion offers).
    local title = display.text(e.item.title) or ''
    if title:lower() == want or display.title(title):lower() == want then
      table.insert(out, e)
    end
  end
  return out
end

--- Find an item by title and pass it to cb(entry): the one item with that
--- exact title; else a picker of those with it, or of those whose title
--- contains the text (even one: a partial match is a guess to confirm).
function M.find(text, kinds, prompt, cb)
  local hits = M.by_title(text, kinds)
  local exact = #hits > 0
  if not exact then
    local want = vim.trim(text):lower()
    for _, e in ipairs(M.entries(kinds)) do
      local title = display.text(e.item.title) or ''
      if title:lower():find(want, 1, true) or display.title(title):lower():find(want, 1, true) then
        table.insert(hits, e)
      end
    end
  end
  if #hits == 1 and exact then
    return cb(hits[1])
  end
  if #hits == 0 then
    local lists = vim.tbl_map(function(k) return ':Shelf ' .. (k == 'prompt' and 'prompts' or 'blocks') end, kinds)
    return ui.warn(string.format("nothing is titled '%s'; %s list%s them all", text, table.concat(lists, ' and '),
      #lists == 1 and 's' or ''))
  end
  M.choose(kinds, prompt, cb, hits)
end

--- Completion of titles after a subcommand: `args` are the words typed so
--- far (the last one being completed). Titles have spaces, so a candidate is
--- the rest of a title from the start of the word being completed.
function M.complete_titles(arglead, args, kinds)
  local typed = table.concat(args, ' '):lower()
  local before = #typed - #arglead
  local out, seen = {}, {}
  for _, kind in ipairs(kinds) do
    for _, item in ipairs(mirror.items(kind)) do
      -- As shown: one line, whatever another client wrote.
      local title = display.title(item.title)
      if title:lower():sub(1, #typed) == typed then
        local cand = title:sub(before + 1)
        if not seen[cand] then
          seen[cand] = true
          table.insert(out, cand)
        end
      end
    end
  end
  table.sort(out)
  return out
end

return M
