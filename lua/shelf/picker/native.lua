-- shelf.picker.native: :Shelf prompts|blocks|projects in telescope.nvim or
-- mini.pick where the user has one (option picker.ui), with a preview of each
-- item and its actions on keys; vim.ui.select (shelf.picker) everywhere else.
-- This module chooses the picker and owns what both show and do: the entries
-- (shelf.picker's), the preview text and the actions. The pickers' own code
-- is in picker/telescope.lua and picker/mini.lua. Neither plugin is needed.
local config = require('shelf.config')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local tree = require('shelf.tree')
local ui = require('shelf.ui')

local M = {}

-- The plugins' versions this is tested with need Neovim 0.9 or newer
-- (telescope.nvim 0.2 needs 0.10); on older ones vim.ui.select stays.
local function new_enough()
  return vim.fn.has('nvim-0.9') == 1
end

local warned = {}

-- A picker the user asked for by name but does not have: said once.
local function missing(name, why)
  if not warned[name] then
    warned[name] = true
    ui.warn(string.format("picker.ui is '%s' but %s; using vim.ui.select", name, why))
  end
end

--- The picker in use: 'telescope', 'mini' or nil (vim.ui.select). 'auto'
--- takes mini.pick when it was set up (the user's choice of picker), else
--- telescope.nvim when it loads.
function M.which()
  local want = config.get().picker.ui
  if want == 'select' then
    return nil
  end
  if not new_enough() then
    if want ~= 'auto' then
      missing(want, 'it needs Neovim 0.9 or newer here')
    end
    return nil
  end
  if want == 'mini' or (want == 'auto' and rawget(_G, 'MiniPick') ~= nil) then
    if pcall(require, 'mini.pick') then
      return 'mini'
    end
    missing(want, 'mini.pick is not installed')
    return nil
  end
  if pcall(require, 'telescope') then
    return 'telescope'
  end
  if want == 'telescope' then
    missing(want, 'telescope.nvim is not installed')
  end
  return nil
end

-- ---- preview --------------------------------------------------------------------------

-- A preview shows this much of an item's content; the rest is counted.
local max_preview_bytes = 64 * 1024

local function split(text)
  return vim.split(text, '\n', { plain = true })
end

local function folder_preview(id)
  local folder = mirror.item('project', id)
  if not folder then
    return { 'this folder no longer exists' }
  end
  local kind = tree.holds[folder.type] or 'block'
  local lines = { tree.folder_path(id) or ui.label(folder), '' }
  local subs, items = {}, {}
  -- Read in place (each preview as the selection moves: no list of the
  -- whole library made for it).
  for _, p in ipairs(mirror.items('project')) do
    if p.parent_id == id then
      table.insert(subs, '📁 ' .. ui.label(p))
    end
  end
  local folder_of = mirror.column(kind, 'project_id')
  for row in mirror.rows(kind) do
    if folder_of[row] == id then
      table.insert(items, ui.label(mirror.item_at(kind, row)))
    end
  end
  table.sort(subs)
  table.sort(items)
  vim.list_extend(lines, subs)
  vim.list_extend(lines, items)
  if #subs + #items == 0 then
    table.insert(lines, '(empty)')
  end
  return lines
end

--- The preview of an entry: a prompt's or block's description and tags, a
--- rule, then its content; a folder's path and what it holds. `full` is the
--- item as shelfd's get answered it (nil: err says why); without `full` or
--- `err` (still loading) the summary from the mirror and a loading line.
function M.preview_lines(e, full, err)
  if e.kind == 'project' then
    return folder_preview(e.id)
  end
  local loading = full == nil and err == nil
  if not full and not loading then
    return { string.format('cannot show this %s: %s', ui.kind_names[e.kind], err or 'it no longer exists') }
  end
  full = full or mirror.item(e.kind, e.id) or {}
  local lines = {}
  local desc = full.description
  if type(desc) == 'string' and vim.trim(desc) ~= '' then
    vim.list_extend(lines, split(desc))
  end
  if type(full.tags) == 'table' and #full.tags > 0 then
    table.insert(lines, '#' .. table.concat(full.tags, ' #'))
  end
  if #lines > 0 then
    table.insert(lines, string.rep('─', 40))
  end
  if loading then
    table.insert(lines, '(loading…)')
    return lines
  end
  local content = type(full.content) == 'string' and full.content or ''
  local more = #content - max_preview_bytes
  if more > 0 then
    content = content:sub(1, max_preview_bytes)
  end
  vim.list_extend(lines, split(content))
  if more > 0 then
    table.insert(lines, string.format('… %.0f KiB more', math.ceil(more / 1024)))
  end
  return lines
end

-- Per preview buffer: the entry it shows last, and the read under way.
local showing = {}

--- Fill `buf` with the preview of `e`: at once what the mirror has and a
--- loading line, then the content once shelfd has read it, but only if the
--- buffer still previews `e` (the selection moved on: its answer is dropped
--- and the read cancelled). Never blocks: content is read by shelfd.
function M.preview(buf, e)
  local function set(lines)
    if vim.api.nvim_buf_is_valid(buf) then
      vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
    end
  end
  local last = showing[buf]
  if last and last.ticket then
    client.cancel(last.ticket)
  end
  local now = { entry = e }
  showing[buf] = now
  set(M.preview_lines(e))
  if e.kind == 'project' then
    return
  end
  now.ticket = client.get_async(e.kind, e.id, function(err, full)
    if showing[buf] ~= now then
      return
    end
    showing[buf] = nil
    set(M.preview_lines(e, full, err or (not full and 'it no longer exists') or nil))
  end)
end

-- ---- actions --------------------------------------------------------------------------

--- The actions on keys, in the order the help lists them.
M.actions = { 'insert', 'open', 'delete', 'build' }

--- Do `action` with an entry once the picker is closed: 'insert', 'open',
--- 'delete', 'build' (add to the prompt builder) or 'ask' (a menu).
function M.run(action, e)
  local picker = require('shelf.picker')
  if action == 'ask' then
    return picker.ask_action(e.kind, e.id)
  end
  -- A folder has no text: inserting it or building with it shows it.
  if e.kind == 'project' and (action == 'insert' or action == 'build') then
    action = 'open'
  end
  picker.act(action, e.kind, e.id)
end

--- What both pickers get: the entries, how to show and preview them, the
--- action of <CR> and of each key (config picker.keys).
local function spec(kinds, action, title, entries)
  local picker = require('shelf.picker')
  local keys = {}
  for _, name in ipairs(M.actions) do
    local key = config.get().picker.keys[name]
    if type(key) == 'string' and key ~= '' then
      keys[name] = key
    end
  end
  return {
    title = title,
    entries = entries,
    display = function(e)
      return picker.format(e, #kinds > 1)
    end,
    preview = M.preview, -- (buf, entry)
    default = action,
    keys = keys,
    -- After the picker closed and the window it came from is current again.
    run = function(name, e)
      vim.schedule(function()
        M.run(name, e)
      end)
    end,
  }
end

--- Open `kinds` in the user's picker. Returns false (and shows nothing)
--- when vim.ui.select is to be used instead, or there is nothing to show.
---@param kinds string[]
---@param action string what <CR> does: 'insert', 'open', 'delete', 'build' or 'ask'
---@param title string
---@param opts table|nil { ui = 'telescope'|'mini' (this one, else config),
---  telescope = the options :Telescope passed }
function M.open(kinds, action, title, opts)
  opts = opts or {}
  local which = opts.ui or M.which()
  if not which then
    return false
  end
  local picker = require('shelf.picker')
  if picker.count(kinds) == 0 then
    return false
  end
  local shown = picker.entries(kinds, function(entries)
    local s = spec(kinds, action or config.get().picker.action, title, entries)
    s.telescope = opts.telescope
    require('shelf.picker.' .. which).open(s)
  end)
  if not shown then
    ui.notify(string.format('sorting %d items for the picker…', picker.count(kinds)))
  end
  return true
end

return M
