-- What the sign-in tests against the local stack share (stack_login*.lua): the plugin set up
-- with the publishable key, what the user was told (vim.notify), the prompts (vim.ui.input,
-- answered by the test), the "browser" (vim.ui.open: an HTTP client that follows redirects, a
-- real headless Chromium, or a function of the test), the stack's mailbox and stand-in
-- provider, and the checks that a signed-in user's library is live. Load with
-- local L = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/login_support.lua').
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local S = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/stackenv_support.lua')
local env = S.env
local root = vim.env.SHELF_ROOT
local uv = vim.uv or vim.loop

local L = { S = S, env = env, notes = {}, inputs = {}, opened = {}, pages = {}, jobs = {} }

-- Every message the plugin shows, kept in order.
local orig_notify = vim.notify
vim.notify = function(msg, level, opts)
  table.insert(L.notes, tostring(msg))
  return orig_notify(msg, level, opts)
end

--- The first message since index `from` containing all of the plain strings; nil if none.
function L.note(from, ...)
  local want = { ... }
  for i = from or 1, #L.notes do
    local ok = true
    for _, w in ipairs(want) do
      if not L.notes[i]:find(w, 1, true) then
        ok = false
      end
    end
    if ok then
      return L.notes[i], i
    end
  end
end

--- Wait for a message containing all the strings; returns it.
function L.wait_note(from, what, ...)
  local args = { ... }
  local got
  T.wait(function()
    got = L.note(from, unpack(args))
    return got ~= nil
  end, what .. ' (messages: ' .. vim.inspect(vim.list_slice(L.notes, from or 1)) .. ')', 15000)
  return got
end

-- Prompts: each vim.ui.input call is queued; the test answers it with L.answer(text) (nil:
-- the user pressed <Esc>).
vim.ui.input = function(opts, on_confirm)
  table.insert(L.inputs, { opts = opts or {}, on_confirm = on_confirm })
end
vim.ui.select = function(items, opts, on_choice)
  table.insert(L.inputs, { opts = opts or {}, items = items, on_confirm = on_choice })
end

--- Wait for the next unanswered prompt; returns it.
function L.prompt(what)
  local p
  T.wait(function()
    for _, x in ipairs(L.inputs) do
      if not x.answered then
        p = x
        return true
      end
    end
  end, what or 'a prompt', 15000)
  return p
end

function L.answer(p, text)
  p.answered = true
  p.on_confirm(text)
end

--- Answer every prompt still open with <Esc> (between tests).
function L.dismiss()
  for _, x in ipairs(L.inputs) do
    if not x.answered then
      L.answer(x, nil)
    end
  end
end

-- Jobs the tests start (browsers), stopped by their id at the end of each test.
local function job(cmd, on_out)
  local buf = {}
  local id = vim.fn.jobstart(cmd, {
    stdout_buffered = true,
    on_stdout = function(_, data) buf = data end,
    on_exit = function(_, code)
      if on_out then
        on_out(table.concat(buf, '\n'), code)
      end
    end,
  })
  T.ok(id > 0, 'started ' .. cmd[1])
  table.insert(L.jobs, id)
  return id
end

function L.stop_jobs()
  for _, id in ipairs(L.jobs) do
    pcall(vim.fn.jobstop, id)
  end
  L.jobs = {}
end

--- The browser, as shelf.login's opener: 'http' (browse.mjs follows redirects and the
--- provider's continue link), 'deny' (the same, clicking Cancel), 'chromium' (a real headless
--- Chromium), 'none' (nothing opens), or a function(url).
function L.browser(kind)
  require('shelf.login').opener = function(url)
    table.insert(L.opened, url)
    if type(kind) == 'function' then
      kind(url)
    elseif kind == 'http' or kind == 'deny' then
      L.visit(url, kind == 'deny' and 'deny' or 'continue')
    elseif kind == 'chromium' then
      local profile = vim.env.SHELF_TEST_TMP .. '/chromium-profile-' .. #L.opened
      vim.fn.mkdir(profile, 'p')
      job({ root .. '/tests/stack/chromium.sh', profile, url, '--virtual-time-budget=20000', '--dump-dom' },
        function(out, code) table.insert(L.pages, { url = url, body = out, code = code, chromium = true }) end)
    end
    return kind ~= 'none'
  end
