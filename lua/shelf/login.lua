-- shelf.login: :Shelf login and what the user sees while a sign-in waits for
-- the browser or a mail (doc/architecture-auth.md has the contract with
-- shelfd). shelfd does the protocol; this module asks, shows, and opens.
local M = {}

local ui = require('shelf.ui')

-- How long to wait for the browser before suggesting the paste (ms).
M.paste_hint_ms = 20000

-- Opens a URL in the browser. Tests replace it; returns true if something
-- was started.
function M.opener(url)
  if vim.ui.open then -- Neovim 0.10+
    local ok, res = pcall(vim.ui.open, url)
    return ok and res ~= nil
  end
  local cmd = vim.fn.has('mac') == 1 and 'open' or 'xdg-open'
  if vim.fn.executable(cmd) ~= 1 then
    return false
  end
  local ok, job = pcall(vim.fn.jobstart, { cmd, url }, { detach = true })
  return ok and job > 0
end

-- The sign-in waiting for the browser or a mail, or nil:
-- { ticket, provider, email, url, redirect, answered, gen }
M.waiting = nil
local generation = 0

local function shelf()
  return require('shelf')
end

local function config()
  return require('shelf.config').get()
end

--- The providers :Shelf login offers, then password.
function M.choices()
  local out = {}
  for _, p in ipairs(config().supabase.providers or {}) do
    table.insert(out, p)
  end
  table.insert(out, 'password')
  return out
end

-- The end of a sign-in: what the user sees, then the caller's cb.
local function finished(gen, err, user, cb)
  if M.waiting and M.waiting.gen == gen then
    M.waiting = nil
  end
  if err then
    ui.error(err)
  elseif type(user) == 'table' then
    local how = user.provider and (' (' .. user.provider .. ')') or ''
    ui.notify('signed in as ' .. tostring(user.email or user.id) .. how)
  end
  if cb then
    cb(err, user)
  end
end

--- Start a sign-in: method 'login_oauth' with a provider, or 'login_email'
--- with an address. The URL is opened and shown, the code asked for, as
--- shelfd's pushes come: :Shelf login and require('shelf').login_oauth /
--- login_email all start here. cb(err, user) when it ends. The ticket.
function M.start(method, arg, cb)
  generation = generation + 1
  local gen = generation
  local ticket = require('shelf.client').call(method, { arg }, function(err, user)
    finished(gen, err, user, cb)
  end)
  if ticket then
    local by_mail = method == 'login_email'
    M.waiting = { ticket = ticket, provider = by_mail and 'email' or arg, email = by_mail and arg or nil, gen = gen }
  end
  return ticket
end

local function start(kind, arg)
  if kind == 'email' then
    return M.start('login_email', arg)
  end
  return M.start('login_oauth', kind)
end

-- Ask for something the waiting sign-in `w` can finish with; send(text,
-- cb) passes it to shelfd. Empty or <Esc>: keep waiting. Refused: said, and
-- asked again while the same sign-in waits.
local function ask(w, prompt, send)
  ui.input({ prompt = prompt }, function(text)
    if not text or vim.trim(text) == '' or M.waiting ~= w then
      return
    end
    send(vim.trim(text), function(err)
      if err and M.waiting == w then
        ui.error(err)
        vim.schedule(function()
          ask(w, prompt, send)
        end)
      end
    end)
  end)
end

-- What the browser ended on (the address, or only its code).
local function paste_prompt(w)
  ask(w, 'Paste the address the browser ended on (or its code; empty: keep waiting): ', shelf().login_paste)
end

-- The code from the sign-in mail.
local function code_prompt(w)
  ask(w, 'Code from the mail (empty: wait for the link): ', function(code, cb)
    shelf().login_verify(w.email, code, cb)
  end)
end

-- The URL to allow in Supabase for the port in use.
local function allow_url(w)
  local port = w.port or config().supabase.redirect_port
  return string.format('http://127.0.0.1:%s/**', tostring(port))
end

