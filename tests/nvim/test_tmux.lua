-- The knowledge tab in a real terminal: a Neovim in tmux on the same
-- database, its screen read with capture-pane. Also the real confirm()
-- dialogs of a folder delete and of :w after a delete elsewhere, which a
-- headless Neovim cannot show.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local mirror = require('shelf.mirror')

local socket = 'shelf-test-' .. vim.fn.getpid()

local function tmux(args)
  local cmd = { 'tmux', '-L', socket, '-f', '/dev/null' }
  vim.list_extend(cmd, args)
  local out = vim.fn.system(cmd)
  return out, vim.v.shell_error
end

local function screen()
  return (tmux({ 'capture-pane', '-p', '-t', 'shelf' }))
end

local function wait_screen(text, what)
  local last = ''
  local ok = vim.wait(15000, function()
    last = screen()
    return last:find(text, 1, true) ~= nil
  end, 50)
  T.ok(ok, (what or text) .. ' on the screen:\n' .. last)
  return last
end

T.test('the tab renders in a real terminal, and d asks with a real dialog', function()
  T.ok(vim.fn.executable('tmux') == 1, 'tmux is installed')
  local db = T.fresh()
  local docs = U.create('project', { type = 'datasets', name = 'Docs' })
  U.create('project', { type = 'datasets', name = 'API', parent_id = docs.id })
  U.create('block', { title = 'Architecture', content = 'a', project_id = docs.id, tags = { 'core' } })
  U.create('block', { title = 'Style guide', content = 's', project_id = docs.id })
  local commit = U.create('prompt', { title = 'Commit message', content = 'c' })

  local root = vim.env.SHELF_ROOT
  local setup = string.format("lua require('shelf').setup({ sqlite = { path = %q }, helper = { log = %q } })",
    db, T.path('tmux-shelfd.log'))
  local nvim = table.concat({
    vim.fn.shellescape(vim.v.progpath) .. ' -u NONE -i NONE -n',
    "--cmd 'set rtp^=" .. root .. "'",
    "--cmd 'runtime plugin/shelf.lua'",
    vim.fn.shellescape('+' .. setup),
    "'+Shelf'",
  }, ' ')
  local _, code = tmux({ 'new-session', '-d', '-s', 'shelf', '-x', '100', '-y', '30', nvim })
  T.eq(0, code, 'tmux started')
  local ok, err = pcall(function()
    local s = wait_screen('Style guide', 'the tree')
    T.ok(s:find(' Shelf  sqlite', 1, true), 'the header:\n' .. s)
    T.ok(s:find('▾ Prompts (1)', 1, true), 'the prompts section:\n' .. s)
    T.ok(s:find('▾ 📁 Docs (2)', 1, true), 'the folder with its count:\n' .. s)
    T.ok(s:find('Architecture  #core now', 1, true), 'an item with its hint:\n' .. s)
    T.ok(s:find('shelf://knowledge', 1, true), 'the tab window\'s status line:\n' .. s)
    -- Everything of the tab sits in the left 40 columns.
    for line in s:gmatch('[^\n]+') do
      local col = line:find('Architecture', 1, true)
      if col then
        T.ok(vim.fn.strdisplaywidth(line:sub(1, col)) < 40, 'inside the side window: ' .. line)
      end
    end
    tmux({ 'send-keys', '-t', 'shelf', ':call search("Docs")', 'Enter' })
    tmux({ 'send-keys', '-t', 'shelf', 'd' })
    s = wait_screen('(D)elete, [C]ancel', 'the choices, Cancel the default')
    T.ok(s:find("Delete folder 'Docs' and everything in it: 1 folder and 2 context blocks?", 1, true),
      'the question:\n' .. s)
    tmux({ 'send-keys', '-t', 'shelf', 'd' })
    T.wait(function()
      return mirror.item('project', docs.id) == nil
    end, 'the delete to reach this editor through the database', 15000)
    local after = ''
    T.wait(function()
      after = screen()
      return not after:find('📁 Docs', 1, true)
    end, 'the folder to leave the screen')
    T.ok(after:find('Commit message', 1, true), 'the rest stays:\n' .. after)
    T.ok(after:find("shelf: deleted folder 'Docs'", 1, true), 'the message:\n' .. after)

    -- An edit buffer whose item is deleted elsewhere: :w asks with keys of
    -- their own; c cancels, r creates it again.
    tmux({ 'send-keys', '-t', 'shelf', ':Shelf edit Commit message', 'Enter' })
    wait_screen('title: Commit message', 'the edit buffer')
    -- Its content is read asynchronously: type once it is in.
    T.ok(vim.wait(15000, function() return not screen():find('(loading', 1, true) end, 50),
      'the content loaded:\n' .. screen())
    tmux({ 'send-keys', '-t', 'shelf', 'Goedited here', 'Escape' })
    -- The text in and insert mode left before the delete: leaving insert
    -- mode clears the message line, and with it a warning shown meanwhile.
    T.ok(vim.wait(15000, function()
      local s = screen()
      return s:find('edited here', 1, true) and not s:find('-- INSERT --', 1, true)
    end, 50), 'the text typed, insert mode left:\n' .. screen())
    U.delete('prompt', commit.id)
    wait_screen('was deleted elsewhere', 'the warning')
    tmux({ 'send-keys', '-t', 'shelf', ':w', 'Enter' })
    -- The choices line comes last: the dialog is whole once it is there.
    s = wait_screen('(R)ecreate, [C]ancel', 'a key of its own for each choice')
    T.ok(s:find('Create it again from this buffer?', 1, true), 'the question:\n' .. s)
    tmux({ 'send-keys', '-t', 'shelf', 'c' })
    wait_screen('not saved; the buffer keeps your text', 'Cancel taken')
    tmux({ 'send-keys', '-t', 'shelf', ':w', 'Enter' })
    wait_screen('(R)ecreate, [C]ancel', 'the question again')
    tmux({ 'send-keys', '-t', 'shelf', 'r' })
    T.wait(function()
      return #require('shelf').items('prompt') > 0
    end, 'the prompt created again', 15000)
    wait_screen("saved prompt 'Commit message'", 'the confirmation')
    local prompts = require('shelf').items('prompt')
    T.eq(1, #prompts, 'created once (by r, not by c)')
    T.eq('c\nedited here', T.get('prompt', prompts[1].id).content, 'from the buffer')
  end)
  tmux({ 'kill-server' })
  if not ok then
    error(err, 0)
  end
end)
