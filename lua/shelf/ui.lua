-- shelf.ui: what the views (tab, edit, picker, insert) share: the one
-- augroup, the default highlights, messages and User events, confirmations,
-- and short text for titles and ages. No state of its own beyond the augroup id.
local M = {}

local group

--- The plugin's one augroup for the views (created once, never cleared, so
--- each view adds its autocmds to it without removing the others').
function M.augroup()
  if not group then
    group = vim.api.nvim_create_augroup('shelf', { clear = true })
  end
  return group
end

--- Add an autocmd to the shelf augroup; every autocmd says what it is for.
function M.autocmd(event, opts)
  opts.group = M.augroup()
  return vim.api.nvim_create_autocmd(event, opts)
end

-- Highlight groups: name -> definition. All `default = true`, so a colour
-- scheme or the user's own :highlight wins.
M.highlights = {
  ShelfHeader = { link = 'Title' },
  ShelfHeaderInfo = { link = 'Comment' },
  ShelfSpinner = { link = 'WarningMsg' },
  ShelfError = { link = 'ErrorMsg' },
  ShelfFilter = { link = 'Search' },
  ShelfSection = { link = 'Title' },
  ShelfFolder = { link = 'Directory' },
  ShelfCount = { link = 'Number' },
  ShelfPrompt = { link = 'Normal' },
  ShelfBlock = { link = 'Normal' },
  ShelfTemporary = { link = 'Special' },
  ShelfUnsorted = { link = 'Comment' },
  ShelfHint = { link = 'Comment' },
  ShelfMarker = { link = 'NonText' },
  ShelfEditField = { link = 'Identifier' },
  ShelfEditRule = { link = 'NonText' },
  ShelfBuilderGone = { link = 'Comment' },
  ShelfBuilderMark = { link = 'Special' },
}

local hl_done = false

--- Define the default highlights (again after a colour scheme change).
function M.highlights_setup()
  if hl_done then
    return
  end
  hl_done = true
  local function apply()
    for name, def in pairs(M.highlights) do
      local d = vim.deepcopy(def)
      d.default = true
      vim.api.nvim_set_hl(0, name, d)
    end
  end
  apply()
  M.autocmd('ColorScheme', { desc = 'shelf: restore default highlights', callback = apply })
end

--- A message to the user: 'shelf: ' and what happened.
function M.notify(msg, level)
  vim.notify('shelf: ' .. msg, level or vim.log.levels.INFO)
end

--- The same, later on the main loop: for messages from inside a push or a
--- job callback (the default level here is ERROR).
function M.notify_later(msg, level)
  vim.schedule(function()
    M.notify(msg, level or vim.log.levels.ERROR)
  end)
end

--- Run the `User <pattern>` autocmds; data() is their data on Neovim 0.8+
--- (0.7 has none). A failing listener is said, not raised into the caller.
function M.fire(pattern, data)
  local opts = { pattern = pattern, modeline = false }
  if vim.fn.has('nvim-0.8') == 1 then
    opts.data = data()
  end
  local ok, err = pcall(vim.api.nvim_exec_autocmds, 'User', opts)
  if not ok then
    M.notify_later('a ' .. pattern .. ' handler failed: ' .. tostring(err))
  end
end

function M.error(msg)
  M.notify(msg, vim.log.levels.ERROR)
end

function M.warn(msg)
  M.notify(msg, vim.log.levels.WARN)
end

local help_ns

