-- The new publishable key (sb_publishable_..., not a JWT) everywhere the legacy anon key works,
-- against the local stack (run by run_stack.sh): signed out, a password sign-in, CRUD through
-- PostgREST, realtime, a token refresh after the short token life, sign-out.
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

T.test('signed out with the publishable key: the helper runs, knows the key kind', function()
  T.ok(env.SHELF_SUPABASE_PUBLISHABLE_KEY:find('^sb_publishable_'), 'a publishable key')
  shelf.setup({
    backend = 'supabase',
    supabase = { url = env.SHELF_SUPABASE_URL, anon_key = env.SHELF_SUPABASE_PUBLISHABLE_KEY },
    helper = { log = vim.env.SHELF_TEST_TMP .. '/shelfd.log' },
  })
  T.ready()
  T.eq(false, client.status().signed_in, 'signed out')
  T.eq('publishable', client.status().key, 'key kind')
  T.eq(nil, client.status().error, 'no error signed out')
end)

local user
T.test('password sign-in, CRUD, realtime', function()
  user = ok(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login')
  T.wait(function() return client.status().ready and client.status().realtime == 'joined' end, 'loaded, realtime joined', 20000)
  local p = ok(function(cb) shelf.create('prompt', { title = 'pub', content = 'c', tags = { 't' } }, cb) end, 'create')
  T.eq('pub', psql("select title from prompts where id = '" .. p.id .. "'"), 'in the database')
  ok(function(cb) shelf.update('prompt', p.id, { title = 'pub 2' }, cb) end, 'update')
  T.eq('pub 2', psql("select title from prompts where id = '" .. p.id .. "'"), 'updated')
  local id = psql(string.format(
    "insert into prompts (user_id, title, content) values ('%s', 'from sql', 'x') returning id", user.id))
  T.wait(function() return mirror.item('prompt', id) ~= nil end, 'a change from SQL through realtime')
  ok(function(cb) shelf.delete('prompt', p.id, cb) end, 'delete')
  T.eq('0', psql("select count(*) from prompts where id = '" .. p.id .. "'"), 'deleted')
end)

T.test('the token is refreshed after its short life, writes keep working', function()
  -- Tokens live 8 s in this stack (run_stack.sh).
  local first = S.session().access_token
  T.wait(function()
    local s = S.session()
    return s and s.access_token ~= first
  end, 'a refreshed token', 20000)
  ok(function(cb) shelf.create('prompt', { title = 'after refresh' }, cb) end, 'create after the refresh')
  local id = psql(string.format(
    "insert into prompts (user_id, title, content) values ('%s', 'sql after refresh', 'x') returning id", user.id))
  T.wait(function() return mirror.item('prompt', id) ~= nil end, 'realtime after the refresh')
end)

T.test('sign-out empties the library', function()
  ok(function(cb) shelf.logout(cb) end, 'logout')
  T.wait(function() return not client.status().signed_in end, 'signed out')
  T.wait(function() return #shelf.items('prompt') == 0 end, 'an empty mirror')
  T.eq(0, vim.fn.filereadable(client.session_path()), 'session file gone')
end)
