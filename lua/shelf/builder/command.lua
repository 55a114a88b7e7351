-- shelf.builder.command: :Shelf build and its subcommands, with completion
-- (:help :Shelf-build).
local ui = require('shelf.ui')

local M = {}

local function builder()
  return require('shelf.builder')
end

-- The blocks in the builder whose title is `text` (case-insensitive), else
-- those whose title contains it.
local function find_in_builder(text)
  local want = vim.trim(text):lower()
  local exact, partial = {}, {}
  for _, it in ipairs(builder().items()) do
    local title = (it.title or ''):lower()
    if title == want then
      table.insert(exact, it)
    elseif title:find(want, 1, true) then
      table.insert(partial, it)
    end
  end
  return #exact > 0 and exact or partial
end

-- :'<,'>Shelf build add: the selection as a new temporary block, added.
local function add_selection(opts)
  if not ui.ensure_helper() then
    return
  end
  local content = require('shelf.insert').range_text(opts)
  local title
  for line in content:gmatch('[^\n]+') do
    if vim.trim(line) ~= '' then
      title = vim.trim(line)
      break
    end
  end
  if not title then
    return ui.warn('the selection is blank; nothing was added to the builder')
  end
  if vim.fn.strchars(title) > 60 then
    title = vim.fn.strcharpart(title, 0, 59) .. '…'
  end
  require('shelf.client').call('create', { 'block', { title = title, content = content, temporary = true } },
    function(err, item)
      if err then
        return ui.error(err .. '; the selection is still in your buffer')
      end
      builder().add('block', item.id)
    end)
end

-- Ask which of `items` to take out of the builder.
local function pick_to_remove(items)
  vim.ui.select(items, { prompt = 'Remove from the builder:', kind = 'shelf.builder',
    format_item = function(it) return ui.label(it) end }, function(it)
    if it then
      builder().remove(it.id)
    end
  end)
end

local function remove(args)
  local b = builder()
  if #args == 0 then
    local items = b.items()
    if #items == 0 then
      return ui.notify('the builder holds no blocks')
    end
    return pick_to_remove(items)
  end
  local text = table.concat(args, ' ')
  local hits = find_in_builder(text)
  if #hits == 0 then
    return ui.warn(string.format("no block in the builder is titled '%s'", text))
  elseif #hits == 1 then
    b.remove(hits[1].id)
    return ui.notify(string.format("removed '%s' from the builder", ui.label(hits[1])))
  end
  pick_to_remove(hits)
end

M.subcommands = {
  add = function(args, opts)
    if (opts.range or 0) > 0 and #args == 0 then
      return add_selection(opts)
    end
    require('shelf.builder.view').command_add(args)
  end,
  remove = remove,
  insert = function()
    builder().insert()
  end,
  yank = function(args)
    builder().yank(args[1])
  end,
  save = function()
    builder().save()
  end,
  clear = function()
    builder().clear()
    ui.notify('cleared the builder' .. (require('shelf.builder.view').buf() and '; u in it brings it back' or ''))
  end,
}

local names = { 'add', 'remove', 'insert', 'yank', 'save', 'clear' }

function M.run(args, opts)
  local sub = table.remove(args, 1)
  if not sub then
    -- Typed in the builder: close its window, as :Shelf tab does (the
    -- builder keeps everything).
    local win = vim.api.nvim_get_current_win()
    if vim.api.nvim_buf_get_name(0) == 'shelf://builder' and #vim.api.nvim_tabpage_list_wins(0) > 1 then
      return vim.api.nvim_win_close(win, false)
    end
    return builder().open()
  end
  local fn = M.subcommands[sub]
  if not fn then
    return ui.error(string.format("unknown :Shelf build subcommand '%s'; use %s", sub, table.concat(names, ', ')))
  end
  fn(args, opts or {})
end

function M.complete(arglead, args)
  if #args <= 1 then
    return vim.tbl_filter(function(n)
      return n:sub(1, #arglead) == arglead
    end, names)
  end
  local rest = vim.list_slice(args, 2)
  if args[1] == 'add' then
    return require('shelf.picker').complete_titles(arglead, rest, { 'block', 'prompt' })
  elseif args[1] == 'remove' then
    local typed = table.concat(rest, ' '):lower()
    local before = #typed - #arglead
    local out = {}
    for _, it in ipairs(builder().items()) do
      local title = it.title or ''
      if title:lower():sub(1, #typed) == typed then
        table.insert(out, title:sub(before + 1))
      end
    end
    table.sort(out)
    return out
  end
  return {}
end

return M
