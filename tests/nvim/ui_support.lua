-- Helpers shared by the UI tests (test_tab, test_edit, test_picker,
-- test_insert): load with dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua').
-- Keys are typed with nvim_feedkeys as a user would. Questions answer from
-- a queue the test fills: input() gets the answer typed into it, while
-- vim.ui.select and confirm() are replaced (a headless Neovim without a UI
-- answers confirm() with its default), confirm() with 0.7.2's own rules.
local shelf = require('shelf')
local U = {}

--- Create an item through the API and wait for it; fails on error.
function U.create(kind, fields)
  local err, item = T.await(function(cb)
    shelf.create(kind, fields, cb)
  end, 'create ' .. kind)
  T.eq(nil, err, 'create ' .. kind .. ' error')
  return item
end

function U.update(kind, id, fields)
  local err, item = T.await(function(cb)
    shelf.update(kind, id, fields, cb)
  end, 'update ' .. kind)
  T.eq(nil, err, 'update error')
  return item
end

function U.delete(kind, id)
  local err = T.await(function(cb)
    shelf.delete(kind, id, cb)
  end, 'delete ' .. kind)
  T.eq(nil, err, 'delete error')
end

--- Type keys in normal mode, with mappings, and run them to the end.
function U.keys(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'mx', false)
end

-- Answers for the next questions, in order: a string (or false = Esc) for
-- vim.ui.input, a function(items) -> item for vim.ui.select, a key (true:
-- the first choice's, false: Cancel's) for confirm(). Each question asked is
-- recorded in U.asked.
local answers = {}
U.asked = {}
local orig = { input = vim.ui.input, fn_input = vim.fn.input, select = vim.ui.select, confirm = vim.fn.confirm, notify = vim.notify }

function U.answer(...)
  for _, a in ipairs({ ... }) do
    table.insert(answers, a)
  end
end

local function next_answer(what, question)
  table.insert(U.asked, { what = what, question = question })
  if #answers == 0 then
    error('unexpected question (' .. what .. '): ' .. tostring(question), 0)
  end
  return table.remove(answers, 1)
end

-- vim.ui.input stays Neovim's own; the answer is typed into the real
-- input() it (or shelf) calls: the text and <CR> (after <C-u>, which
-- erases a default), or <Esc> for false.
local real_input = vim.fn.input
vim.fn.input = function(opts, ...)
  local a = next_answer('input', type(opts) == 'table' and opts.prompt or opts)
  local keys = a == false and '<Esc>' or ('<C-u>' .. a:gsub('<', '<lt>') .. '<CR>')
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'int', false)
  return real_input(opts, ...)
end

vim.ui.select = function(items, opts, cb)
  local pick = next_answer('select', opts.prompt)
  local labels = vim.tbl_map(opts.format_item or tostring, items)
  local choice = pick and pick(items, labels) or nil
  cb(choice, choice and vim.tbl_contains(items, choice) and nil)
end

-- confirm() as Neovim 0.7.2 answers one key (a headless Neovim cannot show
-- the dialog, so the test says which key the user pressed): each choice's
-- key is the character after '&' (else its first), without case, and the
-- first choice with the key pressed wins; <CR> takes the default, <Esc>
-- gives 0. An answer true presses the key shown for the first choice, false
-- the one shown for the last (Cancel), a string that key.
function U.confirm_key(choices, default, key)
  local labels = vim.split(choices or '&OK', '\n', { plain = true })
  local keys = vim.tbl_map(function(c)
    return (c:match('&(.)') or c:sub(1, 1)):lower()
  end, labels)
  if key == true then
    key = keys[1]
  elseif key == false then
    key = keys[#keys]
  end
  if key == '\r' then
    return default or 1
  elseif key == '\27' then
    return 0
  end
  for i, k in ipairs(keys) do
    if k == key:lower() then
      return i
    end
  end
  error('confirm() ignores the key ' .. key .. ' (choices: ' .. choices .. ')', 0)
end

vim.fn.confirm = function(question, choices, default)
  local key = next_answer('confirm', question)
  U.asked[#U.asked].choices = choices
  return U.confirm_key(choices, default, key)
end

--- A vim.ui.select answer choosing the item whose label contains `text`.
function U.choose(text)
  return function(items, labels)
    for i, l in ipairs(labels) do
      if l:find(text, 1, true) then
        return items[i]
      end
    end
    error('no choice contains ' .. text .. ' in ' .. vim.inspect(labels), 0)
  end
end

--- The unanswered questions must be none (call at the end of a test).
function U.no_answers_left()
  T.eq(0, #answers, 'answers left unused')
end

function U.reset()
  answers = {}
  U.asked = {}
  U.messages = {}
end

-- Messages (vim.notify) since the last reset.
U.messages = {}
function U.notify(msg, level)
  table.insert(U.messages, { msg = msg, level = level })
end
vim.notify = U.notify

--- The message containing `text`, or nil.
function U.message(text)
  for _, m in ipairs(U.messages) do
    if m.msg:find(text, 1, true) then
      return m
    end
  end
  return nil
end

function U.all_messages()
  return table.concat(vim.tbl_map(function(m) return m.msg end, U.messages), '\n')
end

--- Lines of a buffer (default: current).
--- Wait until the edit buffer (default: the current one) has its item's
--- content (edit buffers read it asynchronously).
function U.loaded(buf)
  buf = buf or vim.api.nvim_get_current_buf()
  local edit = require('shelf.edit')
  T.wait(function()
    local info = edit.info(buf)
    return info ~= nil and not info.loading
  end, 'the edit buffer loaded')
end

--- Wait until no insert waits for its content (inserts read it
--- asynchronously).
function U.inserted()
  local ins = package.loaded['shelf.insert']
  T.wait(function()
    return not ins or ins._pending == 0
  end, 'the insert done')
end

function U.lines(buf)
  U.inserted()
  return vim.api.nvim_buf_get_lines(buf or 0, 0, -1, false)
end

--- The line number of the first line of `buf` containing `text`.
function U.find(text, buf)
  for i, l in ipairs(U.lines(buf)) do
    if l:find(text, 1, true) then
      return i
    end
  end
  return nil
end

--- The knowledge tab's buffer and window in this tab page.
function U.tab()
  for _, w in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    local b = vim.api.nvim_win_get_buf(w)
    if vim.api.nvim_buf_get_name(b) == 'shelf://knowledge' then
      return b, w
    end
  end
  return nil
end

--- Put the cursor of the tab on the line containing `text`.
function U.cursor_to(text)
  local buf, win = U.tab()
  T.ok(win, 'the tab is open')
  vim.api.nvim_set_current_win(win)
  local l = U.find(text, buf)
  T.ok(l, "a line with '" .. text .. "' in the tab:\n" .. table.concat(U.lines(buf), '\n'))
  vim.api.nvim_win_set_cursor(win, { l, 0 })
  return l
end

--- The text of the tab's cursor line.
function U.cursor_line()
  local _, win = U.tab()
  return vim.api.nvim_get_current_line(), vim.api.nvim_win_get_cursor(win)[1]
end

--- Close every window but one and wipe every buffer but an empty one.
function U.clean()
  vim.cmd('silent! only!')
  vim.cmd('enew!')
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if b ~= vim.api.nvim_get_current_buf() then
      pcall(vim.api.nvim_buf_delete, b, { force = true })
    end
  end
  U.reset()
end

U.orig = orig
return U
