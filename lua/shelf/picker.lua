-- shelf.picker: choosing prompts, blocks and folders with vim.ui.select, so
-- telescope, fzf-lua, snacks, mini.pick or dressing take over where the user
-- installed one. Also finding items by title for :Shelf insert/edit and their
-- completion.
local config = require('shelf.config')
local display = require('shelf.display')
local mirror = require('shelf.mirror')
local order = require('shelf.picker.order')
local ui = require('shelf.ui')

local M = {}

M.actions = { 'insert', 'open', 'delete', 'build' }

--- Entries for the items of `kinds` (their summaries), sorted by folder, then
--- title: cb(entries), at once when the order is kept already (or the
--- library is small), else once it is sorted (picker/order.lua). The list is
--- the caller's.
---@param kinds string[] e.g. { 'prompt', 'block' }
function M.entries(kinds, cb)
  return order.get(kinds, function(items)
    local copy = {}
    for i = 1, #items do
      copy[i] = items[i]
    end
    cb(copy)
  end)
end

--- How many items `kinds` hold.
function M.count(kinds)
  local n = 0
  for _, kind in ipairs(kinds) do
    n = n + mirror.count(kind)
  end
  return n
end

--- The title shown for an entry (a folder with its icon).
function M.label(e)
  local label = ui.label(e, display.max.label)
  if e.kind == 'project' then
    return display.icon(e.icon) .. ' ' .. label
  end
  return label
end

--- The text a picker shows for an entry.
function M.format(e, show_kind)
  local parts = {}
  if e.kind == 'project' then
    -- Which items the folder holds.
    table.insert(parts, e.type == 'prompts' and '[prompts]' or '[blocks] ')
  elseif show_kind then
    table.insert(parts, e.kind == 'prompt' and '[prompt]' or (e.temporary and '[temp]  ' or '[block] '))
  end
  local place = order.place(e)
  if place then
    table.insert(parts, place .. ' ›')
  end
  table.insert(parts, M.label(e))
  local tags = display.tags(e.tags)
  if #tags > 0 then
    table.insert(parts, ' #' .. table.concat(tags, ' #'))
  end
  return table.concat(parts, ' ')
end

-- Neovim's own vim.ui.select lists every choice in an inputlist() (a
-- screenful at a time behind "-- More --"): past this many entries the user
-- types part of a title first. A picker plugin that replaced it gets the
-- whole list (it filters as you type).
M.narrow_above = 500

--- True when vim.ui.select is Neovim's own (no plugin replaced it).
function M.select_is_builtin()
  local info = debug.getinfo(vim.ui.select, 'S')
  return info ~= nil and (info.source or ''):match('[/\\]lua[/\\]vim[/\\]ui%.lua$') ~= nil
end

-- How an item's title (a folder's name), as written or as shown, case
-- ignored, meets `text`: a function of a title that returns 'exact',
-- 'partial' (holds it) or nil. (Patterns, not lowered copies of 100k
-- titles: see display.caseless.)
local function title_matcher(text)
  local pattern = display.caseless(text)
  local whole = '^' .. pattern .. '$'
  return function(title)
    title = display.text(title) or ''
    local shown = display.title(title)
    if title:find(whole) or (shown ~= title and shown:find(whole)) then
      return 'exact'
    end
    if title:find(pattern) or (shown ~= title and shown:find(pattern)) then
      return 'partial'
    end
  end
end

-- A search of the titles looks at the library this long at a time (ns).
M.slice_ns = require('shelf.slices').SLICE_NS