end

--- Follow url with browse.mjs, asynchronously; its result lands in L.pages.
function L.visit(url, click)
  job({ 'node', root .. '/tests/stack/browse.mjs', url, '--click', click or 'continue' }, function(out)
    local ok, page = pcall(vim.json.decode, out)
    table.insert(L.pages, ok and page or { error = out })
  end)
end

--- Wait until the browser has ended somewhere; returns that page.
function L.page(n, what)
  T.wait(function() return #L.pages >= n end, what or 'the browser to end on a page', 30000)
  return L.pages[n]
end

--- The loopback URL (parsed redirect_to) of an authorize URL: {url, port, state}.
function L.redirect_of(url)
  local enc = url:match('[?&]redirect_to=([^&]+)')
  if not enc then
    return nil
  end
  local r = enc:gsub('%%(%x%x)', function(h) return string.char(tonumber(h, 16)) end)
  return { url = r, port = tonumber(r:match('^http://127%.0%.0%.1:(%d+)/')), state = r:match('[?&]state=([^&]+)') }
end

--- A blocking GET of a URL (for the test's own requests to the listener): status, body.
function L.get(url)
  local out = vim.fn.system({ 'node', '-e', [[
    fetch(process.argv[1], { redirect: 'manual' }).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })),
      (e) => console.log(JSON.stringify({ error: String(e.cause && e.cause.code || e.message) })))]], url })
  return vim.json.decode(out)
end

--- Whether something accepts connections on 127.0.0.1:port.
function L.listening(port)
  local r = L.get('http://127.0.0.1:' .. port .. '/')
  return r.error == nil
end

--- The stack's test hooks (admin.js): mailbox, provider, auth, config, ...
function L.admin(cmd, arg)
  local argv = { 'node', root .. '/tests/stack/admin.js', '--env', vim.env.SHELF_STACK_ENV, cmd }
  if arg ~= nil then
    table.insert(argv, type(arg) == 'table' and vim.json.encode(arg) or arg)
  end
  local out = vim.fn.system(argv)
  T.eq(0, vim.v.shell_error, 'admin ' .. cmd .. ': ' .. out)
  return vim.json.decode(out)
end

