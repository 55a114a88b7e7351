-- :Shelf login and its messages without a Supabase server (the sign-ins
-- against the stack are tests/nvim/stack_*): key checks, the choices and
-- their completion, the browser URL opened and shown, the listener's answer
-- to a forged redirect, the paste hint, the port taken, cancel, and what a
-- server that cannot be reached does to a paste and to an email sign-in.
local shelf = require('shelf')
local client = require('shelf.client')
local login = require('shelf.login')

local tmp = vim.env.SHELF_TEST_TMP
local unreachable = 'http://127.0.0.1:9' -- discard: nothing listens

local notes = {}
vim.notify = function(msg, level)
  table.insert(notes, { msg = msg, level = level })
end

local function noted(pattern)
  for _, n in ipairs(notes) do
    if n.msg:find(pattern, 1, true) then
      return n
    end
  end
end

local opened = {}
login.opener = function(url)
  table.insert(opened, url)
  return true
end

local function setup(extra)
  client.stop()
  return shelf.setup({
    backend = 'supabase',
    supabase = vim.tbl_extend('force', { url = unreachable, anon_key = 'sb_publishable_test_key',
      redirect_port = 0 }, extra or {}),
    helper = { log = tmp .. '/shelfd.log' },
  })
end

local function b64url(s)
  local out = vim.fn.system({ 'base64', '-w0' }, s):gsub('=+$', ''):gsub('+', '-'):gsub('/', '_')
  return out
end

T.test('a secret key is refused in setup() and from the environment, naming the publishable key', function()
  local service = 'eyJhbGciOiJIUzI1NiJ9.' .. b64url('{"role":"service_role","iss":"supabase"}') .. '.c2ln'
  for _, key in ipairs({ 'sb_secret_abc', service }) do
    notes = {}
    T.eq(false, setup({ anon_key = key }), 'setup refused ' .. key:sub(1, 12))
    T.ok(noted('is a secret key') and noted('sb_publishable_'), 'the message names the publishable key')
  end
  local anon = 'eyJhbGciOiJIUzI1NiJ9.' .. b64url('{"role":"anon"}') .. '.c2ln'
  T.eq('legacy_anon', require('shelf.config').key_kind(anon), 'a legacy anon JWT')
  T.eq('publishable', require('shelf.config').key_kind('sb_publishable_x'), 'a publishable key')
  -- Through the environment: refused when shelfd would start.
  client.stop()
  T.ok(shelf.setup({ backend = 'supabase', supabase = { url = unreachable },
    helper = { log = tmp .. '/shelfd.log' } }), 'setup without a key')
  local old = vim.env.SHELF_SUPABASE_ANON_KEY
  vim.env.SHELF_SUPABASE_ANON_KEY = 'sb_secret_from_env'
  local _, err = client.start()
  vim.env.SHELF_SUPABASE_ANON_KEY = old
  T.ok(err and err:find('$SHELF_SUPABASE_ANON_KEY is a secret key', 1, true), tostring(err))
  client.reset()
end)

T.test('setup() checks providers and the redirect port', function()
  notes = {}
  T.eq(false, setup({ providers = { 'google', 'Not A Name' } }), 'a bad provider')
  T.ok(noted("option 'supabase.providers' holds"), 'named')
  T.eq(false, setup({ redirect_port = 70000 }), 'a bad port')
  T.ok(noted("option 'supabase.redirect_port' must be a port"), 'named')
  T.ok(setup({ providers = { 'github' } }) ~= false, 'a list of one')
  T.eq({ 'github', 'password' }, login.choices(), 'the list replaces the default, not merged')
end)

T.test(':Shelf login offers the providers and password, and completes them', function()
  setup()
  local offered
  local select = vim.ui.select
  vim.ui.select = function(items, opts, cb)
    offered = { items = items, labels = vim.tbl_map(opts.format_item, items) }
    cb(nil)
  end
  vim.cmd('Shelf login')
  vim.ui.select = select
  T.eq({ 'google', 'email', 'password' }, offered.items, 'the default choices')
  T.eq('google (in the browser)', offered.labels[1], 'labelled')
  local words = vim.fn.getcompletion('Shelf login ', 'cmdline')
  T.eq({ 'google', 'email', 'password', 'paste', 'cancel' }, words, 'completion')
  T.eq({ 'password', 'paste' }, vim.fn.getcompletion('Shelf login pa', 'cmdline'), 'completion of pa')
end)

