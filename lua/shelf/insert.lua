-- shelf.insert: put a prompt or context block into the text at the cursor
-- (charwise for one line, linewise for several; one undo step), asking for
-- each {{name}} placeholder of a prompt first; and store a selection as a new
-- item (:'<,'>Shelf save prompt|block|temp).
local config = require('shelf.config')
local client = require('shelf.client')
local ui = require('shelf.ui')

local M = {}

-- {{name}}: a name is anything but braces and newlines, spaces trimmed.
local placeholder = '{{%s*([^{}\n]-)%s*}}'

--- The placeholder names in `text`, each once, in order of appearance.
function M.placeholders(text)
  local out, seen = {}, {}
  for name in text:gmatch(placeholder) do
    if name ~= '' and not seen[name] then
      seen[name] = true
      table.insert(out, name)
    end
  end
  return out
end

--- `text` with every {{name}} replaced by values[name] (others kept).
function M.fill(text, values)
  return (text:gsub(placeholder, function(name)
    return values[name]
  end))
end

-- Ask for each name in turn; cb(values) when all are answered, nothing when
-- the user presses Esc on any of them. Also the builder's (M.ask).
local function ask(names, cb)
  local values = {}
  local function step(i)
    if i > #names then
      return cb(values)
    end
    local display = require('shelf.display')
    ui.input({ prompt = display.line(names[i], display.max.message) .. ': ' }, function(value)
      if value == nil then
        return ui.notify('insert cancelled; nothing was inserted')
      end
      values[names[i]] = value
      step(i + 1)
    end)
  end
  step(1)
end

M.ask = ask

-- Where the text goes: captured before any question is asked, because a
-- picker or input may move focus or leave insert mode. Also the builder's
-- (M.capture).
local function capture()
  local mode = vim.api.nvim_get_mode().mode
  local cursor = vim.api.nvim_win_get_cursor(0)
  -- After i_CTRL-O at the end of a line the cursor sits on the last
  -- character, while typing goes on after it: there the '^ mark is.
  local eol = false
  if mode == 'niI' or mode == 'niR' or mode == 'niV' then
    local mark = vim.api.nvim_buf_get_mark(0, '^')
    eol = mark[1] == cursor[1] and mark[2] > cursor[2]
  end
  return {
    win = vim.api.nvim_get_current_win(),
    buf = vim.api.nvim_get_current_buf(),
    cursor = cursor,
    insert = mode:sub(1, 1) == 'i' or mode == 'niI' or mode:sub(1, 1) == 'R',
    eol = eol,
  }
end

M.capture = capture