-- Ask for part of a title and choose among the entries whose title holds
-- it; asked again while too many do. Looked through a slice at a time: the
-- entries may be the whole library.
local function narrow(kinds, prompt, cb, entries)
  local question = string.format('%s: %d items; type part of a title: ', (prompt:gsub(':$', '')), #entries)
  vim.ui.input({ prompt = question }, function(text)
    if not text or vim.trim(text) == '' then
      return
    end
    local match = title_matcher(vim.trim(text))
    local hits = {}
    local slices = require('shelf.slices')
    slices.run(function() return M.slice_ns end, function(pause)
      for i, e in ipairs(entries) do
        if match(e.title or e.name) then
          hits[#hits + 1] = e
        end
        if i % 256 == 0 then
          pause()
        end
      end
    end, function() return true end, function()
      if #hits == 0 then
        return ui.notify(string.format("no title holds '%s'", text))
      end
      M.choose(kinds, prompt, cb, hits)
    end)
  end)
end

-- Run fn once shelfd's first load is in, if it is still under way (a list
-- made now would be empty or partial): true when it waits.
local function after_load(fn)
  local client = require('shelf.client')
  if client.status().ready or not client.running() then
    return false
  end
  ui.notify('the library is still loading; the list opens when it is in')
  ui.autocmd('User', { pattern = 'ShelfStatus', desc = 'shelf: a picker asked for during the first load',
    callback = function()
      if not client.running() then
        return true -- shelfd ended: said by the client; nothing to list
      end
      if client.status().ready then
        vim.schedule(fn)
        return true
      end
    end })
  return true
end

--- Let the user choose one item of `kinds`; cb(entry) (not called on cancel).
function M.choose(kinds, prompt, cb, entries)
  if not entries then
    if after_load(function() M.choose(kinds, prompt, cb) end) then
      return
    end
    if M.count(kinds) == 0 then
      local names = vim.tbl_map(function(k) return ui.kind_names[k] .. 's' end, kinds)
      return ui.notify('there are no ' .. table.concat(names, ' or ') .. ' yet; :Shelf new makes one')
    end
    if not M.entries(kinds, function(list) M.choose(kinds, prompt, cb, list) end) then
      ui.notify(string.format('sorting %d items for the picker…', M.count(kinds)))
    end
    return
  end
  if #entries > M.narrow_above and M.select_is_builtin() then
    return narrow(kinds, prompt, cb, entries)
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
  -- The first menu's answer is still on the command line: the built-in
  -- select (inputlist()) would start this one after it.
  vim.cmd('redraw')
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
  if after_load(function() M.pick(kind, action) end) then
    return
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

-- The items of `kinds` whose title (as written, or as shown), case ignored,
-- is `text` (exact) or holds it (partial): done(exact, partial), each in
-- picker order. A slice of the library at a time, so a library of 100k
-- items (some 100 ms of work) never holds the editor; a small one answers
-- before this returns. A change to the library meanwhile starts it again.
local function titled(kinds, text, done)
  local match = title_matcher(text)
  local function in_order(list)
    local ctx = {}
    table.sort(list, function(a, b)
      return order.less(a, b, ctx)
    end)
    return list
  end
  local function start()
    local exact, partial = {}, {}
    local library, change = mirror.library, mirror.last_change
    local slices = require('shelf.slices')
    slices.run(function() return M.slice_ns end, function(pause)
      -- (A folder's title is its name.)
      local titles = {}
      for _, kind in ipairs(kinds) do
        titles[kind] = mirror.column(kind, kind == 'project' and 'name' or 'title', library)
      end
      slices.each_item(library, kinds, pause, function(kind, row)
        local how = match(titles[kind][row])
        if how == 'exact' then
          exact[#exact + 1] = mirror.item_at(kind, row, library)
        elseif how then
          partial[#partial + 1] = mirror.item_at(kind, row, library)
        end
      end)
    end, function()
      if mirror.library ~= library or mirror.last_change ~= change then
        vim.schedule(start) -- the table may not be walked further: again
        return false
      end
      return true
    end, function()
      done(in_order(exact), in_order(partial))
    end)
  end
  start()
end

--- Find an item by title and pass it to cb(entry): the one item with that
--- exact title; else a picker of those with it, or of those whose title
--- contains the text (even one: a partial match is a guess to confirm).
function M.find(text, kinds, prompt, cb)
  titled(kinds, vim.trim(text), function(exact, partial)
    if #exact == 1 then
      return cb(exact[1])
    end
    local hits = #exact > 0 and exact or partial
    if #hits == 0 then
      local lists = vim.tbl_map(function(k) return ':Shelf ' .. (k == 'prompt' and 'prompts' or 'blocks') end, kinds)
      return ui.warn(string.format("nothing is titled '%s'; %s list%s them all", text, table.concat(lists, ' and '),
        #lists == 1 and 's' or ''))
    end
    M.choose(kinds, prompt, cb, hits)
  end)
end

--- Completion of titles after a subcommand: `args` are the words typed so
--- far (the last one being completed). Titles have spaces, so a candidate is
--- the rest of a title from the start of the word being completed.
function M.complete_titles(arglead, args, kinds)
  local typed = table.concat(args, ' ')
  local before = #typed - #arglead
  local starts = '^' .. display.caseless(typed)
  local out, seen = {}, {}
  for _, kind in ipairs(kinds) do
    local titles = mirror.column(kind, 'title')
    for row in mirror.rows(kind) do
      -- As shown: one line, whatever another client wrote.
      local title = display.title(titles[row])
      if title:find(starts) then
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
