-- shelf.tab.actions: what the knowledge tab's keys do. M.list is the one
-- table of actions: each entry's name is its option in `tab.keys` (whose
-- defaults are in config.lua) and its <Plug>(shelf-tab-NAME) map; its desc is
-- the map's description and its line in the g? help; its callback runs it.
-- A new action is one entry here and its default key in config.lua.
local S = require('shelf.tab.state')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local tree = require('shelf.tree')
local ui = require('shelf.ui')
local view = require('shelf.tab.view')

local M = {}

local state = S.state

-- The tab's module, for render(): loaded by now, as it loads this one.
local function tab()
  return require('shelf.tab')
end

local function toggle_node(node)
  if node.type == 'item' then
    return
  end
  if node.type == 'more' then
    -- '… N more': the next page of the folder's children, the cursor on
    -- the first of them.
    state.limits[node.parent.key] = S.limit(node.parent) + S.PAGE
    state.focus = node.next_key
    return tab().render()
  end
  if state.filter then
    ui.notify('folders stay open while filtering; ' .. (M.first_key('filter') or '/') .. ' and an empty filter clears it')
    return
  end
  local opening = S.closed(node)
  state.collapsed[node.key] = not opening
  state.focus = node.key
  if opening and not node.children then
    return tab().render_opened()
  end
  tab().render()
end

--- Ask for a new folder's name and create it; `ftype` and `parent_id` may be
--- nil (then asked for / top level). Used by the tab and :Shelf new folder.
function M.new_folder(ftype, parent_id)
  local function ask_name(t)
    ui.input({ prompt = string.format('New %s folder%s: ', t == 'prompts' and 'prompt' or 'context block',
      parent_id and (' in ' .. (tree.folder_path(parent_id) or '?')) or '') }, function(name)
      if not name then
        return
      end
      if vim.trim(name) == '' then
        return ui.warn('no folder was created: its name was empty')
      end
      name = vim.trim(name)
      client.call('create', { 'project', { type = t, name = name, parent_id = parent_id } }, function(err, item)
        if err then
          return ui.error(err .. '; nothing was created')
        end
        if parent_id then
          state.collapsed['project:' .. parent_id] = false
        end
        state.collapsed['section:' .. tree.holds[t]] = false
        state.focus = 'project:' .. item.id
        tab().render()
      end)
    end)
  end
  if ftype then
    return ask_name(ftype)
  end
  vim.ui.select({ 'prompts', 'datasets' }, {
    prompt = 'Folder for:',
    format_item = function(t)
      return t == 'prompts' and 'prompts' or 'context blocks'
    end,
  }, function(t)
    if t then
      ask_name(t)
    end
  end)
end

--- Ask, then delete an item or folder (saying what goes with a folder).
function M.delete(kind, id)
  local item = mirror.item(kind, id)
  if not item then
    return ui.warn('that ' .. ui.kind_names[kind] .. ' no longer exists')
  end
  local question
  local going = { kind = kind, ids = { id } } -- the items whose edit buffers go too
  if kind == 'project' then
    local c = tree.contents(id)
    going = { kind = c.kind, ids = c.ids }
    local parts = {}
    if c.folders > 0 then
      table.insert(parts, string.format('%d folder%s', c.folders, c.folders == 1 and '' or 's'))
    end
    if c.items > 0 then
      local what = c.kind == 'prompt' and 'prompt' or 'context block'
      table.insert(parts, string.format('%d %s%s', c.items, what, c.items == 1 and '' or 's'))
    end
    if #parts > 0 then
      question = string.format("Delete folder '%s' and everything in it: %s?", ui.label(item),
        table.concat(parts, ' and '))
    else
      question = string.format("Delete the empty folder '%s'?", ui.label(item))
    end
  elseif item.temporary then
    question = string.format("Delete temporary block '%s'? It was never saved.", ui.label(item))
  else
    question = string.format("Delete %s '%s'?", ui.kind_names[kind], ui.label(item))
  end
  if not ui.confirm(question, '&Delete') then
    return
  end
  local edit = require('shelf.edit')
  edit.deleting(going.kind, going.ids, true)
  client.call('delete', { kind, id }, function(err)
    if err then
      edit.deleting(going.kind, going.ids, false)
      ui.error(err .. '; nothing was deleted')
    else
      ui.notify(string.format("deleted %s '%s'", ui.kind_names[kind], ui.label(item)))
    end
  end)
end

