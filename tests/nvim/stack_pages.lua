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
  for _ in pairs(mirror.by_kind[kind]) do
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
  local pages, after_id = 0, 0
  for _, r in ipairs(S.requests(before, 'GET', '/rest/v1/prompts')) do
    if r.query:find('order=id&limit=', 1, true) then
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
  for _, p in pairs(mirror.by_kind.prompt) do
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
  T.wait(function() return client.status().loading == nil end, 'nothing loading')
  T.eq(0, client._stop_and_wait(10000), 'stopped')
  local kept = vim.fn.system({ 'sqlite3', client.cache_path(S.env.SHELF_SUPABASE_URL),
    "select count(*) from prompts" })
  T.eq(tostring(want), vim.trim(kept), 'the copy holds the rows read, no more')
  T.ready()
end)
