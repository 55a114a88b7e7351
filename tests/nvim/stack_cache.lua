-- The Supabase backend's local copy of the library (run by run_stack.sh): kept in a private
-- file beside the session; a start with the saved session draws the library from it while the
-- server's answer is held back by the gateway, then converges on what changed while shelfd was
-- stopped (SQL insert, update, delete); sign-out deletes it; another user never sees the first
-- user's rows, not even from a copy left behind; a session ended elsewhere deletes it too.
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local S = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/stackenv_support.lua')
local psql = S.psql

local uv = vim.uv or vim.loop
local path = client.cache_path(S.env.SHELF_SUPABASE_URL)

local function titles()
  local out = {}
  for _, kind in ipairs({ 'prompt', 'block', 'project' }) do
    for _, item in ipairs(mirror.items(kind)) do
      out[item.title or item.name or ''] = item
    end
  end
  return out
end

local function mode(p)
  local st = uv.fs_stat(p)
  return st and st.mode % 512 or nil
end

local function create(kind, fields)
  local err, item = T.await(function(cb) shelf.create(kind, fields, cb) end, 'create ' .. fields.title)
  T.eq(nil, err, 'create ' .. fields.title)
  return item
end

-- GET requests of a table the gateway has answered since it last forgot what it saw.
local function answered(table_path)
  return vim.tbl_filter(function(r) return r.done end, S.requests(0, 'GET', table_path))
end

T.test('signed in, the library is kept in a private file beside the session', function()
  S.sign_in('ada@example.com', 'ada-password')
  create('prompt', { title = 'Kept as it is', content = 'one' })
  create('prompt', { title = 'Renamed while away', content = 'two' })
  create('prompt', { title = 'Deleted while away', content = 'three' })
  create('block', { title = 'A kept block', content = 'four' })
  T.wait(function() return uv.fs_stat(path) ~= nil end, 'the file')
  T.eq(tonumber('600', 8), mode(path), 'the file is the user\'s alone')
  T.eq(tonumber('700', 8), mode(vim.fn.fnamemodify(path, ':h')), 'and so is its folder')
  T.eq(vim.fn.fnamemodify(client.session_path(), ':h'), vim.fn.fnamemodify(path, ':h'), 'beside the session')
end)

