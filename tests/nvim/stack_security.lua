-- Security and odd input against the local Supabase-compatible stack (run by
-- run_stack.sh): odd items round-trip exactly through PostgREST or are
-- refused clearly; bob's rows never reach ada's mirror; tokens and passwords
-- are in neither `:Shelf status`, the messages, nor the log.
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')

local S = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/stackenv_support.lua')
local env, psql = S.env, S.psql

shelf.setup({
  backend = 'supabase',
  supabase = { url = env.SHELF_SUPABASE_URL, anon_key = env.SHELF_SUPABASE_ANON_KEY },
  helper = { log = vim.env.SHELF_TEST_TMP .. '/shelfd.log' },
})
T.ready()

local user
T.test('sign in as ada', function()
  local err
  err, user = T.await(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login', 30000)
  T.eq(nil, err, 'login')
  T.wait(function() return client.status().ready and client.status().signed_in end, 'loaded', 30000)
end)

dofile(vim.env.SHELF_ROOT .. '/tests/nvim/bad_input_support.lua')('supabase')

T.test("bob's rows, written behind shelfd's back, never reach ada's mirror", function()
  local bob = psql("select id from auth.users where email = 'bob@example.com'")
  T.ok(bob:match('^%x+%-'), 'bob exists: ' .. bob)
  psql(string.format([[insert into prompts (id, user_id, title, content)
    values ('00000000-0000-4000-8000-0000000000b0', '%s', 'bob secret', 'x')]], bob))
  local mine = select(2, T.await(function(cb) shelf.create('prompt', { title = 'ada after bob' }, cb) end))
  T.wait(function() return mirror.item('prompt', mine.id) ~= nil end, 'our prompt')
  T.eq(nil, T.await(function(cb) shelf.refresh(cb) end, 'refresh', 30000), 'refresh')
  for row in mirror.rows('prompt') do
    local id = mirror.id_at('prompt', row)
    T.eq(user.id, T.get('prompt', id).user_id, 'owner of ' .. id)
  end
end)

T.test('no token or password in :Shelf status or the messages', function()
  local status = vim.api.nvim_exec('Shelf status', true)
  local messages = vim.api.nvim_exec('messages', true)
  local session = vim.json.decode(table.concat(vim.fn.readfile(client.session_path()), ''))
  for what, text in pairs({ status = status, messages = messages, inspect = vim.inspect(client.status()) }) do
    for _, secret in ipairs({ session.access_token, session.refresh_token, 'ada-password',
      'bob-password', env.SHELF_SUPABASE_ANON_KEY }) do
      T.ok(not text:find(secret, 1, true), what .. ' shows a secret')
    end
    T.ok(not text:find('[%w_-]+%.[%w_-]+%.[%w_-]+') or not text:find('eyJ', 1, true), what .. ' shows a JWT')
  end
  -- Kept for the suite-wide secrets check (tests/security/secrets.sh).
  if vim.env.SHELF_TEST_TMP then
    vim.fn.writefile(vim.split(status .. '\n' .. messages, '\n'), vim.env.SHELF_TEST_TMP .. '/messages.txt')
  end
end)
