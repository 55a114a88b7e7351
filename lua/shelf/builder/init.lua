-- shelf.builder: the prompt builder (:help shelf-builder). Your text and an
-- ordered list of context blocks, assembled into one prompt by the web app's
-- rule: the text, then each block's content, joined by one blank line.
-- It lives in this Neovim, not in shelfd, so it outlasts its window, a
-- :Shelf restart and a crash of shelfd. Each block's content is kept here:
-- read through shelfd (a query answered later, never a blocking request)
-- when the block is added, and again when the library says the block
-- changed. Until it is in, the block counts as loading: text(cb), insert,
-- yank and save wait for every block's content. The buffer shelf://builder is builder/view.lua; using the
-- result (insert, yank, save) is here.
local config = require('shelf.config')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local ui = require('shelf.ui')

local M = {}

---@class shelf.BuilderItem
---@field kind 'block'
---@field id string
---@field title string
---@field size integer bytes of content
---@field chars integer characters of content
---@field lines integer lines of content
---@field temporary boolean
---@field gone boolean deleted from the library: left out of text()

-- An entry: { kind = 'block', id, title, temporary, updated_at, content,
-- size, chars, newlines, gone, renders = { line texts shown for it } }.
local S = {
  text = { '' },   -- your text, as the buffer's lines
  entries = {},    -- the blocks, in order
  by_id = {},      -- id -> entry of `entries`
  removed = {},    -- id -> entry removed lately: a line put back (p, u) finds it
  removed_order = {},
  from_win = nil,  -- the window :Shelf build was called from (insert goes there)
}
M._state = S

local max_removed = 500

-- ---- content and weight ---------------------------------------------------------

-- Lines as an editor counts them: a line break at the end starts no line.
local function line_count(newlines, text)
  if text == '' then
    return 0
  end
  return newlines + (text:sub(-1) == '\n' and 0 or 1)
end

local function measure(e)
  local c = e.content or ''
  e.size = #c
  e.chars = vim.fn.strchars(c)
  local _, n = c:gsub('\n', '')
  e.newlines = n
  e.lines = line_count(n, c)
end

-- Callbacks waiting for every block's content (M.when_loaded).
local waiting = {}

-- Prompts being read to go into your text.
local prompts_reading = 0

local function loading()
  if prompts_reading > 0 then
    return true
  end
  for _, e in ipairs(S.entries) do
    if e.reading then
      return true
    end
  end
  return false
end

local function run_waiting()
  if loading() or #waiting == 0 then
    return
  end
  local cbs = waiting
  waiting = {}
  for _, cb in ipairs(cbs) do
    cb()
  end
end

-- Read the block's content through shelfd (asynchronously): cb(true) once
-- it is in the entry, cb(false, why) when it cannot be read (the entry
-- keeps what it had). A newer read replaces one under way.
local function fetch(e, cb)
  local token = {}
  e.reading = token
  client.get_async('block', e.id, function(err, full)
    if e.reading ~= token then
      return
    end
    e.reading = nil
    if full then
      e.content = full.content or ''
      e.title = full.title or ''
      e.temporary = full.temporary == true
      e.updated_at = full.updated_at
      measure(e)
    end
    if cb then
      cb(full ~= nil, err or (not full and 'it no longer exists') or nil)
    end
    run_waiting()
  end)
end

--- Run cb() once every block's content is in (at once when it is).
function M.when_loaded(cb)
  table.insert(waiting, cb)
  if not loading() then
    vim.schedule(run_waiting)
  end
end

-- Your text as it counts in the prompt: the lines, without blank lines at
-- the end (a blank line before the blocks is only spacing); only blanks is
-- no text at all.
local function text_of(lines)
  local last = #lines
  while last > 0 and vim.trim(lines[last]) == '' do
    last = last - 1
  end
  if last == 0 then
    return ''
  end
  return table.concat(lines, '\n', 1, last)
end

local function view()
  return package.loaded['shelf.builder.view']
end

