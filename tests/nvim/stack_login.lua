-- Signing in with an OAuth provider against the local stack (run by run_stack.sh), the way a
-- user does it (:Shelf login <provider>): PKCE and a loopback redirect, the browser played by
-- an HTTP client that follows the redirects and once by a real headless Chromium; a denied
-- consent, a state mismatch, the port already taken and the pasted URL, an allow-list without
-- the loopback URL and the pasted code, a cancelled sign-in, two racing. The publishable key
-- everywhere, a secret key refused; no token, code or verifier in any log.
local client = require('shelf.client')
local login = require('shelf.login')
local L = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/login_support.lua')
local env = L.env

local GAIL = 'gail@example.com'
local used_code

T.test('a secret key is refused with a message naming the publishable key', function()
  for _, key in ipairs({ env.SHELF_SUPABASE_SECRET_KEY, env.SERVICE_ROLE_KEY }) do
    local from = #L.notes + 1
    local ok = L.setup({ supabase = { anon_key = key } })
    T.eq(false, ok, 'setup refused the key')
    local msg = L.note(from, 'secret key') or ''
    T.ok(msg:find('sb_publishable_', 1, true), 'the refusal names the publishable key: ' .. msg)
  end
  T.ok(not L.seen():find(env.SHELF_SUPABASE_SECRET_KEY, 1, true), 'the secret key is in no message')
end)

T.test('the publishable key: signed out, the helper says which key kind it has', function()
  L.setup()
  T.ready()
  T.eq(false, client.status().signed_in, 'signed out')
  T.eq('publishable', client.status().key, 'the key kind')
end)