--- Pick another folder for an item or folder and move it there.
function M.move(kind, id)
  local item = mirror.item(kind, id)
  if not item then
    return
  end
  local ftype = kind == 'project' and item.type or tree.folder_type[kind]
  local choices = { { label = kind == 'project' and '(top level)' or '(Unsorted: no folder)', id = vim.NIL } }
  for _, f in ipairs(tree.folder_paths(ftype)) do
    if not (kind == 'project' and tree.is_inside(id, f.item.id)) then
      table.insert(choices, { label = f.path, id = f.item.id })
    end
  end
  vim.ui.select(choices, {
    prompt = string.format("Move '%s' to:", ui.label(item)),
    kind = 'shelf.folder',
    format_item = function(c)
      return c.label
    end,
  }, function(choice)
    if not choice then
      return
    end
    local field = kind == 'project' and 'parent_id' or 'project_id'
    if (item[field] or vim.NIL) == choice.id then
      return ui.notify(string.format("'%s' is in %s already; nothing was moved", ui.label(item), choice.label))
    end
    client.call('update', { kind, id, { [field] = choice.id } }, function(err)
      if err then
        return ui.error(err .. '; it stays where it was')
      end
      if choice.id ~= vim.NIL then
        state.collapsed['project:' .. choice.id] = false
      end
      state.focus = (kind == 'project' and 'project:' or (kind .. ':')) .. id
      tab().render()
    end)
  end)
end

-- The cursor to the first item shown.
local function to_first_match()
  local win = S.tab_window()
  if not win then
    return
  end
  for l = 1, #state.texts do
    local r = state.rows[l]
    if r and r.node.type == 'item' then
      vim.api.nvim_win_set_cursor(win, { l, 0 })
      return
    end
  end
end

--- How long a new filter's search may take before the tab shows it
--- searching: most answer sooner, and the tab is drawn once, with the hits.
M.searching_after_ms = 40

--- Filter the tab by title, tags and content (`#word`: by tag); '' or nil
--- clears. A new filter puts the cursor on the first match once the search
--- (in shelfd, answered later) has found it. The tab is drawn anew either
--- way: in slices in a big library (thousands of folder lines come back).
--- Until the answer (or searching_after_ms) the tab stays as it was, but for
--- the filter's line: a draw of no hits yet would cost as much as the hits'.
function M.set_filter(text)
  if text == nil or vim.trim(text) == '' then
    state.filter, state.hits = nil, nil
    return tab().render_opened()
  end
  local f, was = vim.trim(text), state.filter
  state.filter = f
  local filter = require('shelf.tab.filter')
  local searching = false
  if S.buf_valid() then
    filter.update(tab().render) -- its answer draws the hits
    searching = state.searching
  end
  if not searching then
    tab().render_opened() -- (the hits were current, or there is no tab to draw)
  else
    if was then
      tab().render_header() -- the filter's line, with 'searching'
    end
    vim.defer_fn(function()
      if state.searching and state.filter == f then
        tab().render_opened()
      end
    end, M.searching_after_ms)
  end
  filter.when_answered(to_first_match)
end

-- While the filter is typed into Neovim's own input(): the tab follows each
-- keystroke (each one cancels the search before it). Until the answer only
-- the filter line changes: the items shown change once, with the hits.
function M.preview_filter(text)
  local t = vim.trim(text or '')
  if t == '' or not state.filter then
    state.filter = t ~= '' and t or nil
    state.hits = nil
    tab().render_opened()
  else
    state.filter = t
    require('shelf.tab.filter').update(tab().render)
    tab().render_header()
  end
  vim.cmd('redraw')
end

local function keys_of(action)
  local k = S.opts().keys[action]
  if k == false or k == nil then
    return {}
  end
  if type(k) == 'string' then
    return { k }
  end
  return k
end

--- The first key of an action, for messages.
function M.first_key(action)
  return keys_of(action)[1]
end

---@class shelf.TabAction
---@field name string the option in tab.keys and the <Plug>(shelf-tab-NAME) map
---@field desc string
---@field callback fun()

