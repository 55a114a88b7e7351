-- Signing in by email against the local stack (run by run_stack.sh), the way a user does it
-- (:Shelf login email): the code from the mail (wrong, right, used, expired), the link in the
-- mail completing through the loopback listener, an unknown address, the address asked for.
-- The mails are read from the stack's mailbox. No code or link token in any log.
local client = require('shelf.client')
local login = require('shelf.login')
local L = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/login_support.lua')

local ADA = 'ada@example.com'
local codes = {}

-- :Shelf login email ADA, up to its code prompt; returns the first message index, the mail
-- and the prompt.
local function start()
  local n = L.mail_count(ADA)
  local from = L.login('email ' .. ADA)
  local mail = L.mail(ADA, n)
  table.insert(codes, mail.code)
  L.wait_note(from, 'the mail message', 'a sign-in link was sent to ' .. ADA)
  local p = L.prompt('the code prompt')
  T.ok(p.opts.prompt:find('Code from the mail', 1, true), p.opts.prompt)
  return from, mail, p
end

T.test('setup with the publishable key', function()
  L.setup()
  T.ready()
  T.eq(false, client.status().signed_in, 'signed out')
  L.browser('none')
end)

T.test('the code from the mail: a wrong one is refused and asked again, the right one signs in', function()
  local from, mail, p = start()
  L.answer(p, mail.code == '000000' and '111111' or '000000')
  L.wait_note(from, 'the refused code', 'Token has expired or is invalid', 'otp_expired')
  T.ok(login.waiting, 'still waiting after a wrong code')
  local again = #L.notes + 1
  L.answer(L.prompt('the code prompt again'), mail.code)
  local ok, failed = L.outcome(again, 'the sign-in by code')
  T.eq(nil, failed, 'sign-in')
  T.ok(ok:find('signed in as ' .. ADA .. ' (email)', 1, true), ok)
  T.eq('email', client.status().provider, 'provider')
  L.live(ADA, 'code')
end)

T.test('a used code is refused', function()
  L.reset()
  local from, _, p = start()
  L.answer(p, codes[1])
  L.wait_note(from, 'the refused code', 'Token has expired or is invalid')
  T.eq(false, client.status().signed_in, 'not signed in')
  T.ok(login.waiting, 'still waiting')
  local cancel = #L.notes + 1
  vim.cmd('Shelf login cancel')
  local _, failed = L.outcome(cancel, 'the cancelled sign-in')
  T.ok(failed and failed:find('sign-in cancelled', 1, true), tostring(failed))
end)

T.test('an expired code is refused', function()
  L.reset()
  L.admin('config', { otp_exp = 0 })
  local from, mail, p = start()
  L.answer(p, mail.code)
  L.wait_note(from, 'the refused code', 'Token has expired or is invalid')
  T.eq(false, client.status().signed_in, 'not signed in')
end)

T.test('the link in the mail completes the sign-in through the loopback listener', function()
  L.reset()
  local from, mail = start()
  T.ok(mail.link:find('type=magiclink', 1, true), 'a link: ' .. mail.link)
  T.ok(mail.link:find('redirect_to=http%3A%2F%2F127.0.0.1%3A', 1, true), 'back to the loopback listener: ' .. mail.link)
  local n = #L.pages
  L.visit(mail.link)
  local ok, failed = L.outcome(from, 'the sign-in by link')
  T.eq(nil, failed, 'sign-in')
  T.ok(ok:find('signed in as ' .. ADA .. ' (email)', 1, true), ok)
  local page = L.page(n + 1, 'the browser')
  T.eq(200, page.status, "the editor's page: " .. vim.inspect(page))
  L.live(ADA, 'link')
end)

T.test('the port taken: the link ends on the Site URL, and :Shelf login paste finishes', function()
  L.reset()
  local port = L.setup_on_taken_port()
  local from, mail = start()
  L.wait_note(from, 'the port problem', 'port ' .. port, 'is taken')
  T.ok(not mail.link:find('127.0.0.1%3A' .. port, 1, true), 'no loopback redirect in the link: ' .. mail.link)
  local n = #L.pages
  L.visit(mail.link)
  local page = L.page(n + 1, 'the browser to land on the Site URL')
  T.ok(page.url:find(L.env.STACK_SITE_URL, 1, true) and page.url:find('code=', 1, true), 'the Site URL with a code: ' .. page.url)
  vim.cmd('Shelf login paste ' .. page.url)
  local ok, failed = L.outcome(from, 'the sign-in from the pasted address')
  T.eq(nil, failed, 'sign-in')
  T.ok(ok:find('signed in as ' .. ADA .. ' (email)', 1, true), ok)
  L.live(ADA, 'pasted link')
end)

T.test('an unknown address is refused at once', function()
  L.reset()
  local from = L.login('email nobody@example.com')
  local _, failed = L.outcome(from, 'the refusal')
  T.ok(failed and failed:find('Signups not allowed for otp', 1, true), tostring(failed))
  T.eq(0, L.mail_count('nobody@example.com'), 'no mail')
end)

T.test(':Shelf login email asks for the address, then the code', function()
  L.reset()
  local n = L.mail_count(ADA)
  local from = L.login('email')
  local p = L.prompt('the address prompt')
  T.ok(p.opts.prompt:lower():find('email', 1, true), p.opts.prompt)
  L.answer(p, ADA)
  local mail = L.mail(ADA, n)
  table.insert(codes, mail.code)
  L.answer(L.prompt('the code prompt'), mail.code)
  local ok = L.outcome(from, 'the sign-in')
  T.ok(ok and ok:find(ADA, 1, true), tostring(ok))
end)

T.test('no code, link token or verifier in the log or the messages', function()
  T.ok(#codes >= 5, 'codes were sent: ' .. #codes)
  L.no_secrets(codes, 'the codes from the mails')
  L.no_secrets(L.issued(), 'sign-in secrets')
  L.reset()
end)