--- A view's key help in a float: lines[1] is its title; q, <Esc> and g?
--- close it, and so does leaving it. Returns its buffer.
function M.key_help(lines)
  help_ns = help_ns or vim.api.nvim_create_namespace('shelf_key_help')
  local width = 0
  for _, l in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(l) + 1)
  end
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].bufhidden = 'wipe'
  vim.api.nvim_buf_set_extmark(buf, help_ns, 0, 0, { end_col = #lines[1], hl_group = 'ShelfHeader' })
  local win = vim.api.nvim_open_win(buf, true, {
    relative = 'editor', row = 1, col = 2, style = 'minimal', border = 'rounded',
    width = math.min(width, vim.o.columns - 4), height = math.min(#lines, vim.o.lines - 4),
  })
  local function close()
    pcall(vim.api.nvim_win_close, win, true)
  end
  for _, k in ipairs({ 'q', '<Esc>', 'g?' }) do
    vim.keymap.set('n', k, close, { buffer = buf, nowait = true, desc = 'shelf: close the key help' })
  end
  M.autocmd('BufLeave', { buffer = buf, once = true, desc = 'shelf: close the key help', callback = close })
  return buf
end

-- The key confirm() takes for a choice: the character after '&', else the
-- first one, without case.
local function hotkey(choice)
  return (choice:match('&(.)') or choice:sub(1, 1)):lower()
end

--- Ask a yes/no question; true when the first choice was taken. Uses
--- confirm(), which also works from typeahead (mappings). Cancel is the
--- default (<CR>) and has the key c.
---@param question string
---@param yes string the label of the first choice, with & before its key (not c)
function M.confirm(question, yes)
  -- confirm() takes the first choice whose key was pressed: a second c
  -- would make c mean "yes".
  assert(hotkey(yes) ~= 'c', "shelf: a confirm() choice clashes with Cancel's key c: " .. yes)
  local ok, answer = pcall(vim.fn.confirm, question, yes .. '\n&Cancel', 2)
  return ok and answer == 1
end

-- What input() returns on <Esc> (its `cancelreturn`): text no one types.
local cancelled = '\27shelf: cancelled\27'

--- True while vim.ui.input is Neovim's own (no plugin replaced it).
function M.stock_input()
  local info = debug.getinfo(vim.ui.input, 'S')
  return info ~= nil and info.source:match('vim[/\\]ui%.lua$') ~= nil
end

--- Ask for a line of text: cb(text), '' for an empty answer, or cb(nil) on
--- <Esc>. Where a plugin (dressing, snacks, ...) replaced vim.ui.input, it
--- asks. Neovim 0.7's own vim.ui.input gives nil for an empty answer too,
--- so instead of it input() is asked directly, with a `cancelreturn`.
---@param opts table { prompt=, default= } as for vim.ui.input
---@param cb fun(text: string|nil)
function M.input(opts, cb)
  if not M.stock_input() then
    return vim.ui.input(opts, cb)
  end
  local args = vim.tbl_extend('force', { prompt = 'Input: ' }, opts or {}, { cancelreturn = cancelled })
  -- <C-c> raises "Keyboard interrupt": a cancel too.
  local ok, text = pcall(vim.fn.input, args)
  if not ok or text == cancelled then
    return cb(nil)
  end
  cb(text)
end

--- The name a person knows an item by, as one line of at most `max`
--- display cells (default: short enough for a message).
function M.label(item, max)
  local display = require('shelf.display')
  max = max or display.max.message
  if not item then
    return '?'
  end
  if item.kind == 'project' then
    return display.title(item.name, max, display.unnamed)
  end
  return display.title(item.title, max)
end

--- A size in bytes as people read it: '512 bytes', '3.4 KiB', '5.0 MiB'.
function M.size(n)
  if n < 1024 then
    return n == 1 and '1 byte' or (n .. ' bytes')
  elseif n < 1024 * 1024 then
    return string.format('%.1f KiB', n / 1024)
  end
  return string.format('%.1f MiB', n / (1024 * 1024))
end

--- '1 folder', '2 folders': a count and its word, plural after any count but 1.
function M.plural(n, word)
  return string.format('%d %s%s', n, word, n == 1 and '' or 's')
end

--- What a kind is called in messages.
M.kind_names = { prompt = 'prompt', block = 'context block', project = 'folder' }

--- A stamp to whole seconds since the epoch, or nil: as shelfd gives one
--- (microseconds since the epoch, a number), or an ISO 8601 time
--- ('2026-01-01T10:00:00.000000+00:00', what shelfd passes on of a stamp
--- that is no time it knows). Whole seconds, as os.time() counts: a
--- fraction would make something written 300.4 s ago '4m' until the next
--- second, as os.time() is at most 300 on.
function M.parse_time(s)
  if type(s) == 'number' then
    return math.floor(s / 1e6)
  elseif type(s) ~= 'string' then
    return nil
  end
  local y, mo, d, h, mi, sec = s:match('^(%d+)-(%d+)-(%d+)[T ](%d+):(%d+):(%d+)')
  if not y then
    return nil
  end
  -- Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil):
  -- plain arithmetic, as os.time() costs microseconds per call and the tab
  -- asks for every item's age on each redraw.
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then
    y = y - 1
  end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * (mo > 2 and mo - 3 or mo + 9) + 2) / 5) + tonumber(d) - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  local sign, oh, om = s:match('([%+%-])(%d%d):?(%d%d)$')
  local offset = 0
  if sign then
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == '-' and -1 or 1)
  end
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) - offset
end

--- A short age: 'now', '5m', '3h', '2d', '7w', '1y'.
function M.age(s)
  local t = M.parse_time(s)
  if not t then
    return nil
  end
  return M.age_of(os.time() - t)
end

--- The short age of something `d` seconds old.
function M.age_of(d)
  if d < 60 then
    return 'now'
  elseif d < 3600 then
    return math.floor(d / 60) .. 'm'
  elseif d < 86400 then
    return math.floor(d / 3600) .. 'h'
  elseif d < 86400 * 14 then
    return math.floor(d / 86400) .. 'd'
  elseif d < 86400 * 365 then
    return math.floor(d / (86400 * 7)) .. 'w'
  end
  return math.floor(d / (86400 * 365)) .. 'y'
end

--- Make sure shelfd runs; on failure say why and return false.
function M.ensure_helper()
  local client = require('shelf.client')
  local _, err = client.start()
  if err then
    M.error(err)
    return false
  end
  return true
end

return M