--- The actions, in the order the help lists them.
---@type shelf.TabAction[]
M.list = {
  {
    name = 'open',
    desc = 'open the item in an edit buffer; fold or unfold a folder',
    callback = function()
      local node = view.require_node()
      if not node then
        return
      end
      if node.type ~= 'item' then
        return toggle_node(node)
      end
      require('shelf.edit').open(node.kind, node.id, { win = view.previous_window() })
    end,
  },
  {
    name = 'toggle',
    desc = 'fold or unfold the folder (on an item: its folder)',
    callback = function()
      local node, row = view.require_node()
      if not node then
        return
      end
      if node.type == 'item' then
        -- Like za inside a fold: close the folder holding the item.
        if row.parent and not state.filter then
          state.collapsed[row.parent.key] = true
          state.focus = row.parent.key
          tab().render()
        end
        return
      end
      toggle_node(node)
    end,
  },
  {
    name = 'insert',
    desc = 'insert the item into the window you came from, at its cursor',
    callback = function()
      local node = view.require_node({ 'item' })
      if not node then
        return ui.warn('put the cursor on a prompt or context block to insert it')
      end
      local win = view.previous_window()
      if not win then
        return ui.warn('no window to insert into; open a file next to the tab first')
      end
      vim.api.nvim_set_current_win(win)
      require('shelf.insert').insert(node.kind, node.id)
    end,
  },
  {
    name = 'new',
    desc = 'new item in the folder under the cursor',
    callback = function()
      local c = view.context()
      local function go(kind, temporary)
        require('shelf.edit').new(kind, { project_id = c.project_id, temporary = temporary,
          win = view.previous_window() })
      end
      if c.kind then
        return go(c.kind, c.temporary)
      end
      vim.ui.select({ 'prompt', 'block', 'temporary' }, {
        prompt = 'New:',
        format_item = function(k)
          return ({ prompt = 'prompt', block = 'context block', temporary = 'temporary block' })[k]
        end,
      }, function(choice)
        if choice == 'temporary' then
          go('block', true)
        elseif choice then
          go(choice, false)
        end
      end)
    end,
  },
  {
    name = 'new_folder',
    desc = 'new folder (inside the folder under the cursor)',
    callback = function()
      local row = view.current()
      local node = row and row.node
      if node and node.type == 'more' then
        node = node.parent
      end
      if not node or node.temporary then
        return M.new_folder(nil, nil)
      end
      if node.type == 'folder' then
        return M.new_folder(node.item.type, node.id)
      end
      if node.type == 'item' then
        return M.new_folder(tree.folder_type[node.kind], node.item.project_id)
      end
      M.new_folder(tree.folder_type[node.kind], nil)
    end,
  },
  {
    name = 'rename',
    desc = 'rename the item or folder',
    callback = function()
      local node = view.require_node({ 'item', 'folder' })
      if not node then
        return ui.warn('put the cursor on an item or a folder to rename it')
      end
      local field = node.type == 'folder' and 'name' or 'title'
      -- The whole name on one line (the tab's label may be cut short).
      local shown = require('shelf.display').title(node.item[field])
      ui.input({ prompt = 'Rename to: ', default = shown }, function(text)
        if not text then
          return
        end
        if vim.trim(text) == '' then
          return ui.warn(string.format("'%s' was not renamed: the new name was empty (every %s needs one)",
            node.label, node.type == 'folder' and 'folder' or ui.kind_names[node.kind]))
        end
        if vim.trim(text) == shown then
          return ui.notify(string.format("'%s' was not renamed: the name is the same", node.label))
        end
        local kind = node.type == 'folder' and 'project' or node.kind
        client.call('update', { kind, node.id, { [field] = vim.trim(text) } }, function(err)
          if err then
            ui.error(err .. '; the old name stays')
          end
        end)
      end)
    end,
  },
  {
    name = 'delete',
    desc = 'delete the item or folder (asks first)',
    callback = function()
      local node = view.require_node({ 'item', 'folder' })
      if not node then
        return ui.warn('put the cursor on an item or a folder to delete it')
      end
      M.delete(node.type == 'folder' and 'project' or node.kind, node.id)
    end,
  },
  {
    name = 'yank',
    desc = 'yank the content into a register',
    callback = function()
      local node = view.require_node({ 'item' })
      if not node then
        return ui.warn('put the cursor on a prompt or context block to yank it')
      end
      -- The register is the one given to this key; the content comes a
      -- moment later (read without blocking).
      local reg = vim.v.register
      client.get_async(node.kind, node.id, function(err, full)
        if not full then
          return ui.error('cannot read ' .. node.label .. ': ' .. (err or 'it no longer exists'))
        end
        local content = full.content or ''
        vim.fn.setreg(reg, content, content:find('\n') and 'l' or 'c')
        ui.notify(string.format("yanked '%s' (%s) into register %s", node.label, ui.size(#content), reg))
      end)
    end,
  },
  {
    name = 'new_temporary',
    desc = 'new temporary block (this session only)',
    callback = function()
      require('shelf.edit').new('block', { temporary = true, win = view.previous_window() })
    end,
  },
  {
    name = 'save_temporary',
    desc = 'save a temporary block as a real context block',
    callback = function()
      local node = view.require_node({ 'item' })
      if not node or not node.temporary then
        return ui.warn('put the cursor on a temporary block to save it as a real one')
      end
      client.call('save_temp', { node.id }, function(err, item)
        if err then
          return ui.error(err .. '; it stays temporary')
        end
        state.focus = 'block:' .. item.id
        ui.notify(string.format("saved '%s' as a context block", ui.label(item)))
      end)
    end,
  },
  {
    name = 'build',
    desc = 'add the block to the prompt builder, or take it out (a prompt: its text goes in)',
    callback = function()
      local node = view.require_node({ 'item' })
      if not node then
        return ui.warn('put the cursor on a context block or prompt to add it to the prompt builder')
      end
      require('shelf.builder').toggle(node.kind, node.id)
    end,
  },
  {
    name = 'move',
    desc = 'move the item or folder to another folder',
    callback = function()
      local node = view.require_node({ 'item', 'folder' })
      if not node then
        return ui.warn('put the cursor on an item or a folder to move it')
      end
      M.move(node.type == 'folder' and 'project' or node.kind, node.id)
    end,
  },
  {
    name = 'filter',
    desc = 'filter by title, tags and content (empty clears)',
    callback = function()
      local before, au = state.filter, nil
      if ui.stock_input() and vim.fn.exists('##CmdlineChanged') == 1 then
        au = vim.api.nvim_create_autocmd('CmdlineChanged', {
          callback = function()
            if vim.fn.getcmdtype() == '@' then
              M.preview_filter(vim.fn.getcmdline())
            end
          end,
        })
      end
      ui.input({ prompt = 'Filter (title, tags, content): ', default = state.filter or '' }, function(text)
        if au then
          pcall(vim.api.nvim_del_autocmd, au)
        end
        if text == nil then
          -- <Esc> keeps the filter there was.
          if state.filter ~= before then
            M.set_filter(before)
          end
          return
        end
        M.set_filter(text)
      end)
    end,
  },
  {
    name = 'refresh',
    desc = 'refresh from the backend',
    callback = function()
      client.call('refresh', {}, function(err)
        if err then
          ui.error(err)
        end
      end)
      tab().render_header()
    end,
  },
  {
    name = 'close',
    desc = 'close the tab',
    callback = function()
      local win = S.tab_window()
      if not win then
        return
      end
      if #vim.api.nvim_tabpage_list_wins(0) == 1 then
        -- The last window of the tab page: show another buffer instead.
        vim.api.nvim_win_call(win, function()
          vim.cmd('enew')
        end)
        return
      end
      vim.api.nvim_win_close(win, false)
    end,
  },
  {
    name = 'help',
    desc = 'show these keys',
    callback = function()
      local lines = { ' Knowledge tab keys', '' }
      for _, a in ipairs(M.list) do
        local keys = table.concat(keys_of(a.name), ' ')
        if keys == '' then
          keys = '(none)'
        end
        table.insert(lines, string.format(' %-10s %s', keys, a.desc))
      end
      table.insert(lines, '')
      table.insert(lines, ' Each is also <Plug>(shelf-tab-NAME); :help shelf-tab-keys')
      ui.key_help(lines)
    end,
  },
}
--- The actions by name.
---@type table<string, shelf.TabAction>
M.by_name = {}
for _, a in ipairs(M.list) do
  M.by_name[a.name] = a
end

--- The <Plug> map of an action.
function M.plug(action)
  return '<Plug>(shelf-tab-' .. action:gsub('_', '-') .. ')'
end

--- Run an action in the tab; from elsewhere (a <Plug> map) say where it works.
function M.run(action)
  if not S.buf_valid() or vim.api.nvim_get_current_buf() ~= state.buf then
    return ui.warn(M.plug(action) .. ' works in the knowledge tab; open it with :Shelf')
  end
  M.by_name[action].callback()
end

for _, a in ipairs(M.list) do
  vim.keymap.set('n', M.plug(a.name), function()
    M.run(a.name)
  end, { desc = 'shelf tab: ' .. a.desc })
end

--- Map each action's keys (tab.keys) in the tab's buffer.
function M.set_keys(buf)
  for _, a in ipairs(M.list) do
    for _, lhs in ipairs(keys_of(a.name)) do
      vim.keymap.set('n', lhs, M.plug(a.name), { buffer = buf, remap = true, nowait = true,
        desc = 'shelf: ' .. a.desc })
    end
  end
end

return M