--- shelfd's `auth` push: the sign-in moved on.
function M._on_auth(p)
  local w = M.waiting
  if not w or p.ticket ~= w.ticket then
    return -- an older sign-in's news
  end
  local problem = p.problem ~= vim.NIL and p.problem or nil
  w.port = p.port ~= vim.NIL and p.port or nil
  if p.state == 'browser' then
    w.url = p.url
    -- The URL is always shown: over SSH it must be opened by hand.
    if vim.fn.has('clipboard') == 1 then
      pcall(vim.fn.setreg, '+', p.url)
    end
    local opened = M.opener(p.url)
    ui.notify(string.format('%s %s in your browser%s', opened and 'opening' or 'open', p.url,
      opened and ' (if nothing opens, open it yourself)' or ''))
    if problem then
      ui.warn(problem)
      vim.schedule(function()
        paste_prompt(w)
      end)
      return
    end
    vim.defer_fn(function()
      if M.waiting == w and not w.answered then
        -- Current Supabase Auth lets any loopback redirect through: no callback
        -- mostly means a browser on another machine (SSH); older Auth wanted
        -- the URL allowed.
        ui.warn(string.format('no answer from the browser yet. If it runs on another machine (over SSH) or '
          .. "ended on another page (your web app's), that page's address holds the code: paste it "
          .. '(:Shelf login paste). If Supabase said the redirect is not allowed (an older Auth), '
          .. 'allow %s in Supabase (Authentication, URL Configuration, Redirect URLs)', allow_url(w)))
        paste_prompt(w)
      end
    end, M.paste_hint_ms)
  elseif p.state == 'email_sent' then
    ui.notify(string.format('a sign-in link was sent to %s: click it, or type the code from the mail', w.email))
    if problem then
      ui.warn(problem)
    end
    vim.schedule(function()
      code_prompt(w)
    end)
  elseif p.state == 'exchanging' then
    w.answered = true
    ui.notify('the browser came back; finishing the sign-in')
  end
end

local function password(email)
  ui.input({ prompt = 'Supabase email: ', default = email }, function(address)
    if not address then
      return -- <Esc>: the user knows
    end
    address = vim.trim(address)
    if address == '' then
      return ui.warn('not signed in: no email was given')
    end
    -- inputsecret: the password is not echoed and not kept in history.
    local ok, pw = pcall(vim.fn.inputsecret, 'Password: ')
    if not ok then
      return
    end
    if pw == '' then
      return ui.warn('not signed in: no password was given')
    end
    shelf().login(address, pw, function(err, user)
      if err then
        ui.error(err)
      else
        ui.notify('signed in as ' .. tostring(user.email or user.id) .. ' (password)')
      end
    end)
  end)
end

local function email(address)
  if address and address ~= '' then
    return start('email', address)
  end
  ui.input({ prompt = 'Email for the sign-in link: ' }, function(a)
    if a and vim.trim(a) ~= '' then
      start('email', vim.trim(a))
    end
  end)
end

local function run(choice, arg)
  if choice == 'password' then
    password(arg)
  elseif choice:find('@', 1, true) then
    password(choice) -- :Shelf login <email>, as before providers existed
  elseif choice == 'email' then
    email(arg)
  elseif choice == 'paste' then
    if arg and arg ~= '' then
      shelf().login_paste(arg, function(err)
        if err then
          ui.error(err)
        end
      end)
    elseif M.waiting then
      paste_prompt(M.waiting)
    else
      ui.error('no sign-in is waiting for a code; start one with :Shelf login')
    end
  elseif choice == 'cancel' then
    shelf().login_cancel()
  else
    start(choice)
  end
end

--- :Shelf login [provider|email|password|paste|cancel] [argument]
function M.command(args)
  if config().backend ~= 'supabase' then
    ui.warn("the sqlite backend has no accounts; set backend = 'supabase' to sign in")
    return
  end
  if args[1] then
    return run(args[1], table.concat(vim.list_slice(args, 2), ' '))
  end
  local labels = { email = 'email (a link or code by mail)', password = 'email and password' }
  vim.ui.select(M.choices(), {
    prompt = 'Sign in to Supabase with',
    format_item = function(c)
      return labels[c] or (c .. ' (in the browser)')
    end,
  }, function(choice)
    if choice then
      run(choice)
    end
  end)
end

--- Completion after :Shelf login.
function M.complete(arglead, args)
  if #args > 1 then
    return {}
  end
  local out = M.choices()
  vim.list_extend(out, { 'paste', 'cancel' })
  return vim.tbl_filter(function(c)
    return c:sub(1, #arglead) == arglead
  end, out)
end

return M
