-- Search on the local stack (run by run_stack.sh). With the local copy off
-- (supabase.cache = false) the query goes to PostgREST as ilike over title,
-- description and content (and a tag equal to it), with PostgREST's reserved
-- characters and LIKE's wildcards in the query taken as plain text. With the
-- copy on it is answered from the copy, as the SQLite backend answers (tags
-- by substring, 1-2 characters not in content), without a request to
-- PostgREST, an edit made elsewhere found once it arrived. Either way
-- another user's rows are never hits, and temporary blocks are found from
-- memory.
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local S = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/stackenv_support.lua')

local function create(kind, fields)
  local err, item = T.await(function(cb) shelf.create(kind, fields, cb) end, 'create ' .. kind)
  T.eq(nil, err, 'create error')
  return item
end

local function search(q, kind)
  local err, hits = T.await(function(cb) client.search_async(q, kind, cb) end, 'search ' .. q)
  T.eq(nil, err, 'search error for ' .. q)
  local set = {}
  for _, h in ipairs(hits) do
    set[h.kind .. ':' .. h.id] = true
  end
  return set, #hits
end

-- Searches PostgREST was asked (an `or=` filter) since request `after`.
local function server_searches(after)
  return vim.tbl_filter(function(r)
    return (r.query or ''):find('or=', 1, true) ~= nil
  end, S.requests(after, 'GET', '/rest/v1/'))
end

local p, odd, bob

-- What both ways of searching answer alike: the user's rows only, any case,
-- odd characters as text and LIKE's wildcards as no wildcards.
local function answers_alike(tmp)
  local hits, n = search('kubectl')
  T.ok(hits['prompt:' .. p.id], 'the prompt by its content, any case')
  T.ok(hits['block:' .. tmp.id], 'the temporary block, from memory')
  T.ok(not hits['prompt:' .. bob], 'not bob\'s row')
  T.eq(2, n, 'nothing else')
  T.ok(search('aPPLES FOR', 'prompt')['prompt:' .. p.id], 'the description, any case')
  for _, q in ipairs({ '100%', '0%', 'a_b', ', (c).d:e', '"q"', 'x*y', 'back\\slash', 'DevOps' }) do
    T.ok(search(q)['block:' .. odd.id], 'found by ' .. q)
  end
  for _, q in ipairs({ 'a%b', 'rate_100', '1_0%' }) do
    T.eq(0, select(2, search(q)), 'nothing for ' .. q)
  end
end

T.test('with the copy off, search asks PostgREST, with odd characters as text, and sees only the user\'s rows', function()
  S.sign_in('ada@example.com', 'ada-password', { cache = false })
  p = create('prompt', { title = 'Review', description = 'Apples for all', content = 'use KUBECTL apply' })
  odd = create('block', { title = 'rate 100% of a_b, (c).d:e "q" x*y back\\slash', content = 'z',
    tags = { 'DevOps' } })
  local tmp = create('block', { title = 'scratch kubectl', content = 'x', temporary = true })
  -- Bob's row with the same word: row-level security keeps it out.
  bob = S.psql([[insert into prompts(user_id, title, content)
    select id, 'bob kubectl', 'kubectl' from auth.users where email = 'bob@example.com' returning id]])

  local mark = S.last_request()
  answers_alike(tmp)
  T.ok(#server_searches(mark) > 0, 'PostgREST was asked')
  T.eq(0, select(2, search('kubectl', 'prompt')) - 1, 'one prompt')
  -- A tag must be whole: PostgREST cannot look inside a text[] cheaply.
  T.eq(0, select(2, search('DevOp')), 'a part of a tag is not a hit')
  -- An edit made elsewhere is searched at once (the server has it).
  S.psql("update prompts set content = 'now about helm' where id = '" .. p.id .. "'")
  T.ok(search('HELM')['prompt:' .. p.id], 'the new content')
  T.ok(not search('kubectl')['prompt:' .. p.id], 'not the old')
  S.psql("update prompts set content = 'use KUBECTL apply' where id = '" .. p.id .. "'")
end)

T.test('with the copy, search is answered from it without a request to PostgREST', function()
  -- Another setup starts shelfd again, signed in by the saved session.
  S.sign_in('ada@example.com', 'ada-password')
  local tmp = create('block', { title = 'scratch kubectl', content = 'x', temporary = true })
  -- The load just done fills the copy (its file says so once written):
  -- every search from then on comes from it.
  local path = client.cache_path(S.env.SHELF_SUPABASE_URL)
  T.wait(function()
    local out = vim.fn.system({ 'sqlite3', '-readonly', path,
      "select count(*) from shelf_meta where key in ('filled:prompts', 'filled:context_blocks')" })
    return vim.v.shell_error == 0 and vim.trim(out) == '2'
  end, 'the copy filled', 20000)
  local mark = S.last_request()
  answers_alike(tmp)
  -- As the SQLite backend: a part of a tag is a hit; 1-2 characters look at
  -- titles, descriptions and tags, not content.
  T.ok(search('DevOp')['block:' .. odd.id], 'a part of a tag')
  T.ok(search('ap', 'prompt')['prompt:' .. p.id], 'two characters of the description')
  T.eq(0, select(2, search('ku', 'prompt')), 'two characters of the content only: no hit')
  T.eq({}, S.requests(mark, nil, '/rest/v1/'), 'no request to PostgREST while searching')
  -- An edit made elsewhere is found once it arrived (Realtime).
  S.psql("update prompts set title = 'Review helm', content = 'now about helm' where id = '" .. p.id .. "'")
  T.wait(function()
    local item = mirror.item('prompt', p.id)
    return item ~= nil and item.title == 'Review helm'
  end, 'the edit to arrive', 10000)
  T.ok(search('HELM')['prompt:' .. p.id], 'the new content')
  T.ok(not search('kubectl')['prompt:' .. p.id], 'not the old')
  T.eq({}, server_searches(mark), 'PostgREST was never asked to search')
end)
