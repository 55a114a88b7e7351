-- shelf.edit: edit buffers. `shelf://prompt/<title> [<id>]` and
-- `shelf://block/<title> [<id>]` (and `shelf://new/<prompt|block|temp>/<n>`
-- before a new item exists) are
-- `acwrite` markdown buffers: a small header of fields between '---' lines,
-- then the content. `:w` sends the change to shelfd; the buffer stays
-- modified until the backend confirms. Changes made elsewhere reload an
-- unmodified buffer and never overwrite unsaved edits silently.
local config = require('shelf.config')
local display = require('shelf.display')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local tree = require('shelf.tree')
local ui = require('shelf.ui')

local M = {}

local ns = vim.api.nvim_create_namespace('shelf_edit')

-- buf -> { kind=, id=, base= (the item as last loaded or saved), temporary=,
-- project_id= (new items), saving= {ticket, tick}, conflict=, deleted=,
-- pending= (waiting for shelfd's first load) }
local bufs = {}
local new_count = 0
local new_opts = {} -- buffer name -> options for a new item's template

M.fields = {
  prompt = { 'title', 'description', 'tags', 'folder' },
  block = { 'title', 'tags', 'folder' },
}

-- ---- names ----------------------------------------------------------------------
-- An item's buffer is named `shelf://prompt/<title> [<id>]`, so Neovim's
-- own messages and :ls say which item it is; <id> is as much of the id as
-- tells it apart (ids.lua). `shelf://prompt/<whole id>` names it too (and
-- is renamed once loaded).

--- Parse a shelf:// name: { kind=, id= } for items (id: the whole id or its
--- start), { kind=, new=true, temporary= } for new ones, { tab=true } for
--- the knowledge tab, or nil.
function M.parse_name(name)
  if name == 'shelf://knowledge' then
    return { tab = true }
  elseif name == 'shelf://builder' then
    return { builder = true }
  end
  local what = name:match('^shelf://new/(%a+)/%d+$')
  if what == 'prompt' or what == 'block' then
    return { kind = what, new = true }
  elseif what == 'temp' then
    return { kind = 'block', new = true, temporary = true }
  end
  local kind, rest = name:match('^shelf://(%a+)/(.+)$')
  if kind ~= 'prompt' and kind ~= 'block' then
    return nil
  end
  -- Ids are UUIDs from shelf and the web app, but another client of a
  -- SQLite file may write any text: anything without blanks, brackets or '/'.
  local id = rest:match('%[([^%s%[%]/]+)%]$') or rest:match('^([^%s%[%]/]+)$')
  if id then
    return { kind = kind, id = id }
  end
  return nil
end

-- A title as part of a buffer name: one line, at most 40 characters.
local function name_title(title)
  local t = vim.trim(tostring(title or ''):gsub('%c', ' '):gsub('%s+', ' '))
  if vim.fn.strchars(t) > 40 then
    t = vim.fn.strcharpart(t, 0, 39) .. '…'
  end
  return t
end

--- The buffer name of an item (`title`: its title, if known).
function M.name(kind, id, title)
  local item = title == nil and mirror.item(kind, id) or nil
  local t = name_title(title or (item and item.title))
  if t == '' then
    return string.format('shelf://%s/%s', kind, id)
  end
  return string.format('shelf://%s/%s [%s]', kind, t, require('shelf.ids').short(kind, id))
end

-- The buffer with exactly this name (bufnr() would read it as a pattern).
local function buffer_named(name)
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(buf) == name then
      return buf
    end
  end
  return nil
end

--- The loaded buffer editing item `id` of `kind`, or nil.
function M.buffer_of(kind, id)
  for buf, b in pairs(bufs) do
    if b.kind == kind and b.id == id and vim.api.nvim_buf_is_valid(buf) and vim.api.nvim_buf_is_loaded(buf) then
      return buf
    end
  end
  return nil
end

-- Give `buf` the name `name`, dropping the unlisted buffer that renaming
-- leaves behind with the old one.
local function rename(buf, name)
  local old = vim.api.nvim_buf_get_name(buf)
  if old == name or buffer_named(name) then
    return
  end
  vim.api.nvim_buf_set_name(buf, name)
  local stale = buffer_named(old)
  if stale and stale ~= buf and not vim.api.nvim_buf_is_loaded(stale) then
    pcall(vim.api.nvim_buf_delete, stale, { force = true })
  end
end

-- ---- text <-> fields --------------------------------------------------------------
-- A header line is `name: value`; an empty field is just `name:`. Tags are
-- separated by commas, or by spaces when there is no comma (a single tag
-- with a space is written with a comma after it). A description of several
-- lines continues on the lines below it, each indented by two spaces (an
-- empty line stays empty). A title is one line: line breaks in a title made
-- elsewhere show as spaces. A field whose header text is left as it was
-- shown is not sent, so such a title keeps its line breaks. What another
-- client wrote shows through shelf.display (one line a field, an empty
-- title as '(untitled)', only tags that are strings): left as shown, the
-- value stays as it was.

-- The field of the item a header name stands for.
local field_key = { title = 'title', description = 'description', tags = 'tags', folder = 'project_id' }

local function join_tags(tags)
  tags = display.tags(tags)
  local text = table.concat(tags, ', ')
  if #tags == 1 and text:find('%s') then
    return text .. ','
  end
  return text
end

local function header_line(name, value)
  return value == '' and (name .. ':') or (name .. ': ' .. value)
end

--- The buffer lines for an item (or a new item's fields).
function M.render_lines(kind, item)
  local lines = { '---' }
  for _, f in ipairs(M.fields[kind]) do
    if f == 'tags' then
      table.insert(lines, header_line(f, join_tags(item.tags)))
    elseif f == 'folder' then
      table.insert(lines, header_line(f, item.project_id and tree.folder_ref(item.project_id) or ''))
    elseif f == 'description' then
      local parts = vim.split(display.text(item.description) or '', '\n', { plain = true })
      -- Each line of it as one line (a CR, a tab), without trailing spaces.
      for i, p in ipairs(parts) do
        parts[i] = (display.line(p):gsub('%s+$', ''))
      end
      table.insert(lines, header_line(f, parts[1]))
      for i = 2, #parts do
        table.insert(lines, parts[i] == '' and '' or ('  ' .. parts[i]))
      end
    else
      table.insert(lines, header_line(f, display.title(item[f])))
    end
  end
  table.insert(lines, '---')
  -- No empty content line: what is typed below the header (`o` on the
  -- closing '---') is the content's first line, not its second.
  if (item.content or '') ~= '' then
    vim.list_extend(lines, vim.split(item.content, '\n', { plain = true }))
  end
  return lines
end

local function parse_tags(text, lnum)
  text = vim.trim(text)
  if text == '' then
    return {}
  end
  if text:find('[%[%]{}"]') then
    return nil, string.format("line %d: malformed tags '%s': write them as a, b, c (no brackets or quotes)",
      lnum, text)
  end
  local parts = {}
  if text:find(',') then
    -- One comma at the end is allowed (a single tag with a space).
    for part in (text:gsub(',%s*$', '') .. ','):gmatch('([^,]*),') do
      table.insert(parts, vim.trim(part))
    end
  else
    parts = vim.split(text, '%s+')
  end
  local tags = {}
  for _, t in ipairs(parts) do
    if t:sub(1, 1) == '#' then
      t = t:sub(2)
    end
    if t == '' then
      return nil, string.format("line %d: malformed tags '%s': an empty tag between commas", lnum, text)
    end
    table.insert(tags, t)
  end
  return tags
end

-- The header's fields as written: name -> { text, line }, a description's
-- lines joined with '\n'; or nil and a message naming the line.
local function header_texts(kind, lines, close, closed)
  local known = {}
  for _, f in ipairs(M.fields[kind]) do
    known[f] = true
  end
  local out = {}
  local desc -- the lines of a description being read
  local function end_description()
    if desc then
      while #desc > 1 and desc[#desc] == '' do
        table.remove(desc)
      end
      out.description.text = table.concat(desc, '\n')
      desc = nil
    end
  end
  for i = 2, close - 1 do
    local line = lines[i]
    if desc and (line:match('^%s') or line == '') then
      -- Two spaces of indent mark a description line; more are kept.
      table.insert(desc, (line:gsub('^%s%s?', '')))
    elseif vim.trim(line) ~= '' then
      end_description()
      local key, value = line:match('^%s*([%w_]+)%s*:%s?(.*)$')
      if not key then
        if not closed then
          return nil, string.format("line %d: '%s' is not a field, and the header has no closing '---' line: "
            .. 'put one between the fields and the content', i, line)
        end
        return nil, string.format("line %d: '%s' is not a field; write 'name: value'", i, line)
      end
      key = key:lower()
      if not known[key] then
        return nil, string.format("line %d: unknown field '%s'; a %s has: %s", i, key, ui.kind_names[kind],
          table.concat(M.fields[kind], ', '))
      end
      if out[key] then
        return nil, string.format("line %d: '%s' is given twice (first on line %d)", i, key, out[key].line)
      end
      out[key] = { text = vim.trim(value), line = i }
      if key == 'description' then
        desc = { out[key].text }
      end
    end
  end
  end_description()
  if not closed then
    return nil, string.format("line %d: the header has no closing '---' line: put one between the fields and "
      .. 'the content', #lines)
  end
  return out
end

--- Parse buffer lines into fields { title, description, tags, project_id
--- (vim.NIL for none), content }, or nil and a message naming the line.
--- Also returns the header's text of each field, as written.
function M.parse(kind, lines)
  if lines[1] ~= '---' then
    return nil, "line 1: the header must start with a line '---'"
  end
  local close
  for i = 2, #lines do
    if lines[i] == '---' then
      close = i
      break
    end
  end
  local header, err = header_texts(kind, lines, close or #lines + 1, close ~= nil)
  if not header then
    return nil, err
  end
  local out, texts = {}, {}
  for key, h in pairs(header) do
    local value, i = h.text, h.line
    texts[key] = value
    if key == 'title' then
      if value == '' then
        return nil, string.format('line %d: the title is empty; every %s needs one', i, ui.kind_names[kind])
      end
      out.title = value
    elseif key == 'description' then
      out.description = value ~= '' and value or vim.NIL
    elseif key == 'tags' then
      local tags, terr = parse_tags(value, i)
      if not tags then
        return nil, terr
      end
      out.tags = tags
    elseif key == 'folder' then
      if value == '' then
        out.project_id = vim.NIL
      else
        local folder, ferr = tree.find_folder(value, tree.folder_type[kind])
        if not folder then
          local known, slash = {}, value:find('/', 1, true) ~= nil
          for _, f in ipairs(tree.folder_paths(tree.folder_type[kind])) do
            table.insert(known, tree.folder_ref(f.item.id) or f.path)
            slash = slash or (f.item.name or ''):find('/', 1, true) ~= nil
          end
          -- Where a slash is involved, how to write one inside a name.
          return nil, string.format('line %d: %s; known: %s (empty for Unsorted)%s', i, ferr,
            #known > 0 and table.concat(known, ', ') or 'none',
            slash and "; '/' separates folders, '\\/' is a slash inside a name" or '')
        end
        out.project_id = folder.id
      end
    end
  end
  if not out.title then
    return nil, "line 2: there is no 'title:' line; every " .. ui.kind_names[kind] .. ' needs a title'
  end
  out.content = table.concat(vim.list_slice(lines, close + 1), '\n')
  return out, nil, texts
end

-- The header text of each field as the buffer showed it when loaded or
-- last saved (nil: not known).
local function shown_texts(kind, lines)
  local _, _, texts = M.parse(kind, lines)
  return texts
end

-- `fields` with each field the user left as shown (`texts` equal to
-- `shown`) set back to its value in `base`: what the header shows of it may
-- differ from the value (a title's line breaks).
local function keep_untouched(fields, texts, shown, base)
  if not (shown and base) then
    return fields
  end
  local out = {}
  for k, v in pairs(fields) do
    out[k] = v
  end
  for name, key in pairs(field_key) do
    if out[key] ~= nil and texts[name] ~= nil and texts[name] == shown[name] then
      local v = base[key]
      if v == nil or v == '' then
        v = key == 'tags' and {} or vim.NIL
      end
      out[key] = v
    end
  end
  return out
end

-- The fields of `fields` that differ from `base`.
local function changes(fields, base)
  local out = {}
  local function norm(v)
    if v == vim.NIL or v == '' then
      return nil
    end
    return v
  end
  for k, v in pairs(fields) do
    if not vim.deep_equal(norm(v), norm(base[k])) then
      if k == 'tags' and #v == 0 and (base.tags == nil or (type(base.tags) == 'table' and #base.tags == 0)) then
        -- no tags either way
      else
        out[k] = v
      end
    end
  end
  return out
end

-- ---- buffer contents --------------------------------------------------------------

local function highlight_header(buf)
  vim.api.nvim_buf_clear_namespace(buf, ns, 0, -1)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, 12, false)
  if lines[1] ~= '---' then
    return
  end
  vim.api.nvim_buf_set_extmark(buf, ns, 0, 0, { end_col = #lines[1], hl_group = 'ShelfEditRule' })
  for i = 2, #lines do
    if lines[i] == '---' then
      vim.api.nvim_buf_set_extmark(buf, ns, i - 1, 0, { end_col = #lines[i], hl_group = 'ShelfEditRule' })
      return
    end
    local key = lines[i]:match('^([%w_]+:)')
    if key then
      vim.api.nvim_buf_set_extmark(buf, ns, i - 1, 0, { end_col = #key, hl_group = 'ShelfEditField' })
    end
  end
end

-- Replace the buffer's text (not undoable, like reading a file), keeping
-- each window's cursor where it was as far as the new text allows.
local function set_text(buf, lines)
  local cursors = {}
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_buf(win) == buf then
      cursors[win] = vim.api.nvim_win_get_cursor(win)
    end
  end
  local ul, ma = vim.bo[buf].undolevels, vim.bo[buf].modifiable
  vim.bo[buf].undolevels = -1
  vim.bo[buf].modifiable = true -- (a buffer still loading is not)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = ma
  vim.bo[buf].undolevels = ul
  vim.bo[buf].modified = false
  for win, c in pairs(cursors) do
    local row = math.min(c[1], #lines)
    pcall(vim.api.nvim_win_set_cursor, win, { row, c[2] })
  end
  highlight_header(buf)
end

local function label(b)
  if b.base and b.base.title ~= nil then
    return "'" .. display.title(b.base.title, display.max.message) .. "'"
  end
  return 'the new ' .. (b.temporary and 'temporary block' or ui.kind_names[b.kind])
end

-- What an edit buffer shows while its item is read: the header from the
-- mirror (the description as the mirror has it: its start) and a line
-- saying the content is loading. The buffer is not modifiable meanwhile.
local function loading_lines(kind, sum)
  local lines = M.render_lines(kind, vim.tbl_extend('force', sum or { title = '(loading…)' }, { content = '' }))
  if lines[#lines] == '' then
    lines[#lines] = '(loading…)'
  else
    table.insert(lines, '(loading…)')
  end
  return lines
end

-- Fill the buffer with the item as read (full), or say why there is none.
local function loaded(buf, b, full, err)
  if not full then
    if not client.status().ready and client.running() then
      -- shelfd is still loading the library (a folder is known only then):
      -- on_changed reads it again once it has.
      b.pending = 'ready'
      return
    end
    b.pending = nil
    if err and not err:find('^there is no') then
      -- Not read (the backend could not be reached, ...): nothing to edit
      -- yet, and nothing that :w could take for a deleted item.
      b.failed = true
      set_text(buf, vim.list_extend(loading_lines(b.kind, mirror.item(b.kind, b.id)),
        { '(could not load it: ' .. err .. '; :e! tries again)' }))
      return ui.error(string.format('cannot open the %s: %s; :e! tries again', ui.kind_names[b.kind], err))
    end
    b.deleted = true
    vim.bo[buf].modifiable = true
    set_text(buf, {})
    ui.error(string.format('there is no %s with id %s%s', ui.kind_names[b.kind], b.id,
      err and not err:find('^there is no') and (' (' .. err .. ')') or ''))
    return
  end
  b.pending, b.failed = nil, nil
  b.base = full
  b.temporary = full.temporary or nil
  b.conflict, b.deleted = nil, nil
  vim.bo[buf].modifiable = true
  local lines = M.render_lines(b.kind, full)
  b.shown = shown_texts(b.kind, lines)
  set_text(buf, lines)
  -- The name says the title (also after :edit shelf://prompt/<id>).
  rename(buf, M.name(b.kind, b.id, full.title))
end

-- Load an existing item into its buffer. The content is read by shelfd
-- (a query, never a blocking request): the buffer shows the header from the
-- mirror at once, marked loading and not modifiable (:w refuses), and fills
-- in when the item comes. A reload of a buffer already showing the item
-- keeps its text meanwhile. A newer load replaces one under way.
local function load(buf, b)
  local id, why = require('shelf.ids').resolve(b.kind, b.id)
  if why == 'several' then
    b.deleted = true
    set_text(buf, {})
    return ui.error(string.format("several %ss have an id starting with '%s'; write more of it", ui.kind_names[b.kind],
      b.id))
  end
  b.id = id or b.id
  b.pending = true
  if not b.base then
    set_text(buf, loading_lines(b.kind, mirror.item(b.kind, b.id)))
  end
  vim.bo[buf].modifiable = false
  local token = {}
  b.reading = token
  client.get_async(b.kind, b.id, function(err, full)
    if b.reading ~= token or bufs[buf] ~= b or not vim.api.nvim_buf_is_valid(buf) then
      return
    end
    b.reading = nil
    loaded(buf, b, full, err)
  end)
end

local function setup_buffer(buf, b)
  bufs[buf] = b
  vim.bo[buf].buftype = 'acwrite'
  vim.bo[buf].swapfile = false
  vim.bo[buf].filetype = 'markdown'
  if not b.autocmds then
    b.autocmds = true
    ui.autocmd('QuitPre', { buffer = buf, desc = 'shelf: let :wq wait for the save',
      callback = function()
        M._quit_pre(buf)
      end })
    ui.autocmd('BufWipeout', { buffer = buf, desc = 'shelf: forget the edit buffer',
      callback = function()
        bufs[buf] = nil
      end })
    ui.autocmd({ 'TextChanged', 'InsertLeave' }, { buffer = buf, desc = 'shelf: highlight the header fields',
      callback = function()
        highlight_header(buf)
      end })
  end
end

--- BufReadCmd for shelf://* (also :e! in an edit buffer).
function M.read_cmd(args)
  local buf = args.buf
  local what = M.parse_name(args.match or vim.api.nvim_buf_get_name(buf))
  if not what then
    ui.error("'" .. tostring(args.match) .. "' is not a shelf:// name this plugin knows "
      .. '(shelf://knowledge, shelf://prompt/<id>, shelf://block/<id>, or with a title: shelf://prompt/<title> [<id>])')
    return
  end
  if what.tab then
    return require('shelf.tab').read_cmd(buf)
  elseif what.builder then
    return require('shelf.builder.view').read_cmd(buf)
  end
  ui.highlights_setup()
  if not ui.ensure_helper() then
    return
  end
  local old = bufs[buf] or {}
  local id = what.id
  if id and old.id and old.kind == what.kind and old.id:sub(1, #id):lower() == id:lower() then
    id = old.id -- :e! (the name has only the start of the id)
  end
  local full_id = id and require('shelf.ids').resolve(what.kind, id)
  local other = full_id and M.buffer_of(what.kind, full_id)
  if other and other ~= buf then
    -- Already open under its title (this was `:edit shelf://prompt/<id>`):
    -- show that buffer instead, once this read is over.
    vim.schedule(function()
      for _, win in ipairs(vim.api.nvim_list_wins()) do
        if vim.api.nvim_win_get_buf(win) == buf and vim.api.nvim_buf_is_valid(other) then
          vim.api.nvim_win_set_buf(win, other)
        end
      end
      if vim.api.nvim_buf_is_valid(buf) and #vim.fn.win_findbuf(buf) == 0 then
        pcall(vim.api.nvim_buf_delete, buf, { force = true })
      end
    end)
    return
  end
  -- A new item's id outlives :e!, so a create already sent stays one item.
  local b = { kind = what.kind, id = id, autocmds = old.autocmds, create_id = old.create_id }
  setup_buffer(buf, b)
  if what.new then
    local o = new_opts[vim.api.nvim_buf_get_name(buf)] or {}
    b.temporary = what.temporary or nil
    b.project_id = o.project_id
    local lines = M.render_lines(b.kind, { title = '', project_id = o.project_id, content = '' })
    -- The one trailing space: typing A goes straight into the title.
    lines[2] = 'title: '
    set_text(buf, lines)
    return
  end
  load(buf, b)
end

-- ---- saving -------------------------------------------------------------------------

-- How long :w waits for the backend's confirmation before it leaves the
-- save to go on in the background (ms). SQLite confirms in milliseconds, so
-- :w is done when it returns and :wq, ZZ, :x, a <Cmd>wq<CR> map or
-- vim.cmd('wq') quit by any route; Neovim quits only when the write left the
-- buffer unmodified. 0: never wait (tests that need the save in flight).
M.write_wait = 1500

local writing = 0 -- :w commands waiting for their confirmation
local later = {}  -- messages held until they are over

local function flush()
  if writing > 0 then
    return
  end
  local msgs = later
  later = {}
  for _, f in ipairs(msgs) do
    f()
  end
end

-- A message from :w, shown once the write command is over: said inside it,
-- an error comes as "Error detected while processing BufWriteCmd
-- Autocommands" and a hit-enter prompt.
local function tell(say, msg)
  table.insert(later, function()
    say(msg)
  end)
  vim.schedule(flush)
end

local function finish_save(buf, b, tick, err, item, was_new)
  b.saving = nil
  if not vim.api.nvim_buf_is_valid(buf) then
    return
  end
  if err then
    return tell(ui.error, string.format('%s; the buffer keeps your text and stays modified; :w tries again', err))
  end
  b.base = item
  b.id = item.id
  b.create_id = nil
  b.temporary = item.temporary or nil
  b.conflict, b.deleted = nil, nil
  if was_new then
    new_opts[vim.api.nvim_buf_get_name(buf)] = nil
  end
  -- A new item gets its name; a new title shows in it.
  rename(buf, M.name(b.kind, item.id, item.title))
  if vim.api.nvim_buf_get_changedtick(buf) == tick then
    vim.bo[buf].modified = false
  end
  tell(ui.notify, string.format("saved %s '%s'", item.temporary and 'temporary block' or ui.kind_names[b.kind],
    ui.label(item)))
end

--- BufWriteCmd for edit buffers: send the change and wait up to
--- M.write_wait for the confirmation; past that it comes in the background.
function M.write_cmd(args)
  local buf = args.buf
  local b = bufs[buf]
  if not b then
    return tell(ui.error, 'this buffer was not opened by shelf.nvim; nothing was saved')
  end
  if b.pending then
    return tell(ui.warn, 'the item is still loading; nothing was saved')
  end
  if b.failed then
    return tell(ui.warn, 'the item could not be loaded; :e! tries again (nothing was saved)')
  end
  if b.saving then
    return tell(ui.warn, 'the previous :w is not confirmed yet; try again in a moment (nothing was sent)')
  end
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local parsed, perr, texts = M.parse(b.kind, lines)
  perr = perr or require('shelf.utf8').check_lines(lines)
  if perr then
    return tell(ui.error, perr .. '; nothing was sent, your text is kept')
  end
  -- What to send for the fields left as shown: their value, not the text.
  local fields = keep_untouched(parsed, texts, b.shown, b.base)
  local tick = vim.api.nvim_buf_get_changedtick(buf)
  local method, call_args, was_new
  if not b.id or (b.deleted and not mirror.item(b.kind, b.id)) then
    if b.deleted and not ui.confirm(string.format('%s %s. Create it again from this buffer?', label(b),
        ({ here = 'was deleted', other = 'is not in the library now open' })[b.deleted] or 'was deleted elsewhere'),
        '&Recreate') then
      return tell(ui.notify, 'not saved; the buffer keeps your text')
    end
    fields.temporary = b.temporary
    if fields.project_id == vim.NIL then
      fields.project_id = nil
    end
    if fields.description == vim.NIL then
      fields.description = nil
    end
    -- One id per new item, kept until a create is confirmed: a :w after one
    -- whose answer was lost (a timeout, a restarted shelfd) is the same
    -- create, so the item is stored once.
    b.create_id = b.create_id or require('shelf').new_id()
    fields.id = b.create_id
    method, call_args, was_new = 'create', { b.kind, fields }, true
  else
    local current = mirror.item(b.kind, b.id)
    local changed_elsewhere = current and b.base and current.updated_at ~= b.base.updated_at
    local diff = changes(fields, b.base or {})
    if changed_elsewhere then
      if not ui.confirm(string.format('%s changed elsewhere since you opened it. Overwrite that version with '
          .. 'this buffer?', label(b)), '&Overwrite') then
        return tell(ui.notify, 'not saved; :e! loads the newer version (your edits would be lost)')
      end
      diff = fields
    end
    if next(diff) == nil then
      vim.bo[buf].modified = false
      return tell(ui.notify, 'no changes to save')
    end
    method, call_args = 'update', { b.kind, b.id, diff }
  end
  b.saving = { tick = tick }
  b.saving.ticket = client.call(method, call_args, function(err, item)
    if not err then
      -- The item saved is what these header texts show from now on.
      b.shown = texts
    end
    finish_save(buf, b, tick, err, item, was_new)
  end)
  if M.write_wait <= 0 then
    return
  end
  writing = writing + 1
  -- pcall: the count must come down whatever happens meanwhile.
  local _, ok = pcall(vim.wait, M.write_wait, function()
    return b.saving == nil
  end, 5)
  writing = writing - 1
  vim.schedule(flush)
  if not ok and b.saving then
    -- Said at once: a :wq that did not quit says why.
    tell(ui.warn, string.format('still saving (not confirmed after %.1f s): the buffer stays modified until it '
      .. 'is, so :wq and ZZ stop here; :q now waits for it', M.write_wait / 1000))
  end
end

-- :w|q and a :q typed quickly after :w: the quit waits for the save in
-- flight instead of failing with E37.
function M._quit_pre(buf)
  local b = bufs[buf]
  if b and b.saving then
    M._wait_for_save(buf)
  end
end

function M._wait_for_save(buf)
  local b = bufs[buf]
  local timeout = config.get().edit.quit_timeout
  writing = writing + 1
  local _, ok = pcall(vim.wait, timeout, function()
    return b.saving == nil
  end, 10)
  writing = writing - 1
  vim.schedule(flush)
  if not ok then
    tell(ui.warn, string.format('the save was not confirmed within %d ms; the buffer stays open and modified',
      timeout))
  end
end

-- ---- changes made elsewhere ---------------------------------------------------------

--- Note that the items `ids` of `kind` are being deleted here (true) or
--- that the delete failed (false), so their buffers are not told the item
--- went elsewhere: an unmodified one is closed, a modified one keeps the text.
function M.deleting(kind, ids, yes)
  local set = {}
  for _, id in ipairs(ids) do
    set[id] = true
  end
  for _, b in pairs(bufs) do
    if b.kind == kind and b.id and set[b.id] then
      b.deleting = yes or nil
    end
  end
end

-- Close an edit buffer whose item is gone: its windows show another buffer.
local function close_buffer(buf)
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_buf(win) == buf then
      vim.api.nvim_win_call(win, function()
        local alt = vim.fn.bufnr('#')
        if alt > 0 and alt ~= buf and vim.fn.buflisted(alt) == 1 then
          vim.api.nvim_win_set_buf(win, alt)
        else
          vim.cmd('enew')
        end
      end)
    end
  end
  pcall(vim.api.nvim_buf_delete, buf, { force = true })
end

local function on_changed()
  local change = mirror.last_change or {}
  local up, del = {}, {}
  for _, id in ipairs(change.upserted or {}) do
    up[id] = true
  end
  for _, id in ipairs(change.deleted or {}) do
    del[id] = true
  end
  local closing = {}
  for buf, b in pairs(bufs) do
    if vim.api.nvim_buf_is_valid(buf) and vim.api.nvim_buf_is_loaded(buf) and b.id then
      local ours = change.reset or change.kind == b.kind
      if b.pending then
        if b.pending == 'ready' and client.status().ready then
          load(buf, b)
        end
      elseif ours and not b.saving then
        local current = mirror.item(b.kind, b.id)
        local modified = vim.bo[buf].modified
        if not current and (del[b.id] or change.reset) then
          if b.deleting and not modified then
            table.insert(closing, buf)
          elseif b.deleting then
            b.deleted, b.deleting = 'here', nil
            ui.warn(string.format('%s was deleted; this buffer keeps your unsaved text, and :w creates it again',
              label(b)))
          elseif not b.deleted then
            b.deleted = change.other and 'other' or true
            if change.other then
              -- setup() named another database or project: nothing was deleted.
              ui.warn(string.format('%s is not in the library now open; this buffer keeps the text, and :w '
                .. 'creates it there', label(b)))
            else
              ui.warn(string.format('%s was deleted elsewhere; this buffer keeps the text, and :w creates it '
                .. 'again', label(b)))
            end
          end
        elseif current and (up[b.id] or change.reset) and b.base and current.updated_at ~= b.base.updated_at then
          if not modified then
            load(buf, b)
          elseif not b.conflict then
            b.conflict = true
            ui.warn(string.format('%s changed elsewhere; your unsaved edits are kept, :w asks before '
              .. 'overwriting it, :e! loads the new version', label(b)))
          end
        end
      end
    end
  end
  for _, buf in ipairs(closing) do
    close_buffer(buf)
  end
end

-- ---- opening ------------------------------------------------------------------------

-- Go to the window an item should open in (config edit.open).
local function goto_window(win)
  local how = config.get().edit.open
  if how == 'tab' then
    vim.cmd('tabnew')
    return
  end
  local tab = require('shelf.tab')
  local cur = vim.api.nvim_get_current_win()
  local in_tab = vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(cur)) == tab.name
  if in_tab and not win then
    -- :Shelf edit typed in the tab: the window it was entered from.
    win = tab.previous_window()
  end
  if win and vim.api.nvim_win_is_valid(win) then
    vim.api.nvim_set_current_win(win)
  elseif in_tab then
    -- No other window: make one beside the tab, with the user's options
    -- (not the tab's, which a split copies), the tab keeping its width.
    local left = config.get().tab.position ~= 'right'
    vim.cmd(left and 'botright vsplit' or 'topleft vsplit')
    tab.reset_window_options()
    tab.restore_width()
    return
  end
  if how == 'split' then
    vim.cmd('split')
  elseif how == 'vsplit' then
    vim.cmd('vsplit')
  end
end

local function edit(name, win, existing)
  goto_window(win)
  existing = existing or buffer_named(name)
  if existing and vim.api.nvim_buf_is_loaded(existing) then
    vim.api.nvim_win_set_buf(0, existing)
    return existing
  end
  local ok, err = pcall(vim.cmd, 'edit ' .. vim.fn.fnameescape(name))
  if not ok then
    -- Typically E37: the window's buffer has unsaved changes.
    local ok2, err2 = pcall(vim.cmd, 'split ' .. vim.fn.fnameescape(name))
    if not ok2 then
      ui.error('cannot open ' .. name .. ': ' .. tostring(err2 or err))
      return nil
    end
  end
  return vim.api.nvim_get_current_buf()
end

--- Open an item in an edit buffer. opts.win: the window to use.
---@param kind 'prompt'|'block'
---@param id string
function M.open(kind, id, opts)
  M.setup_autocmds()
  opts = opts or {}
  if kind ~= 'prompt' and kind ~= 'block' then
    return ui.warn('only prompts and context blocks open in a buffer; folders are renamed with r in the tab')
  end
  -- The item's buffer, also when its name still has an old title.
  return edit(M.name(kind, id), opts.win, M.buffer_of(kind, id))
end

--- Open a buffer for a new item; it is created on :w.
--- opts: { project_id=, temporary=, win=, content= }
---@param kind 'prompt'|'block'
function M.new(kind, opts)
  M.setup_autocmds()
  opts = opts or {}
  new_count = new_count + 1
  local name = string.format('shelf://new/%s/%d', opts.temporary and 'temp' or kind, new_count)
  new_opts[name] = { project_id = opts.project_id }
  local buf = edit(name, opts.win)
  if buf and opts.content then
    local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
    local head = vim.list_slice(lines, 1, #M.fields[kind] + 2)
    vim.list_extend(head, vim.split(opts.content, '\n', { plain = true }))
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, head)
  end
  if buf then
    -- Ready to type the title.
    local l = vim.api.nvim_buf_get_lines(buf, 1, 2, false)[1] or ''
    pcall(vim.api.nvim_win_set_cursor, 0, { 2, #l })
  end
  return buf
end

--- The state of an edit buffer (tests, integrations), or nil.
function M.info(buf)
  local b = bufs[buf or vim.api.nvim_get_current_buf()]
  if not b then
    return nil
  end
  return { kind = b.kind, id = b.id, saving = b.saving ~= nil, conflict = b.conflict or false,
    deleted = b.deleted and true or false, temporary = b.temporary or false, create_id = b.create_id,
    loading = b.pending ~= nil }
end

local registered = false

--- Register the shelf:// read and write autocmds (once). plugin/shelf.lua
--- may have done it already with the same callbacks.
function M.setup_autocmds()
  if registered then
    return
  end
  registered = true
  if vim.fn.exists('#BufReadCmd#shelf://*') == 0 then
    ui.autocmd('BufReadCmd', { pattern = 'shelf://*', desc = 'shelf: load a shelf:// buffer',
      callback = function(args)
        M.read_cmd(args)
      end })
  end
  if vim.fn.exists('#BufWriteCmd#shelf://*') == 0 then
    ui.autocmd('BufWriteCmd', { pattern = 'shelf://*', desc = 'shelf: save a shelf:// buffer',
      callback = function(args)
        M.write_cmd(args)
      end })
  end
  ui.autocmd('User', { pattern = 'ShelfChanged', desc = 'shelf: reload edit buffers changed elsewhere',
    callback = on_changed })
  ui.autocmd('WinClosed', { desc = 'shelf: the knowledge tab back to its width after an edit window closed',
    callback = function(args)
      if bufs[args.buf] and package.loaded['shelf.tab'] then
        vim.schedule(function()
          require('shelf.tab').restore_width()
        end)
      end
    end })
end

M.setup_autocmds()

return M
