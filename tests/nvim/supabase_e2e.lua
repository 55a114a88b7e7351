-- shelfd against the local Supabase-compatible stack (run by run_stack.sh):
-- sign-in, short-lived tokens, CRUD of every kind, changes from SQL reaching
-- the mirror, another user's rows never, sign-out.
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')

local S = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/stackenv_support.lua')
local env, psql = S.env, S.psql

local function ok(fn, what)
  local err, item = T.await(fn, what)
  T.eq(nil, err, what)
  return item
end

local function setup()
  shelf.setup({
    backend = 'supabase',
    supabase = { url = env.SHELF_SUPABASE_URL, anon_key = env.SHELF_SUPABASE_ANON_KEY },
    helper = { log = vim.env.SHELF_TEST_TMP .. '/shelfd.log' },
  })
end

T.test('signed out: an empty library and a clear message on write', function()
  setup()
  T.ready()
  T.eq(false, client.status().signed_in, 'signed in')
  local err = T.await(function(cb) shelf.create('prompt', { title = 'x' }, cb) end)
  T.ok(err and err:find('not signed in', 1, true) and err:find(':Shelf login', 1, true), tostring(err))
end)

T.test('a wrong password says so', function()
  local err = T.await(function(cb) shelf.login('ada@example.com', 'nope', cb) end)
  T.ok(err and err:find('Invalid login credentials', 1, true), tostring(err))
end)