T.test(':Shelf login google opens and shows the URL; a forged redirect ends the sign-in', function()
  setup()
  notes, opened = {}, {}
  vim.cmd('Shelf login google')
  T.wait(function() return #opened == 1 end, 'the browser opened')
  local url = opened[1]
  T.ok(url:find(unreachable .. '/auth/v1/authorize?provider=google&redirect_to=', 1, true), url)
  T.ok(url:find('&code_challenge_method=s256', 1, true), url)
  T.ok(noted('opening ' .. url), 'the URL is shown too')
  T.wait(function() return type(client.status().login) == 'table' end, 'the status says a sign-in waits')
  T.eq('shelf: signing in', shelf.statusline(), 'the statusline too')
  T.ok(table.concat(require('shelf.status').lines(), '\n'):find('signing in%s+google, waiting for the browser'),
    'and :Shelf status')
  local redirect = vim.uri_decode and vim.uri_decode(url:match('redirect_to=([^&]+)'))
    or url:match('redirect_to=([^&]+)'):gsub('%%(%x%x)', function(h) return string.char(tonumber(h, 16)) end)
  local port = redirect:match('^http://127%.0%.0%.1:(%d+)/auth/callback%?state=')
  T.ok(port, redirect)
  T.eq(port, tostring(login.waiting and login.waiting.port), 'the port in use')
  local forged = 'http://127.0.0.1:' .. port .. '/auth/callback?state=forged&code=abc'
  local out = vim.fn.system({ 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', forged })
  T.eq('400', out, 'the browser is refused')
  T.wait(function() return noted('state does not match') end, 'the message')
  T.eq(vim.log.levels.ERROR, noted('state does not match').level, 'an error')
  T.eq(nil, login.waiting, 'nothing waits any more')
  out = vim.fn.system({ 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', forged })
  T.eq('000', out, 'nobody listens')
end)

T.test('no answer in a while: the URL to allow is named and the paste is offered', function()
  setup()
  notes, opened = {}, {}
  login.paste_hint_ms = 300
  local prompts = {}
  local answers = { 'https://app.example/?code=some-code', '' }
  local input = vim.ui.input
  vim.ui.input = function(opts, cb)
    table.insert(prompts, opts.prompt)
    cb(table.remove(answers, 1))
  end
  vim.cmd('Shelf login github')
  T.wait(function() return #prompts == 2 end, 'the paste prompt, twice')
  vim.ui.input = input
  login.paste_hint_ms = 20000
  local port = login.waiting.port
  T.ok(noted('allow http://127.0.0.1:' .. port .. '/** in Supabase'), 'the URL to allow')
  T.ok(prompts[1]:find('Paste the address the browser ended on', 1, true), prompts[1])
  -- The pasted code went to Supabase, which cannot be reached: said, and asked again.
  T.ok(noted('Supabase is unreachable'), 'the exchange failed')
  T.ok(login.waiting ~= nil, 'still waiting for another try')
  T.ok(noted('the sign-in is still waiting: try again'), 'said so')
  T.eq(nil, noted('Signing in failed'), 'a refused paste is not called a failed sign-in')
  vim.cmd('Shelf login cancel')
  T.wait(function() return noted('sign-in cancelled') end, 'cancelled')
  T.eq(nil, login.waiting, 'nothing waits')
end)

T.test("require('shelf').login_oauth opens and shows the URL as :Shelf login does; cb gets the end", function()
  setup()
  notes, opened = {}, {}
  local ended
  local ticket = shelf.login_oauth('gitlab', function(err, user)
    ended = { err = err, user = user }
  end)
  T.ok(ticket, 'a ticket')
  T.wait(function() return #opened == 1 end, 'the browser opened')
  T.ok(opened[1]:find('/auth/v1/authorize?provider=gitlab&', 1, true), opened[1])
  T.ok(noted('opening ' .. opened[1]), 'the URL is shown too')
  T.eq('gitlab', login.waiting and login.waiting.provider, 'the sign-in waits')
  shelf.login_cancel()
  T.wait(function() return ended ~= nil end, 'cb called')
  T.ok(ended.err and ended.err:find('Signing in failed: sign-in cancelled', 1, true), tostring(ended.err))
  T.eq(nil, login.waiting, 'nothing waits')
  -- By mail: the mail cannot be asked for here; cb says why.
  ended = nil
  shelf.login_email('ada@example.com', function(err) ended = { err = err } end)
  T.wait(function() return ended ~= nil end, 'cb called')
  T.ok(ended.err:find('did not send the mail', 1, true), ended.err)
end)

T.test('the port taken: said at once, with the paste prompt', function()
  local squatter = (vim.uv or vim.loop).new_tcp()
  squatter:bind('127.0.0.1', 0)
  squatter:listen(1, function() end)
  local port = squatter:getsockname().port
  setup({ redirect_port = port })
  notes, opened = {}, {}
  local prompted
  local input = vim.ui.input
  vim.ui.input = function(opts, cb)
    prompted = opts.prompt
    cb('')
  end
  vim.cmd('Shelf login google')
  T.wait(function() return prompted ~= nil end, 'the paste prompt')
  vim.ui.input = input
  T.ok(noted('port ' .. port .. ' on 127.0.0.1 is taken'), 'the problem')
  T.ok(not opened[1]:find('redirect_to', 1, true), 'no redirect to a port someone else holds')
  vim.cmd('Shelf login cancel')
  T.wait(function() return noted('sign-in cancelled') end, 'cancelled')
  squatter:close()
end)

T.test('a second sign-in cancels the first; email says why it failed', function()
  setup()
  notes, opened = {}, {}
  vim.cmd('Shelf login google')
  T.wait(function() return #opened == 1 end, 'first')
  vim.cmd('Shelf login email ada@example.com')
  T.wait(function() return noted('another sign-in started') end, 'the first is cancelled')
  T.wait(function() return noted('did not send the mail') end, 'the mail could not be asked for')
  T.ok(noted('Supabase is unreachable'), 'and why')
  -- The status follows the `done` that carried the message.
  T.wait(function() return client.status().login == nil end, 'nothing waits')
  local st = client.status()
  T.eq(false, st.signed_in, 'not signed in')
  T.eq('publishable', st.key, 'the key kind in the status')
  T.eq('shelf: not signed in', shelf.statusline({ user = true }), 'the statusline says so when asked')
  local lines = table.concat(require('shelf.status').lines(), '\n')
  T.ok(lines:find('user%s+not signed in') and lines:find('key%s+publishable'), lines)
end)

T.test(':checkhealth shelf says which kind of key is configured, never the key', function()
  setup({ anon_key = 'sb_publishable_health_check' })
  vim.cmd('checkhealth shelf')
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  T.ok(text:find('Supabase key: a publishable key', 1, true), text)
  T.ok(not text:find('health_check', 1, true), 'the key itself is not shown')
  vim.cmd('bwipeout!')
end)

-- (That start does not wait on the unlink is measured by the bench's restarts, not here.)
T.test('supabase.cache = false: the copy kept before is gone at start, and what an exit left set aside goes too', function()
  local path = client.cache_path(unreachable)
  vim.fn.mkdir(vim.fn.fnamemodify(path, ':h'), 'p')
  local files = { path, path .. '-wal', path .. '-shm', path .. '-wal.removing' } -- the last: left by an exit before
  for _, f in ipairs(files) do
    vim.fn.writefile({ 'a copy' }, f)
  end
  setup({ cache = false })
  T.ok(client.start(), 'shelfd started')
  for _, f in ipairs({ path, path .. '-wal', path .. '-shm' }) do
    T.eq(0, vim.fn.filereadable(f), f .. ' gone when start returns')
  end
  T.wait(function()
    return #vim.fn.glob(path .. '*', false, true) == 0
  end, 'the files set aside unlinked')
  -- With the copy on, a leftover set aside goes too.
  vim.fn.writefile({ 'a copy' }, path .. '.removing')
  setup({ cache = true })
  T.ok(client.start(), 'shelfd started with the copy')
  T.wait(function()
    return vim.fn.filereadable(path .. '.removing') == 0
  end, 'the leftover unlinked')
end)