-- The buffer's edits become the model's before anything reads it.
local function sync()
  local v = view()
  if v then
    v.sync(false)
  end
end

--- The assembled prompt: your text, then each block's content (blocks
--- deleted from the library left out), joined by one blank line ("\n\n").
--- Empty parts contribute nothing. Block contents are read asynchronously:
--- with `cb`, cb(text) runs once every block's content is in (use this);
--- without, the text as it is now (a block still loading is left out).
---@param cb fun(text: string)|nil
---@return string|nil
function M.text(cb)
  if cb then
    sync()
    return M.when_loaded(function()
      cb(M.text())
    end)
  end
  sync()
  local parts = {}
  local own = text_of(S.text)
  if own ~= '' then
    table.insert(parts, own)
  end
  for _, e in ipairs(S.entries) do
    if not e.gone and not e.reading and (e.content or '') ~= '' then
      table.insert(parts, e.content)
    end
  end
  return table.concat(parts, '\n\n')
end

--- What the assembled prompt weighs: { chars, lines, bytes, tokens, blocks,
--- gone }; tokens is an estimate, chars / 4.
function M.weight()
  sync()
  local own = text_of(S.text)
  local chars, bytes, newlines, parts = 0, 0, 0, 0
  if own ~= '' then
    chars, bytes, parts = vim.fn.strchars(own), #own, 1
    local _, n = own:gsub('\n', '')
    newlines = n
  end
  local gone, last = 0, own
  for _, e in ipairs(S.entries) do
    if e.gone then
      gone = gone + 1
    elseif e.size > 0 then
      chars, bytes, newlines, parts = chars + e.chars, bytes + e.size, newlines + e.newlines, parts + 1
      last = e.content
    end
  end
  if parts > 1 then
    -- The blank line between two parts.
    chars, bytes, newlines = chars + 2 * (parts - 1), bytes + 2 * (parts - 1), newlines + 2 * (parts - 1)
  end
  return { chars = chars, bytes = bytes, lines = line_count(newlines, last),
    tokens = math.ceil(chars / 4), blocks = #S.entries, gone = gone }
end

--- The blocks in order (copies).
---@return shelf.BuilderItem[]
function M.items()
  sync()
  local out = {}
  for _, e in ipairs(S.entries) do
    table.insert(out, { kind = 'block', id = e.id, title = e.title, size = e.size, chars = e.chars,
      lines = e.lines, temporary = e.temporary == true, gone = e.gone == true })
  end
  return out
end

-- ---- changes ----------------------------------------------------------------------

-- The knowledge tab marks the blocks in the builder: the lines whose mark
-- changed are redrawn (only when the tab has been loaded).
local marked = {}
local function redraw_tab_marks()
  local keys = {}
  for id in pairs(marked) do
    if not S.by_id[id] then
      marked[id] = nil
      table.insert(keys, 'block:' .. id)
    end
  end
  for id in pairs(S.by_id) do
    if not marked[id] then
      marked[id] = true
      table.insert(keys, 'block:' .. id)
    end
  end
  if #keys > 0 and package.loaded['shelf.tab'] then
    local ok, err = pcall(require('shelf.tab').redraw, keys)
    if not ok then
      ui.error('the knowledge tab could not show the builder marks: ' .. tostring(err))
    end
  end
end

require('shelf.tab.render').add_mark('builder', function(node)
  if node.type == 'item' and node.kind == 'block' and S.by_id[node.id] then
    return config.get().tab.icons.builder, 'ShelfBuilderMark'
  end
end)

local function fire()
  redraw_tab_marks()
  local opts = { pattern = 'ShelfBuilder', modeline = false }
  if vim.fn.has('nvim-0.8') == 1 then
    local w = M.weight()
    opts.data = { blocks = w.blocks, chars = w.chars }
  end
  local ok, err = pcall(vim.api.nvim_exec_autocmds, 'User', opts)
  if not ok then
    ui.error('a ShelfBuilder handler failed: ' .. tostring(err))
  end
end

-- The model changed here (not in the buffer): show it, then tell.
local function changed()
  local v = view()
  if v then
    v.render()
  end
  fire()
end

local function forget(e)
  S.by_id[e.id] = nil
  S.removed[e.id] = e
  table.insert(S.removed_order, e.id)
  if #S.removed_order > max_removed then
    local old = table.remove(S.removed_order, 1)
    if not S.by_id[old] then
      S.removed[old] = nil
    end
  end
end

--- An entry by id: in the builder, or removed lately (view.lua).
function M._entry(id)
  return S.by_id[id] or S.removed[id]
end

-- A removed entry back: its content again if the block changed meanwhile.
local function revive(e)
  S.removed[e.id] = nil
  local now = mirror.item('block', e.id)
  if now then
    e.gone = false
    e.title = now.title or e.title
    if now.updated_at ~= e.updated_at or now.size ~= e.size then
      fetch(e, changed)
    end
  elseif client.status().ready then
    e.gone = true
  end
  return e
end

--- The buffer's reading of the builder (view.lua): your text and the ids of
--- the block lines, in order. Returns true when that changed anything.
function M._apply(text, ids)
  local entries, by_id = {}, {}
  for _, id in ipairs(ids) do
    local e = S.by_id[id] or (S.removed[id] and revive(S.removed[id]))
    if e and not by_id[id] then
      by_id[id] = e
      table.insert(entries, e)
    end
  end
  local same = #entries == #S.entries and vim.deep_equal(text, S.text)
  for i = 1, #entries do
    same = same and entries[i] == S.entries[i]
  end
  if same then
    return false
  end
  for _, e in ipairs(S.entries) do
    if not by_id[e.id] then
      forget(e)
    end
  end
  S.text, S.entries, S.by_id = text, entries, by_id
  fire()
  return true
end

-- ---- the API ------------------------------------------------------------------------

local function count_text(n)
  return n == 1 and '1 block' or (n .. ' blocks')
end

-- Put text at the end of your text, after a blank line when there is some.
local function append_text(content)
  sync()
  local lines = vim.split(content, '\n', { plain = true })
  local own = text_of(S.text)
  if own == '' then
    S.text = lines
  else
    local keep = vim.split(own, '\n', { plain = true })
    table.insert(keep, '')
    vim.list_extend(keep, lines)
    S.text = keep
  end
end

--- Add a context block at the end (a prompt: its content goes into your
--- text, as the web app's "use this prompt"). Returns true, or nil and why
--- (also said to the user unless opts.quiet).
---@param kind 'block'|'prompt'
---@param id string
---@param opts table|nil { quiet = true }
function M.add(kind, id, opts)
  opts = opts or {}
  local function fail(msg)
    if not opts.quiet then
      ui.warn(msg)
    end
    if opts.done then
      opts.done(msg)
    end
    return nil, msg
  end
  if kind ~= 'block' and kind ~= 'prompt' then
    return fail('only context blocks and prompts go into the builder, not ' .. tostring(kind))
  end
  if type(id) ~= 'string' then
    return fail('builder.add: id must be a string')
  end
  local _, err = client.start()
  if err then
    return fail(err)
  end
  if kind == 'prompt' then
    -- Its text goes in once read; the user may edit the builder meanwhile.
    prompts_reading = prompts_reading + 1
    client.get_async('prompt', id, function(gerr, full)
      prompts_reading = prompts_reading - 1
      if not full then
        fail('cannot use the prompt: ' .. (gerr or 'it no longer exists'))
        return run_waiting()
      end
      append_text(full.content or '')
      changed()
      if not opts.quiet then
        ui.notify(string.format("put the prompt '%s' into the builder's text", ui.label(full)))
      end
      if opts.done then
        opts.done(nil)
      end
      run_waiting()
    end)
    return true
  end
  sync()
  if S.by_id[id] then
    return fail(string.format("'%s' is in the builder already", ui.label(S.by_id[id])))
  end
  local now = mirror.item('block', id)
  if not now and client.status().ready then
    return fail('cannot add the context block: it no longer exists')
  end
  -- In the list at once (title and size from the mirror), its content
  -- read meanwhile; a block that cannot be read leaves again.
  local e = S.removed[id] or { kind = 'block', id = id, size = 0, chars = 0, newlines = 0, lines = 0 }
  if now then
    e.title = now.title or e.title or ''
    e.temporary = now.temporary == true
  end
  e.title = e.title or id
  S.removed[id] = nil
  e.gone = false
  table.insert(S.entries, e)
  S.by_id[id] = e
  fetch(e, function(ok, ferr)
    if not ok and S.by_id[id] == e and not e.content then
      for i, x in ipairs(S.entries) do
        if x == e then
          table.remove(S.entries, i)
          break
        end
      end
      S.by_id[id] = nil
      changed()
      return fail('cannot add the context block: ' .. ferr)
    end
    changed()
    if opts.done then
      opts.done(ok and nil or ferr)
    end
  end)
  changed()
  if not opts.quiet then
    ui.notify(string.format("added '%s' to the builder (%s; :Shelf build shows it)", ui.label(e),
      count_text(#S.entries)))
  end
  return true
end

--- Remove a block: remove(id), remove('block', id) or remove(position).
--- Returns true when it was there.
function M.remove(a, b)
  sync()
  local id = b or a
  if type(a) == 'number' then
    id = S.entries[a] and S.entries[a].id
  end
  local e = id and S.by_id[id]
  if not e then
    return false
  end
  for i, x in ipairs(S.entries) do
    if x == e then
      table.remove(S.entries, i)
      break
    end
  end
  forget(e)
  changed()
  return true
end

--- True when the block is in the builder.
function M.has(id)
  sync()
  return S.by_id[id] ~= nil
end

--- Add the block, or remove it when it is there (the tab's key).
function M.toggle(kind, id)
  if kind == 'block' and M.has(id) then
    local e = S.by_id[id]
    M.remove(id)
    return ui.notify(string.format("removed '%s' from the builder (%s left)", ui.label(e), count_text(#S.entries)))
  end
  return M.add(kind, id)
end

--- Replace your text.
---@param text string
function M.set_text(text)
  S.text = vim.split(text or '', '\n', { plain = true })
  changed()
end

--- Empty the builder: your text and the blocks. In its buffer, u brings
--- them back.
function M.clear()
  sync()
  for _, e in ipairs(S.entries) do
    forget(e)
  end
  S.text, S.entries, S.by_id = { '' }, {}, {}
  changed()
end

--- Open the builder's buffer (:Shelf build).
function M.open()
  return require('shelf.builder.view').open()
end

-- ---- the library changes ------------------------------------------------------------

local function on_library_changed()
  local change = mirror.last_change or {}
  if not (change.reset or change.kind == 'block') or #S.entries == 0 then
    return
  end
  local affected = {}
  if change.reset then
    affected = S.entries
  else
    for _, id in ipairs(change.upserted or {}) do
      table.insert(affected, S.by_id[id])
    end
    for _, id in ipairs(change.deleted or {}) do
      table.insert(affected, S.by_id[id])
    end
  end
  local gone, back, any = {}, {}, false
  for _, e in pairs(affected) do
    local now = mirror.item('block', e.id)
    if not now then
      if not e.gone then
        e.gone, any = true, true
        table.insert(gone, "'" .. ui.label(e) .. "'")
      end
    else
      if e.gone then
        e.gone, any = false, true
        table.insert(back, "'" .. ui.label(now) .. "'")
      end
      if now.updated_at ~= e.updated_at or now.size ~= e.size or now.title ~= e.title
        or (now.temporary == true) ~= (e.temporary == true) then
        -- Kept as it was if shelfd cannot say (it would have to be running).
        fetch(e, changed)
      end
    end
  end
  if #gone > 0 then
    -- After a reset (a new shelfd, another library) it may not have been a delete.
    local what = change.reset and (#gone == 1 and ' is not in the library' or ' are not in the library')
      or (#gone == 1 and ' was deleted' or ' were deleted')
    ui.warn(string.format('%s%s: left out of the builder\'s prompt (%s marked; dd there removes %s)',
      table.concat(gone, ', '), what, #gone == 1 and 'its line is' or 'their lines are', #gone == 1 and 'it' or 'them'))
  end
  if #back > 0 then
    ui.notify(string.format('%s back in the library: in the builder\'s prompt again', table.concat(back, ', ')))
  end
  if any then
    changed()
  end
end

ui.autocmd('User', { pattern = 'ShelfChanged', desc = 'shelf: keep the prompt builder in step with the library',
  callback = on_library_changed })

-- ---- using the result ---------------------------------------------------------------

-- A normal window to put the prompt in: the one :Shelf build came from,
-- else another window of this tab page that is not the builder or the tab.
local function target_window()
  local function usable(win)
    if not (win and vim.api.nvim_win_is_valid(win)) then
      return false
    end
    local name = vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win))
    return name ~= 'shelf://builder' and name ~= 'shelf://knowledge'
      and vim.api.nvim_win_get_config(win).relative == ''
  end
  if usable(S.from_win) then
    return S.from_win
  end
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if usable(win) then
      return win
    end
  end
  return nil
end

M._target_window = target_window

--- Remember where the builder was opened from (view.lua).
function M._came_from(win)
  S.from_win = win
end

local function in_builder()
  return vim.api.nvim_buf_get_name(0) == 'shelf://builder'
end

--- Insert the assembled prompt: in the builder, at the cursor of the window
--- you came from; elsewhere at the cursor. {{placeholders}} are asked for
--- once each (|shelf-insert|).
function M.insert()
  -- Where it goes is taken now; the text once every block's content is in.
  local ins = require('shelf.insert')
  local target
  if in_builder() then
    local win = target_window()
    if not win then
      return ui.error('no window to insert into: open a buffer beside the builder, then try again')
    end
    target = { win = win, buf = vim.api.nvim_win_get_buf(win), cursor = vim.api.nvim_win_get_cursor(win),
      insert = false }
  else
    target = ins.capture()
  end
  M.text(function(text)
    if text == '' then
      return ui.warn('the builder is empty: nothing to insert (:Shelf build add adds blocks)')
    end
    local names = config.get().insert.placeholders and ins.placeholders(text) or {}
    if #names == 0 then
      return ins.put(target, text)
    end
    ins.ask(names, function(values)
      ins.put(target, ins.fill(text, values))
    end)
  end)
end

--- Yank the assembled prompt, exactly, into `reg`: by default the register
--- given to the key ("x), else + where there is a clipboard, else ".
function M.yank(reg)
  if not reg or reg == '' then
    reg = vim.v.register
    if reg == '"' or reg == '' then
      reg = vim.fn.has('clipboard') == 1 and '+' or '"'
    end
  end
  M.text(function(text)
    M._yank_text(text, reg)
  end)
end

function M._yank_text(text, reg)
  if text == '' then
    return ui.warn('the builder is empty: nothing to yank')
  end
  -- Characterwise: the register holds the prompt byte for byte, with no
  -- line break added at the end.
  local ok, err = pcall(vim.fn.setreg, reg, text, 'c')
  if not ok then
    return ui.error(string.format('cannot yank into register %s: %s', reg, tostring(err)))
  end
  ui.notify(string.format('yanked the prompt (%d characters) into register %s', M.weight().chars, reg))
end

--- Open a new saved prompt holding the assembled prompt; :w creates it.
function M.save()
  local from_builder = in_builder()
  M.text(function(text)
    if text == '' then
      return ui.warn('the builder is empty: nothing to save')
    end
    local win
    if from_builder then
      win = target_window()
      if not win then
        vim.cmd('belowright split')
        win = vim.api.nvim_get_current_win()
      end
    end
    require('shelf.edit').new('prompt', { content = text, win = win })
  end)
end

return M