--- Put `text` at `target` (from capture()): one change, so one undo step.
function M.put(target, text)
  if not vim.api.nvim_buf_is_valid(target.buf) then
    return ui.error('the buffer to insert into is gone; nothing was inserted')
  end
  if not vim.bo[target.buf].modifiable then
    return ui.error("the buffer is not modifiable ('nomodifiable'); nothing was inserted")
  end
  if vim.api.nvim_win_is_valid(target.win) and vim.api.nvim_win_get_buf(target.win) == target.buf then
    vim.api.nvim_set_current_win(target.win)
  else
    return ui.error('the window to insert into is gone; nothing was inserted')
  end
  pcall(vim.api.nvim_win_set_cursor, target.win, target.cursor)
  if vim.bo[target.buf].readonly then
    -- As Vim's W10 says when you type into one (a change through the API
    -- gets no warning of its own).
    ui.warn("the buffer is read-only ('readonly'): inserted all the same; :w! writes it")
  end
  local lines = vim.split(text, '\n', { plain = true })
  if #lines > 1 and lines[#lines] == '' then
    table.remove(lines)
  end
  local row = target.cursor[1]
  if #lines > 1 then
    local current = vim.api.nvim_buf_get_lines(target.buf, row - 1, row, false)[1] or ''
    if vim.trim(current) == '' then
      -- An empty line is replaced, not pushed down.
      vim.api.nvim_buf_set_lines(target.buf, row - 1, row, false, lines)
      vim.api.nvim_win_set_cursor(target.win, { row + #lines - 1, 0 })
    else
      vim.api.nvim_put(lines, 'l', true, true)
    end
    return
  end
  local current = vim.api.nvim_buf_get_lines(target.buf, row - 1, row, false)[1] or ''
  -- In normal mode the text goes after the cursor's character, like `p`; in
  -- insert mode, where the cursor is between characters, before it (after
  -- it when CTRL-O left the end of the line for it).
  local after = #current > 0 and (not target.insert or target.eol)
  -- The cursor ends just after the text, where typing goes on.
  vim.api.nvim_put(lines, 'c', after, true)
end

-- Inserts waiting for their content (tests wait for none).
M._pending = 0

-- Marks the place chosen for an insert while the content is read.
local ns = vim.api.nvim_create_namespace('shelf_insert')

--- Insert an item's content at the cursor of the current window (asking for
--- placeholders of a prompt first). Public: require('shelf').insert().
--- The content is read without blocking Neovim, so it arrives a moment
--- later: it goes where the cursor was when the insert was asked for, even
--- if the cursor moved meanwhile (an extmark follows edits made meanwhile,
--- so nothing typed in between is overwritten).
---@param kind 'prompt'|'block'
---@param id string
function M.insert(kind, id)
  if kind ~= 'prompt' and kind ~= 'block' then
    return ui.warn('only prompts and context blocks can be inserted')
  end
  local target = capture()
  -- Left gravity: what is typed at that place meanwhile stays after it.
  local ok, mark = pcall(vim.api.nvim_buf_set_extmark, target.buf, ns, target.cursor[1] - 1, target.cursor[2],
    { right_gravity = false })
  M._pending = M._pending + 1
  client.get_async(kind, id, function(err, full)
    M._pending = M._pending - 1
    if ok and vim.api.nvim_buf_is_valid(target.buf) then
      local pos = vim.api.nvim_buf_get_extmark_by_id(target.buf, ns, mark, {})
      if pos[1] then
        target.cursor = { pos[1] + 1, pos[2] }
      end
      pcall(vim.api.nvim_buf_del_extmark, target.buf, ns, mark)
    end
    if not full then
      return ui.error(string.format('cannot insert the %s: %s', ui.kind_names[kind], err or 'it no longer exists'))
    end
    local content = full.content or ''
    local names = (kind == 'prompt' and config.get().insert.placeholders) and M.placeholders(content) or {}
    if #names == 0 then
      return M.put(target, content)
    end
    ask(names, function(values)
      M.put(target, M.fill(content, values))
    end)
  end)
end

--- :Shelf insert [title]: by title, or chosen from all prompts and blocks.
function M.command(args)
  if not ui.ensure_helper() then
    return
  end
  local picker = require('shelf.picker')
  local text = table.concat(args, ' ')
  local tab = require('shelf.tab')
  if vim.api.nvim_buf_get_name(0) == tab.name then
    -- Typed in the knowledge tab: into the window it was entered from, as p.
    local win = tab.previous_window()
    if not win then
      return ui.warn('no window to insert into; open a file next to the tab first')
    end
    vim.api.nvim_set_current_win(win)
  end
  local target = capture()
  local function go(e)
    -- The picker may have moved the cursor: insert where the command was given.
    if vim.api.nvim_win_is_valid(target.win) then
      vim.api.nvim_set_current_win(target.win)
      pcall(vim.api.nvim_win_set_cursor, target.win, target.cursor)
    end
    M.insert(e.kind, e.id)
  end
  if text == '' then
    return picker.choose({ 'prompt', 'block' }, 'Insert:', go)
  end
  picker.find(text, { 'prompt', 'block' }, 'Insert:', go)
end

-- The text of a command's range: exact characters when it is the last
-- characterwise visual selection, else whole lines. Also the builder's.
local function range_text(opts)
  local buf = vim.api.nvim_get_current_buf()
  local l1, l2 = opts.line1, opts.line2
  local s, e = vim.fn.getpos("'<"), vim.fn.getpos("'>")
  if vim.fn.visualmode() == 'v' and s[2] == l1 and e[2] == l2 then
    local lines = vim.api.nvim_buf_get_lines(buf, l1 - 1, l2, false)
    local last = lines[#lines]
    -- '> is the first byte of the last character; take the whole character.
    local ecol = math.min(e[3], #last)
    local char = vim.fn.strpart(last, ecol - 1, 1, true)
    ecol = ecol - 1 + math.max(#char, 1)
    lines[#lines] = last:sub(1, ecol)
    lines[1] = lines[1]:sub(s[3])
    return table.concat(lines, '\n')
  end
  return table.concat(vim.api.nvim_buf_get_lines(buf, l1 - 1, l2, false), '\n')
end

M.range_text = range_text

--- :'<,'>Shelf save prompt|block|temp: store the selection as a new item.
function M.save_selection(what, opts)
  if what ~= 'prompt' and what ~= 'block' and what ~= 'temp' then
    return ui.error("save what? Use :'<,'>Shelf save prompt, block or temp")
  end
  if (opts.range or 0) == 0 then
    return ui.error("select the text first, then :'<,'>Shelf save " .. what .. '; nothing was saved')
  end
  if not ui.ensure_helper() then
    return
  end
  local content = range_text(opts)
  local utf8 = require('shelf.utf8')
  if utf8.first_invalid(content) then
    -- Named where the buffer shows it.
    local lines = vim.api.nvim_buf_get_lines(0, opts.line1 - 1, opts.line2, false)
    return ui.error((utf8.check_lines(lines, opts.line1) or 'the selection is not UTF-8 text') .. '; nothing was saved')
  end
  local first = ''
  for line in content:gmatch('[^\n]+') do
    if vim.trim(line) ~= '' then
      first = vim.trim(line)
      break
    end
  end
  local kind = what == 'prompt' and 'prompt' or 'block'
  local name = what == 'temp' and 'temporary block' or ui.kind_names[kind]
  ui.input({ prompt = 'Title of the new ' .. name .. ': ', default = first:sub(1, 60) }, function(title)
    if not title or vim.trim(title) == '' then
      return ui.notify('not saved (no title)')
    end
    local fields = { title = vim.trim(title), content = content }
    if what == 'temp' then
      fields.temporary = true
    end
    client.call('create', { kind, fields }, function(err, item)
      if err then
        return ui.error(err .. '; the selection is still in your buffer, try again')
      end
      ui.notify(string.format("saved the selection as %s '%s'%s", name, ui.label(item),
        what == 'temp' and '' or ' (in Unsorted)'))
    end)
  end)
end

return M