--- The newest mail to `to` after `count` earlier ones, once it has arrived.
function L.mail(to, count)
  local msgs
  T.wait(function()
    msgs = L.admin('mailbox', to).messages
    return #msgs > (count or 0)
  end, 'a mail to ' .. to, 15000)
  return msgs[#msgs]
end

function L.mail_count(to)
  return #L.admin('mailbox', to).messages
end

--- The id of the user with this email.
function L.user_id(email)
  return S.psql(string.format("select id from auth.users where email = '%s'", email))
end

--- Run :Shelf login ARGS; returns the index of the first message it may show.
function L.login(args)
  local from = #L.notes + 1
  vim.cmd('Shelf login ' .. args)
  return from
end

--- Wait for the sign-in started at message `from` to end; returns the success message or
--- nil and the failure message.
function L.outcome(from, what)
  local msg
  T.wait(function()
    msg = L.note(from, 'signed in as ') or L.note(from, 'Signing in failed')
    return msg ~= nil
  end, (what or 'the sign-in') .. ' to end (messages: ' .. vim.inspect(vim.list_slice(L.notes, from)) .. ')', 30000)
  if msg:find('signed in as ', 1, true) then
    return msg, nil
  end
  return nil, msg
end

--- Set up the plugin against the stack: the publishable key, a loopback port picked at run time.
function L.setup(extra)
  local opts = vim.tbl_deep_extend('force', {
    backend = 'supabase',
    supabase = {
      url = env.SHELF_SUPABASE_URL,
      anon_key = env.SHELF_SUPABASE_PUBLISHABLE_KEY,
      providers = { 'google', 'github', 'email' },
      redirect_port = 0,
    },
    helper = { log = vim.env.SHELF_TEST_TMP .. '/shelfd.log' },
  }, extra or {})
  return shelf.setup(opts)
end

--- Sign out (if signed in), forget the last test's prompts and jobs, and put back the stack's
--- and the plugin's settings a test may have changed (also after a failed test).
local undo = {}
--- Run fn at the next L.reset(), whether the test passed or not.
function L.on_reset(fn)
  table.insert(undo, fn)
end

function L.reset()
  for _, fn in ipairs(undo) do
    pcall(fn)
  end
  undo = {}
  L.dismiss()
  L.stop_jobs()
  if require('shelf.login').waiting then
    T.await(function(cb) shelf.login_cancel(cb) end, 'cancel the waiting sign-in')
    T.wait(function() return require('shelf.login').waiting == nil end, 'no sign-in waiting')
  end
  L.admin('auth', { redirect_rule = 'current', redirect_urls = {} })
  L.admin('provider', { decision = 'allow' })
  L.admin('config', { otp_exp = 3600, flow_state_expiry = 300 })
  require('shelf.login').paste_hint_ms = 20000
  if client.status().signed_in then
    local err = T.await(function(cb) shelf.logout(cb) end, 'logout')
    T.eq(nil, err, 'logout')
  end
  T.wait(function() return not client.status().signed_in end, 'signed out')
end

--- The signed-in user's library is live in the tab: loaded, realtime joined, and a change made
--- elsewhere (SQL) reaches the mirror and shows in the knowledge tab. user: {id=...} or an email.
local lives = 0
function L.live(user, what)
  if type(user) == 'string' then
    user = { id = L.user_id(user) }
  end
  what = what or ''
  T.wait(function()
    local st = client.status()
    return st.signed_in and st.ready and st.realtime == 'joined'
  end, what .. ': library loaded and realtime joined', 20000)
  lives = lives + 1
  local title = string.format('live check %d (%s)', lives, what)
  local id = S.psql(string.format(
    "insert into prompts (user_id, title, content) values ('%s', '%s', 'x') returning id", user.id, title))
  T.wait(function() return mirror.item('prompt', id) ~= nil end, what .. ': a change from SQL in the mirror')
  local function tab()
    for _, w in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
      local b = vim.api.nvim_win_get_buf(w)
      if vim.api.nvim_buf_get_name(b) == 'shelf://knowledge' then
        return b
      end
    end
  end
  if not tab() then
    shelf.open()
  end
  T.wait(function()
    local b = tab()
    return b and table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\n'):find(title, 1, true) ~= nil
  end, what .. ': the change in the knowledge tab')
end

--- What the editor kept: shelfd's log and every message shown.
function L.seen()
  local log = vim.env.SHELF_TEST_TMP .. '/shelfd.log'
  local text = vim.fn.filereadable(log) == 1 and table.concat(vim.fn.readfile(log), '\n') or ''
  return text .. '\n' .. table.concat(L.notes, '\n') .. '\n' .. vim.api.nvim_exec('messages', true)
end

--- None of the secrets (strings; 6-digit codes matched as whole numbers) is in the log or
--- the messages.
function L.no_secrets(secrets, what)
  local seen = L.seen()
  for _, s in ipairs(secrets) do
    if s and s ~= '' then
      local found
      if s:match('^%d+$') then
        found = seen:find('%f[%d]' .. s .. '%f[%D]')
      else
        found = seen:find(s, 1, true)
      end
      T.ok(not found, (what or 'secrets') .. ': a secret of ' .. #s .. ' characters is in the log or the messages')
    end
  end
end

--- Every secret of a sign-in the stack handed out or received so far.
function L.issued()
  local f = vim.env.SHELF_STACK_DIR .. '/issued-secrets'
  return vim.fn.filereadable(f) == 1 and vim.fn.readfile(f) or {}
end

--- Hold a free port as another program would, and set up with it as the
--- redirect port; the next L.reset() lets it go and sets up as before.
function L.setup_on_taken_port()
  local uv = vim.uv or vim.loop
  local squatter = uv.new_tcp()
  squatter:bind('127.0.0.1', 0)
  squatter:listen(8, function() end)
  local port = squatter:getsockname().port
  L.on_reset(function()
    squatter:close()
    L.setup()
  end)
  L.setup({ supabase = { redirect_port = port } })
  T.ready()
  return port
end

return L
