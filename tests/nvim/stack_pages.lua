-- A table bigger than one page on the local stack (run by run_stack.sh): a read of every row
-- comes a page at a time (ordered by id, each page after the last id of the one before), so a
-- library of any size loads, none missed or read twice; the local copy then holds exactly the
-- rows read, those deleted meanwhile gone.
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local S = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/stackenv_support.lua')
local psql = S.psql

local n = 2600 -- more than two pages of 1000

local function count(kind)
  local c = 0
  for _ in mirror.rows(kind) do
    c = c + 1
  end
  return c
end

T.test('every prompt of a table bigger than a page loads, a page at a time', function()
  S.sign_in('ada@example.com', 'ada-password')
  local uid = psql("select id from auth.users where email = 'ada@example.com'")
  psql(("insert into prompts (user_id, title, content) select '%s', 'paged ' || g, repeat('x', g %% 50)"
    .. " from generate_series(1, %d) g"):format(uid, n))
  T.eq(0, client._stop_and_wait(10000), 'stopped')
  local cache = client.cache_path(S.env.SHELF_SUPABASE_URL)
  vim.fn.delete(cache) -- the first load from the server, not from a copy
  local before = S.last_request()
  T.ready()
  T.wait(function() return count('prompt') == n end, 'every prompt in the mirror', 30000)
  -- Every read done, the full check after Realtime's join too (or one would be counted half).
  T.wait(function() return client.status().loading == nil and not client.status().checking end,
    'nothing loading, the full check done', 30000)
  local pages, after_id = 0, 0
  for _, r in ipairs(S.requests(before, 'GET', '/rest/v1/prompts')) do
    if r.query:find('order=id&limit=', 1, true) and r.query:find('select=*&user_id=', 1, true) then
      pages = pages + 1
      after_id = after_id + (r.query:find('&id=gt.', 1, true) and 1 or 0)
    end
  end
  -- (A read of every row may come twice: the first load, then the full
  -- comparison Realtime's join asks for.)
  local reads = pages - after_id
  T.ok(reads >= 1, 'read whole at least once')
  T.ok(after_id >= 2 * reads, 'each read in three pages or more, each after the last id of the one before: '
    .. pages .. ' pages, ' .. reads .. ' reads')
  local sizes = {}
  for _, p in ipairs(mirror.items('prompt')) do
    sizes[p.title] = p.size
  end
  T.eq(49, sizes['paged 49'], 'sizes without the content')
  T.eq(0, sizes['paged 50'], 'an empty content')
end)

T.test('the local copy holds exactly the rows read, those deleted meanwhile gone', function()
  psql("delete from prompts where title like 'paged 1%'")
  local want = tonumber(psql("select count(*) from prompts"))
  T.eq(0, client._stop_and_wait(10000), 'stopped')
  T.ready()
  -- A start from the copy, then the server's full read in pages replaces it.
  T.wait(function() return count('prompt') == want end, 'the mirror converges on the server', 30000)
  T.wait(function() return client.status().loading == nil and not client.status().checking end,
    'nothing loading, the full check done')
  T.eq(0, client._stop_and_wait(10000), 'stopped')
  local kept = vim.fn.system({ 'sqlite3', client.cache_path(S.env.SHELF_SUPABASE_URL),
    "select count(*) from prompts" })
  T.eq(tostring(want), vim.trim(kept), 'the copy holds the rows read, no more')
  T.ready()
end)

-- PostgREST caps every answer at its max-rows (1000 on a new Supabase project; 500 here, below
-- shelfd's page of 1000). The refresh after a start reads what changed while away and, when the
-- counts differ, every id and stamp: each in pages, so neither is cut short. The full read that
-- follows is held back meanwhile, so what is shown is the refresh's own work.
T.test('with answers capped at 500 rows, the refresh after a start reads all that changed, and every stamp', function()
  S.admin('config', { max_rows = 500 })
  T.wait(function() return client.status().loading == nil and not client.status().checking end, 'settled')
  T.eq(0, client._stop_and_wait(10000), 'stopped')
  psql("delete from prompts where id = (select id from prompts order by id limit 1)") -- the counts then differ
  psql("update prompts set title = 'renamed while away ' || title, updated_at = now()"
    .. " where title like 'paged %'")
  local renamed = tonumber(psql("select count(*) from prompts where title like 'renamed while away %'"))
  T.ok(renamed > 1000, 'more rows changed than two answers hold: ' .. renamed)
  local want = tonumber(psql("select count(*) from prompts"))
  -- The full read's pages (every row, no filter) wait; the refresh's reads do not.
  S.admin('fault', { count = 20, delay_ms = 8000, path = '/rest/v1/prompts', method = 'GET',
    query = 'select=*&user_id=' })
  local fewest = math.huge
  local au = vim.api.nvim_create_autocmd('User', {
    pattern = 'ShelfChanged',
    callback = function()
      fewest = math.min(fewest, count('prompt'))
    end,
  })
  local before = S.last_request()
  T.ready()
  T.wait(function()
    local st = client.status()
    return st.ready and st.loading == nil and st.checking and st.realtime == 'joined'
  end, 'the refresh after the start done, the full read waiting', 30000)
  vim.api.nvim_del_autocmd(au)
  local shown = 0
  for _, p in ipairs(mirror.items('prompt')) do
    if p.title:find('^renamed while away ') then
      shown = shown + 1
    end
  end
  T.eq(renamed, shown, 'every row renamed while away is shown')
  T.eq(want, count('prompt'), 'the deleted row is gone, no other')
  T.ok(fewest >= want, 'no row was dropped on the way: fewest ' .. fewest)
  -- :Shelf status says what runs in the background, not that the library is loading.
  local lines = table.concat(require('shelf.status').lines(), '\n')
  T.ok(lines:find('\nchecking +every row against the backend') and lines:find('\nloading +no'),
    'the status says checking, not loading: ' .. lines)
  T.eq('', require('shelf.status').statusline(), 'the statusline stays quiet meanwhile')
  local stamps = 0
  for _, r in ipairs(S.requests(before, 'GET', '/rest/v1/prompts')) do
    if r.query:find('select=id,updated_at', 1, true) then
      stamps = stamps + 1
    end
  end
  T.ok(stamps >= math.ceil(want / 500), 'the stamps came in pages of 500: ' .. stamps .. ' for ' .. want)
  -- The copy followed: the deleted row is gone from it too, before any full read.
  T.eq(0, client._stop_and_wait(10000), 'stopped')
  local kept = vim.fn.system({ 'sqlite3', client.cache_path(S.env.SHELF_SUPABASE_URL),
    "select count(*) from prompts" })
  T.eq(tostring(want), vim.trim(kept), 'the copy holds the rows the stamps listed')
  S.admin('clear-faults')
  S.admin('config', { max_rows = 0 })
end)