T.test('a start with the saved session draws the kept library before the server answers, then converges', function()
  T.eq(0, client._stop_and_wait(10000), 'shelfd stopped cleanly')
  local uid = psql("select id from auth.users where email = 'ada@example.com'")
  psql(string.format("insert into prompts (user_id, title, content) values ('%s', 'Added while away', 'five')", uid))
  psql("update prompts set title = 'Renamed on the server', updated_at = now() where title = 'Renamed while away'")
  psql("delete from prompts where title = 'Deleted while away'")
  -- Every read of the prompts waits 3 s at the gateway: whatever is drawn before is local.
  S.admin('fault', { count = 50, delay_ms = 3000, path = '/rest/v1/prompts', method = 'GET' })
  S.admin('clear-requests')
  local _, err = client.start()
  T.eq(nil, err, 'started')
  T.wait(function() return client.status().ready == true end, 'the first load', 10000)
  T.eq({}, answered('/rest/v1/prompts'), 'the server had not answered for the prompts yet')
  local t = titles()
  T.ok(t['Kept as it is'] and t['Renamed while away'] and t['Deleted while away'] and t['A kept block'],
    'the kept library is shown: ' .. vim.inspect(vim.tbl_keys(t)))
  T.ok(not t['Added while away'], 'not yet what the server has')
  shelf.open()
  local lines = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  T.ok(lines:find('Prompts (3)', 1, true) and lines:find('Context blocks (1)', 1, true),
    'the tab is drawn with it: ' .. lines)
  -- Then the server's answer lands and the library is what the server has.
  T.wait(function()
    local now = titles()
    return now['Added while away'] and now['Renamed on the server'] and not now['Renamed while away']
      and not now['Deleted while away'] and now['Kept as it is'] ~= nil
  end, 'the library to converge on the server', 30000)
  T.ok(#answered('/rest/v1/prompts') > 0, 'after the server answered')
  S.admin('clear-faults')
  -- And what converged is kept for the next start.
  T.eq(0, client._stop_and_wait(10000), 'stopped')
  local kept = vim.fn.system({ 'sqlite3', path, "select count(*) from prompts where row like '%Deleted while away%'"
    .. " union all select count(*) from prompts where row like '%Added while away%'" })
  T.eq('0\n1\n', kept, 'the file holds the server\'s library')
  T.ready()
end)

T.test('an item is read from the kept copy when it is the version shown, else from the server', function()
  local kept = titles()['Kept as it is']
  T.ok(kept ~= nil, 'the item is shown')
  T.wait(function() return client.status().loading == nil and not client.status().checking end,
    'nothing loading, the full check after the start done')
  S.admin('clear-requests')
  local err, full = T.await(function(cb) client.get_async('prompt', kept.id, cb) end, 'the read')
  T.eq(nil, err, 'read')
  T.eq('one', full.content, 'its content')
  -- (A read of every row may still run: Realtime's "subscribed" can come after the wait above.)
  local function asked_for(id)
    local n = 0
    for _, r in ipairs(S.requests(0, 'GET', '/rest/v1/prompts')) do
      if r.query:find(id, 1, true) then
        n = n + 1
      end
    end
    return n
  end
  T.eq(0, asked_for(kept.id), 'the server was not asked for it')
  -- The copy holding another version than the one shown (it missed a change):
  -- the server is asked.
  -- (Deleted and inserted again: the search index's triggers see the change.)
  vim.fn.system({ 'sqlite3', '-cmd', '.timeout 10000', path, "begin; create temp table s as select id,"
    .. " json_set(row, '$.content', 'stale', '$.updated_at', '2001-01-01T00:00:00+00:00') as row,"
    .. " summary, title, description, tags from prompts where id = '" .. kept.id .. "';"
    .. " delete from prompts where id = '" .. kept.id .. "';"
    .. " insert into prompts(id, row, summary, title, description, tags) select * from s; commit;" })
  T.eq(0, vim.v.shell_error, 'the copy changed')
  err, full = T.await(function(cb) client.get_async('prompt', kept.id, cb) end, 'the read')
  T.eq(nil, err, 'read')
  T.eq('one', full.content, 'the server\'s content, not the stale copy\'s')
  T.ok(asked_for(kept.id) > 0, 'the server was asked for it')
end)

T.test('a damaged file is deleted and made again, with a line in the log, and the library loads', function()
  T.eq(0, client._stop_and_wait(10000), 'stopped')
  local f = assert(io.open(path, 'wb'))
  f:write(string.rep('not a database ', 400))
  f:close()
  T.ready()
  T.wait(function() return titles()['Added while away'] ~= nil and client.status().loading == nil end, 'the library')
  T.wait(function()
    local log = table.concat(vim.fn.readfile(vim.env.SHELF_TEST_TMP .. '/shelfd.log'), '\n')
    return log:find('was not usable (file is not a database): deleted and made again', 1, true)
  end, 'the log line')
  T.eq(0, client._stop_and_wait(10000), 'stopped cleanly')
  T.eq('1\n', vim.fn.system({ 'sqlite3', path, "select count(*) from prompts where row like '%Added while away%'" }),
    'made again with the library')
  T.ready()
end)

T.test('sign-out deletes the kept library', function()
  T.ok(uv.fs_stat(path), 'the file is there')
  local err = T.await(function(cb) shelf.logout(cb) end, 'logout')
  T.eq(nil, err, 'logout')
  T.wait(function() return uv.fs_stat(path) == nil and uv.fs_stat(path .. '-wal') == nil end, 'the file to go')
end)

T.test('another user never sees the first user\'s rows, not even from a copy left behind', function()
  S.sign_in('ada@example.com', 'ada-password')
  create('prompt', { title = "Ada's own prompt", content = 'private' })
  T.eq(0, client._stop_and_wait(10000), 'stopped')
  local saved = vim.env.SHELF_TEST_TMP .. '/ada-cache.db'
  T.ok(uv.fs_copyfile(path, saved), 'a copy of ada\'s file')
  T.eq('1\n', vim.fn.system({ 'sqlite3', saved, "select count(*) from prompts where row like '%Ada''s own%'" }),
    "the file holds ada's rows")
  -- Bob signs in where ada was: the copy of ada's rows goes at once.
  T.ready()
  local err = T.await(function(cb) shelf.login('bob@example.com', 'bob-password', cb) end, 'login bob')
  T.eq(nil, err, 'login bob')
  create('prompt', { title = "Bob's own prompt", content = 'his' })
  T.wait(function()
    local t = titles()
    return t["Bob's own prompt"] and not t["Ada's own prompt"]
  end, "bob's library")
  T.eq(0, client._stop_and_wait(10000), 'stopped')
  -- ada's file is put back (a crash before it was deleted); the saved session is bob's.
  T.ok(uv.fs_copyfile(saved, path), "ada's file put back")
  local leaked = false
  local au = vim.api.nvim_create_autocmd('User', {
    pattern = 'ShelfChanged',
    callback = function()
      if titles()["Ada's own prompt"] then
        leaked = true
      end
    end,
  })
  S.admin('fault', { count = 50, delay_ms = 1500, path = '/rest/v1/', method = 'GET' })
  T.ready()
  T.wait(function() return titles()["Bob's own prompt"] ~= nil and client.status().loading == nil end, "bob's library")
  S.admin('clear-faults')
  vim.api.nvim_del_autocmd(au)
  T.eq(false, leaked, "ada's rows were never shown to bob")
  T.eq(nil, titles()["Ada's own prompt"], "ada's rows are not shown")
  T.eq(0, client._stop_and_wait(10000), 'stopped')
  local left = vim.fn.system({ 'sqlite3', path, "select count(*) from prompts where row like '%Ada''s own%'" })
  T.eq('0\n', left, "ada's rows are gone from the file")
  T.ready()
end)

T.test('a session that ended while shelfd was stopped takes the kept library with it', function()
  T.ok(uv.fs_stat(path), 'bob\'s file is there')
  T.eq(0, client._stop_and_wait(10000), 'stopped')
  -- Signed out elsewhere: the refresh token is no longer good, and the next refresh is refused.
  psql('delete from auth.refresh_tokens')
  T.ready()
  T.wait(function()
    return client.status().signed_in == false and uv.fs_stat(path) == nil
  end, 'the session to end and the file to go', 30000)
  T.eq(nil, titles()["Bob's own prompt"], 'the library is emptied')
end)

T.test('a big first load builds the search index after it; the status says so meanwhile, and search finds every row', function()
  -- Over 128 KiB of rows in one write: the copy indexes them after, 250 rows
  -- a step. 3000 rows of 2 KB: steps enough that the status pushed while
  -- the load's changes go out is seen before the build ends.
  local uid = psql("select id from auth.users where email = 'ada@example.com'")
  psql(string.format([[insert into prompts (user_id, title, content)
    select '%s', 'Indexed later ' || g, repeat('filler ', 300) || 'needle' || g from generate_series(1, 3000) g]], uid))
  local seen, shown = {}, false
  local au = vim.api.nvim_create_autocmd('User', { pattern = 'ShelfStatus', callback = function()
    seen[#seen + 1] = client.status().indexing == true
    if seen[#seen] then
      shown = shown or table.concat(require('shelf.status').lines(), '\n'):find('indexing', 1, true) ~= nil
    end
  end })
  local ok, err = pcall(function()
    S.sign_in('ada@example.com', 'ada-password')
    T.wait(function() return vim.tbl_contains(seen, true) and client.status().indexing == nil end,
      'the index built, said while it was', 30000)
  end)
  vim.api.nvim_del_autocmd(au)
  assert(ok, err)
  T.ok(shown, ':Shelf status said so meanwhile')
  T.ok(not table.concat(require('shelf.status').lines(), '\n'):find('indexing', 1, true), 'gone from :Shelf status')
  local e, hits = T.await(function(cb) client.search_async('needle2999', nil, cb) end, 'search')
  T.eq(nil, e, 'search error')
  T.eq(1, #hits, 'found: ' .. vim.inspect(hits))
end)