local user
T.test('sign in, and the session file is private', function()
  user = ok(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login')
  T.eq('ada@example.com', user.email, 'email')
  T.wait(function() return client.status().ready and client.status().signed_in end, 'loaded')
  local path = client.session_path()
  T.eq('rw-------', vim.fn.getfperm(path), 'session file mode')
  local text = table.concat(vim.fn.readfile(path), '')
  T.ok(text:find('refresh_token', 1, true), 'session saved')
  -- Tokens never reach the log.
  local tok = vim.json.decode(text).access_token
  local log = table.concat(vim.fn.readfile(vim.env.SHELF_TEST_TMP .. '/shelfd.log'), '\n')
  T.ok(not log:find(tok, 1, true), 'the token is not in the log')
end)

T.test('CRUD of every kind goes through PostgREST', function()
  local folder = ok(function(cb) shelf.create('project', { type = 'prompts', name = 'Work' }, cb) end, 'folder')
  local p = ok(function(cb)
    shelf.create('prompt', { title = 'Hello', content = 'Hi {{name}}', tags = { 'a' }, project_id = folder.id }, cb)
  end, 'prompt')
  T.eq(user.id, p.user_id, 'owned by the user')
  T.eq('1', psql("select count(*) from prompts where id = '" .. p.id .. "'"), 'in the database')
  local b = ok(function(cb) shelf.create('block', { title = 'Ctx', content = 'c' }, cb) end, 'block')
  local u = ok(function(cb) shelf.update('prompt', p.id, { title = 'Hello again' }, cb) end, 'update')
  T.eq('Hello again', u.title, 'updated title')
  T.eq('Hello again', psql("select title from prompts where id = '" .. p.id .. "'"), 'title in db')
  ok(function(cb) shelf.delete('block', b.id, cb) end, 'delete block')
  T.eq('0', psql("select count(*) from context_blocks"), 'block gone')
  -- Deleting the folder takes its prompt (cascade) and the mirror follows.
  ok(function(cb) shelf.delete('project', folder.id, cb) end, 'delete folder')
  T.wait(function() return mirror.item('prompt', p.id) == nil end, 'the cascade in the mirror')
end)

T.test('changes made in SQL reach the mirror; other users never do', function()
  T.wait(function() return client.status().realtime == 'joined' end, 'realtime joined', 15000)
  local id = psql(string.format(
    "insert into prompts (user_id, title, content) values ('%s', 'from sql', 'x') returning id", user.id))
  T.wait(function() return mirror.item('prompt', id) ~= nil end, 'the SQL insert in the mirror')
  psql("update prompts set title = 'sql edit' where id = '" .. id .. "'")
  T.wait(function() return (mirror.item('prompt', id) or {}).title == 'sql edit' end, 'the SQL update')
  psql("delete from prompts where id = '" .. id .. "'")
  T.wait(function() return mirror.item('prompt', id) == nil end, 'the SQL delete')
  local bob = psql("select id from auth.users where email = 'bob@example.com'")
  local theirs = psql(string.format(
    "insert into prompts (user_id, title, content) values ('%s', 'bob only', 'x') returning id", bob))
  local mine = psql(string.format(
    "insert into prompts (user_id, title, content) values ('%s', 'marker', 'x') returning id", user.id))
  T.wait(function() return mirror.item('prompt', mine) ~= nil end, 'a later change of ours')
  T.eq(nil, mirror.item('prompt', theirs), "another user's row")
  local err = T.await(function(cb) shelf.refresh(cb) end)
  T.eq(nil, err, 'refresh')
  T.eq(nil, mirror.item('prompt', theirs), "another user's row after a refresh")
end)

T.test('a write by the web app (supabase-js) reaches the mirror', function()
  local script = vim.env.SHELF_ROOT .. '/tests/stack/webapp-write.mjs'
  local out = vim.fn.system({ 'node', script, env.SHELF_SUPABASE_URL, env.SHELF_SUPABASE_ANON_KEY,
    'ada@example.com', 'ada-password', 'from the web app' })
  T.eq(0, vim.v.shell_error, 'supabase-js: ' .. out)
  local id = vim.trim(out):match('(%x+%-%x+%-%x+%-%x+%-%x+)%s*$')
  T.ok(id, 'an id from supabase-js: ' .. out)
  T.wait(function() return (mirror.item('prompt', id) or {}).title == 'from the web app' end,
    'the web app write in the mirror')
  T.eq({ 'web' }, mirror.item('prompt', id).tags, 'tags')
end)

T.test('a record over 1 MB arrives cut short and is fetched whole', function()
  local id = psql(string.format(
    "insert into prompts (user_id, title, content) values ('%s', 'big', repeat('x', 1500000)) returning id",
    user.id))
  T.wait(function() return mirror.item('prompt', id) ~= nil end, 'the big row')
  T.eq(1500000, mirror.item('prompt', id).size, 'the whole content, not the truncated event')
  T.eq(1500000, #T.get('prompt', id).content, 'content')
end)

T.test('short-lived tokens are refreshed and requests keep working', function()
  -- Tokens live 8 s in this stack; wait until the one held now is dead and write again.
  local first = S.session().access_token
  local exp = S.token_exp(first)
  T.wait(function() return os.time() > exp end, 'the token held at the start expired', 20000)
  local p = ok(function(cb) shelf.create('prompt', { title = 'after expiry' }, cb) end, 'create after expiry')
  T.ok(p.id, 'created')
  T.ok(S.session().access_token ~= first, 'a new token')
end)

T.test('the gateway killed mid-session: a save waits and succeeds, realtime comes back', function()
  local stack = vim.env.SHELF_ROOT .. '/tests/stack/stack.sh'
  local dir = vim.env.SHELF_STACK_DIR
  T.wait(function() return client.status().realtime == 'joined' end, 'realtime joined', 15000)
  vim.fn.system({ stack, 'gateway-stop', dir, 'KILL' })
  T.eq(0, vim.v.shell_error, 'gateway stopped')
  local done, err, item = false, nil, nil
  shelf.create('prompt', { title = 'typed during the outage' }, function(e, it)
    done, err, item = true, e, it
  end)
  T.wait(function()
    local e = client.status().error
    return e and e:find('unreachable', 1, true) and e:find('retrying', 1, true)
  end, 'a message saying what is happening')
  T.eq(false, done, 'the save is still pending, not lost')
  vim.fn.system({ stack, 'gateway-start', dir })
  T.eq(0, vim.v.shell_error, 'gateway started')
  T.wait(function() return done end, 'the retried save', 30000)
  T.eq(nil, err, 'save error')
  T.eq('1', psql("select count(*) from prompts where title = 'typed during the outage'"),
    'exactly one row: the retry did not duplicate it')
  T.wait(function() return client.status().realtime == 'joined' end, 'realtime joined again', 30000)
  local id = psql(string.format(
    "insert into prompts (user_id, title, content) values ('%s', 'after the outage', 'x') returning id", user.id))
  T.wait(function() return mirror.item('prompt', id) ~= nil end, 'a change after reconnecting')
  T.eq(nil, client.status().error, 'the message is gone once recovered')
  T.ok(item and mirror.item('prompt', item.id), 'the saved item in the mirror')
end)

local function fault(spec)
  local out = vim.fn.system({ 'node', vim.env.SHELF_ROOT .. '/tests/stack/admin.js', '--env',
    vim.env.SHELF_STACK_ENV, 'fault', vim.json.encode(spec) })
  T.eq(0, vim.v.shell_error, 'fault: ' .. out)
end

T.test('bad answers from the server: clear errors, retries where safe, no crash', function()
  local p = ok(function(cb) shelf.create('prompt', { title = 'steady' }, cb) end, 'create')
  -- A body that is not JSON.
  fault({ count = 1, status = 200, body = '<html>oops</html>', path = '/rest/v1/prompts', method = 'PATCH' })
  local err = T.await(function(cb) shelf.update('prompt', p.id, { title = 'changed' }, cb) end)
  T.ok(err and err:find("Saving prompt 'steady' failed", 1, true) and err:find('not a JSON list', 1, true),
    tostring(err))
  T.eq('steady', mirror.item('prompt', p.id).title, 'mirror unchanged')
  -- An error body PostgREST would never send.
  fault({ count = 1, status = 400, body = '{"weird":true}', path = '/rest/v1/prompts', method = 'PATCH' })
  err = T.await(function(cb) shelf.update('prompt', p.id, { title = 'changed' }, cb) end)
  T.ok(err and err:find('HTTP 400', 1, true), tostring(err))
  -- A burst of 503s: the write is retried with backoff and lands once.
  fault({ count = 2, status = 503, body = '{"message":"busy"}', path = '/rest/v1/prompts', method = 'POST' })
  local item = ok(function(cb) shelf.create('prompt', { title = 'after 503s' }, cb) end, 'create through 503s')
  T.eq('1', psql("select count(*) from prompts where id = '" .. item.id .. "'"), 'one row')
  T.eq(true, client.running(), 'shelfd still running')
end)

local function admin(cmd, arg)
  local argv = { 'node', vim.env.SHELF_ROOT .. '/tests/stack/admin.js', '--env', vim.env.SHELF_STACK_ENV, cmd }
  if arg then
    table.insert(argv, vim.json.encode(arg))
  end
  local out = vim.fn.system(argv)
  T.eq(0, vim.v.shell_error, 'admin ' .. cmd .. ': ' .. out)
  return vim.json.decode(out)
end

local session = S.session

local jwt_expired = { code = 'PGRST303', details = vim.NIL, hint = vim.NIL, message = 'JWT expired' }

T.test('401 JWT expired: refreshed once and retried; twice in a row: a clear error', function()
  -- Tokens that live an hour, so that no refresh but the one a 401 asks for happens.
  admin('config', { jwt_exp = 3600 })
  ok(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login with a long-lived token')
  T.wait(function() return client.status().ready end, 'loaded')
  local before = session().refresh_token
  fault({ count = 1, status = 401, body = jwt_expired, path = '/rest/v1/prompts', method = 'POST' })
  local p = ok(function(cb) shelf.create('prompt', { title = 'after one 401' }, cb) end, 'create through a 401')
  T.eq('1', psql("select count(*) from prompts where id = '" .. p.id .. "'"), 'saved once')
  T.ok(session().refresh_token ~= before, 'the session was refreshed and saved')
  T.eq(nil, client.status().error, 'no error left')
  fault({ count = 2, status = 401, body = jwt_expired, path = '/rest/v1/prompts', method = 'POST' })
  local err = T.await(function(cb) shelf.create('prompt', { title = 'after two 401s' }, cb) end)
  T.ok(err and err:find("Creating prompt 'after two 401s' failed", 1, true)
    and err:find('refused the access token again right after it was refreshed', 1, true)
    and err:find('JWT expired', 1, true), tostring(err))
  T.eq('0', psql("select count(*) from prompts where title = 'after two 401s'"), 'not saved')
  T.eq(true, client.status().signed_in, 'still signed in')
  admin('config', { jwt_exp = 8 })
end)

T.test('signing in as another user swaps the library and the realtime channel', function()
  T.wait(function() return client.status().realtime == 'joined' end, 'realtime joined', 15000)
  local bob = ok(function(cb) shelf.login('bob@example.com', 'bob-password', cb) end, 'login as bob')
  T.eq('bob@example.com', bob.email, 'email')
  T.wait(function()
    for _, p in pairs(shelf.items('prompt')) do
      if p.title == 'bob only' then
        return true
      end
    end
  end, "bob's library")
  for _, p in pairs(shelf.items('prompt')) do
    T.ok(p.title ~= 'steady', "ada's prompt is gone from the mirror")
  end
  T.wait(function() return client.status().realtime == 'joined' end, 'realtime joined for bob', 15000)
  local id = psql(string.format(
    "insert into prompts (user_id, title, content) values ('%s', 'for bob', 'x') returning id", bob.id))
  T.wait(function() return mirror.item('prompt', id) ~= nil end, "bob's change through realtime")
end)

T.test('sign out empties the library and deletes the session', function()
  ok(function(cb) shelf.logout(cb) end, 'logout')
  T.wait(function() return #shelf.items('prompt') == 0 end, 'an empty mirror')
  T.eq(0, vim.fn.filereadable(client.session_path()), 'session file gone')
end)

T.test(':Shelf login password asks for the email, then the password without echo', function()
  local asked = {}
  local input, secret = vim.ui.input, vim.fn.inputsecret
  vim.ui.input = function(opts, cb)
    table.insert(asked, opts.prompt)
    cb('ada@example.com')
  end
  vim.fn.inputsecret = function(prompt)
    table.insert(asked, prompt)
    return 'ada-password'
  end
  vim.cmd('Shelf login password')
  vim.ui.input, vim.fn.inputsecret = input, secret
  T.eq({ 'Supabase email: ', 'Password: ' }, asked, 'the questions')
  T.wait(function() return client.status().user == 'ada@example.com' end, 'signed in again')
  T.eq(1, vim.fn.filereadable(client.session_path()), 'session saved again')
end)

-- A refresh under way when the session ends or changes: its late answer is
-- dropped. The gateway refreshes at once and holds the answer back 3 s; a 401
-- on a save starts the refresh.
local function start_held_refresh(title)
  local since = S.last_request()
  fault({ count = 1, status = 401, body = jwt_expired, path = '/rest/v1/prompts', method = 'POST' })
  local res = {}
  fault({ count = 1, answer_delay_ms = 3000, path = '/auth/v1/token', method = 'POST' })
  shelf.create('prompt', { title = title }, function(e) res.done, res.err = true, e end)
  T.wait(function() return #admin('status').faults == 0 end, 'the refresh held in the gateway')
  -- Past the held answer: the gateway is done with the refresh (answered, or
  -- shelfd hung up), then two requests to shelfd make it handle whatever
  -- reached its socket before them.
  function res.past_the_answer()
    T.wait(function()
      -- The first since it started (a sign-in posts there too).
      local r = S.requests(since, 'POST', '/auth/v1/token')
      return #r >= 1 and r[1].done
    end, 'the gateway done with the held refresh', 20000)
    -- Two round trips through shelfd (a folder it does not hold is
    -- answered without the network).
    T.get('project', 'none')
    T.get('project', 'none')
  end
  return res
end

T.test('sign-out while a token refresh is under way: its late answer does not sign back in', function()
  -- Long-lived tokens: the only refresh is the one started here.
  admin('config', { jwt_exp = 3600 })
  ok(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login with a long-lived token')
  T.wait(function() return client.status().ready end, 'loaded')
  local save = start_held_refresh('saved during a refresh')
  ok(function(cb) shelf.logout(cb) end, 'logout')
  T.wait(function() return save.done end, 'the save waiting for the refresh')
  T.ok(save.err and save.err:find('signed out', 1, true), tostring(save.err))
  save.past_the_answer()
  T.eq(false, client.status().signed_in, 'still signed out')
  T.eq(nil, session(), 'no session file')
  T.eq(0, #shelf.items('prompt'), 'the library stays empty')
  T.ok(client.status().realtime ~= 'joined' and client.status().realtime ~= 'joining', 'no realtime: '
    .. tostring(client.status().realtime))
end)

T.test('sign-in as another user while a token refresh is under way: the late answer is dropped', function()
  local ada = ok(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login as ada')
  T.wait(function() return client.status().ready end, 'loaded')
  local save = start_held_refresh('saved during a switch')
  local bob = ok(function(cb) shelf.login('bob@example.com', 'bob-password', cb) end, 'login as bob')
  T.wait(function() return save.done end, 'the save waiting for the refresh')
  T.ok(save.err and save.err:find('another user', 1, true), tostring(save.err))
  save.past_the_answer()
  T.eq('bob@example.com', client.status().user, 'still bob')
  T.eq(bob.id, session().user_id, "the session file is bob's")
  T.ok(bob.id ~= ada.id, 'two users')
  T.wait(function() return client.status().ready end, "bob's library loaded")
  for _, p in pairs(shelf.items('prompt')) do
    T.ok(p.title ~= 'steady', "ada's prompt is not in bob's library")
  end
  T.eq('0', psql("select count(*) from prompts where title in ('saved during a refresh', 'saved during a switch')"),
    'the saves waiting for the old session were not made')
  admin('config', { jwt_exp = 8 })
end)