T.test('Google sign-in: the browser (an HTTP client) follows the redirects back to the editor', function()
  L.admin('provider', { email = GAIL, name = 'Gail Google', decision = 'allow' })
  L.browser('http')
  local from = L.login('google')
  local ok, failed = L.outcome(from, 'the Google sign-in')
  T.eq(nil, failed, 'sign-in')
  T.ok(ok:find(GAIL .. ' (google)', 1, true), ok)
  local url = L.opened[#L.opened]
  T.ok(url:find(env.SHELF_SUPABASE_URL .. '/auth/v1/authorize?', 1, true), 'the authorize URL was opened: ' .. url)
  T.ok(url:find('provider=google', 1, true) and url:find('code_challenge_method=s256', 1, true), 'PKCE S256: ' .. url)
  T.ok(L.note(from, 'opening ' .. url), 'the URL is shown as well')
  local page = L.page(1, "the browser's last page")
  T.eq(200, page.status, 'the listener answered the browser: ' .. vim.inspect(page))
  T.ok(page.body:lower():find('close', 1, true), 'a page saying it can be closed: ' .. page.body)
  T.eq('google', client.status().provider, 'status provider')
  T.ok(vim.api.nvim_exec('Shelf status', true):find(GAIL .. ' (google)', 1, true), ':Shelf status says how')
  L.live(GAIL, 'google')
  -- The listener is gone once the sign-in ended.
  local r = L.redirect_of(url)
  T.ok(r and r.port and r.state, 'a loopback redirect with state: ' .. vim.inspect(r))
  T.eq(false, L.listening(r.port), 'nothing listens on the loopback port any more')
end)

T.test('the same sign-in with a real headless Chromium', function()
  T.eq(1, vim.fn.executable('chromium'), 'chromium is installed (scripts/deps.sh test)')
  L.reset()
  L.browser('chromium')
  local n = #L.pages
  local ok, failed = L.outcome(L.login('google'), 'the sign-in through Chromium')
  T.eq(nil, failed, 'sign-in')
  T.ok(ok:find(GAIL .. ' (google)', 1, true), ok)
  local page = L.page(n + 1, 'Chromium to end')
  T.ok(page.body:lower():find('close', 1, true), "Chromium ended on the editor's page: " .. page.body:sub(1, 400))
  L.live(GAIL, 'chromium')
end)

T.test('a denied consent ends with a clear message', function()
  L.reset()
  L.browser('deny')
  local _, failed = L.outcome(L.login('google'), 'the refused sign-in')
  T.ok(failed and failed:find('refused', 1, true) and failed:find('access_denied', 1, true), tostring(failed))
  T.ok(failed:find('denied your application access', 1, true), 'the provider description: ' .. failed)
  T.eq(false, client.status().signed_in, 'still signed out')
end)

T.test("a state mismatch: someone else's answer does not sign this editor in", function()
  L.reset()
  local loop
  L.browser(function(url) loop = L.redirect_of(url) end)
  local from = L.login('google')
  T.wait(function() return loop ~= nil end, 'the browser URL')
  -- Anything but the callback: 404, and the wait goes on.
  T.eq(404, L.get('http://127.0.0.1:' .. loop.port .. '/favicon.ico').status, 'another path')
  T.eq(nil, L.note(from, 'Signing in failed'), 'still waiting after a stray request')
  T.eq(400, L.get('http://127.0.0.1:' .. loop.port .. '/auth/callback?state=forged&code=abc').status,
    'the forged callback is refused')
  local _, failed = L.outcome(from, 'the sign-in to end')
  T.ok(failed and failed:find('state does not match', 1, true), tostring(failed))
  T.eq(false, client.status().signed_in, 'not signed in')
  T.eq(false, L.listening(loop.port), 'the listener is gone')
end)

T.test('the port already taken: the browser ends on the Site URL, the pasted address finishes', function()
  L.reset()
  local port = L.setup_on_taken_port()
  L.browser('http')
  local n = #L.pages
  local from = L.login('google')
  L.wait_note(from, 'the port problem', 'port ' .. port, 'is taken')
  local prompt = L.prompt('the paste prompt at once')
  T.ok(prompt.opts.prompt:find('Paste the address', 1, true), prompt.opts.prompt)
  local page = L.page(n + 1, 'the browser to land on the Site URL')
  T.ok(page.url:find(env.STACK_SITE_URL, 1, true) and page.url:find('code=', 1, true),
    'the Site URL with a code: ' .. page.url)
  L.answer(prompt, page.url)
  local ok, failed = L.outcome(from, 'the sign-in from the pasted address')
  T.eq(nil, failed, 'sign-in')
  T.ok(ok:find(GAIL, 1, true), ok)
  L.live(GAIL, 'pasted address')
end)

T.test('an allow-list without the loopback URL (older servers): a wrong paste, then the bare code', function()
  L.reset()
  L.admin('auth', { redirect_rule = 'legacy', redirect_urls = {} })
  login.paste_hint_ms = 200
  L.browser('http')
  local n = #L.pages
  local from = L.login('github')
  local page = L.page(n + 1, 'the browser to land on the Site URL')
  local code = page.url:match('[?&]code=([%w-]+)')
  T.ok(page.url:find(env.STACK_SITE_URL, 1, true) and code, 'the Site URL with a code: ' .. page.url)
  local hint = L.wait_note(from, 'the hint', 'no answer from the browser yet', 'Redirect URLs')
  T.ok(hint:find('http://127.0.0.1:', 1, true), 'names the URL to allow: ' .. hint)
  L.answer(L.prompt('the paste prompt'), '00000000-0000-0000-0000-000000000000')
  L.wait_note(from, 'the refused paste', 'Supabase refused the code', 'flow_state_not_found')
  T.ok(login.waiting, 'the sign-in still waits after a wrong paste')
  local again = #L.notes + 1
  L.answer(L.prompt('the paste prompt again'), code)
  local ok, failed = L.outcome(again, 'the sign-in')
  T.eq(nil, failed, 'sign-in')
  T.ok(ok:find('(github)', 1, true), ok)
  L.live(GAIL, 'bare code')
  used_code = code
end)

T.test('a used code and an expired code are refused when pasted; the sign-in goes on waiting', function()
  T.ok(used_code, 'the last test left a used code')
  L.reset()
  L.admin('auth', { redirect_rule = 'legacy', redirect_urls = {} })
  L.browser('http')
  local n = #L.pages
  local from = L.login('google')
  local page = L.page(n + 1, 'the browser to land on the Site URL')
  local code = page.url:match('[?&]code=([%w-]+)')
  T.ok(code, 'a code: ' .. page.url)
  vim.cmd('Shelf login paste ' .. used_code)
  L.wait_note(from, 'the used code refused', 'Supabase refused the code', 'flow_state_not_found')
  T.ok(login.waiting, 'still waiting after the used code')
  L.admin('config', { flow_state_expiry = 0 })
  local later = #L.notes + 1
  vim.cmd('Shelf login paste ' .. code)
  L.wait_note(later, 'the expired code refused', 'Supabase refused the code', 'flow_state_expired')
  T.ok(login.waiting, 'still waiting after the expired code')
  T.eq(false, client.status().signed_in, 'not signed in')
  local cancel = #L.notes + 1
  vim.cmd('Shelf login cancel')
  local _, failed = L.outcome(cancel, 'the cancelled sign-in')
  T.ok(failed and failed:find('sign-in cancelled', 1, true), tostring(failed))
end)

T.test('a cancelled sign-in ends with a clear message and stops listening', function()
  L.reset()
  local loop
  L.browser(function(url) loop = L.redirect_of(url) end)
  local from = L.login('google')
  T.wait(function() return loop ~= nil end, 'the browser URL')
  T.ok(L.listening(loop.port), 'listening while waiting')
  vim.cmd('Shelf login cancel')
  local _, failed = L.outcome(from, 'the cancelled sign-in')
  T.ok(failed and failed:find('sign-in cancelled', 1, true), tostring(failed))
  T.eq(false, L.listening(loop.port), 'the listener is gone')
  T.eq(false, client.status().signed_in, 'not signed in')
end)

T.test('two sign-ins racing: the second cancels the first and wins', function()
  L.reset()
  local first
  L.browser(function(url) first = L.redirect_of(url) end)
  local from = L.login('google')
  T.wait(function() return first ~= nil end, 'the first browser URL')
  L.browser('http')
  L.login('github')
  L.wait_note(from, 'the first one cancelled', 'Signing in failed', 'another sign-in started')
  local ok = L.wait_note(from, 'the second one signed in', 'signed in as ' .. GAIL, '(github)')
  T.ok(ok, 'the second sign-in')
  -- The first one's browser coming back late changes nothing.
  local late = L.get(first.url .. '&code=late')
  T.ok(late.error or late.status ~= 200, 'the first redirect is dead: ' .. vim.inspect(late))
  L.live(GAIL, 'race')
  T.eq('github', client.status().provider, 'the winner is signed in')
end)

T.test('no token, code or verifier in the log or the messages', function()
  local issued = L.issued()
  T.ok(#issued > 10, 'the stack listed what it handed out: ' .. #issued)
  L.no_secrets(issued, 'sign-in secrets')
  local session = L.S.session()
  T.ok(session, 'a session file')
  L.no_secrets({ session.access_token, session.refresh_token, env.SHELF_SUPABASE_SECRET_KEY, env.SERVICE_ROLE_KEY },
    'session and keys')
  L.reset()
end)
