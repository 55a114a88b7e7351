-- Search on the local stack (run by run_stack.sh): the query goes to
-- PostgREST as ilike over title, description and content (and a tag equal to
-- it), with PostgREST's reserved characters and LIKE's wildcards in the query
-- taken as plain text; another user's rows are never hits; temporary blocks
-- are found from memory.
local shelf = require('shelf')
local client = require('shelf.client')
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

T.test('search asks PostgREST, with odd characters as text, and sees only the user\'s rows', function()
  S.sign_in('ada@example.com', 'ada-password')
  local p = create('prompt', { title = 'Review', description = 'Apples for all', content = 'use KUBECTL apply' })
  local odd = create('block', { title = 'rate 100% of a_b, (c).d:e "q" x*y back\\slash', content = 'z',
    tags = { 'DevOps' } })
  local tmp = create('block', { title = 'scratch kubectl', content = 'x', temporary = true })
  -- Bob's row with the same word: row-level security keeps it out.
  local bob = S.psql([[insert into prompts(user_id, title, content)
    select id, 'bob kubectl', 'kubectl' from auth.users where email = 'bob@example.com' returning id]])

  local hits, n = search('kubectl')
  T.ok(hits['prompt:' .. p.id], 'the prompt by its content, any case')
  T.ok(hits['block:' .. tmp.id], 'the temporary block, from memory')
  T.ok(not hits['prompt:' .. bob], 'not bob\'s row')
  T.eq(2, n, 'nothing else')
  T.ok(search('aPPLES FOR', 'prompt')['prompt:' .. p.id], 'the description, any case')
  T.eq(0, select(2, search('kubectl', 'prompt')) - 1, 'one prompt')
  for _, q in ipairs({ '100%', '0%', 'a_b', ', (c).d:e', '"q"', 'x*y', 'back\\slash', 'DevOps' }) do
    T.ok(search(q)['block:' .. odd.id], 'found by ' .. q)
  end
  -- LIKE's wildcards are no wildcards.
  for _, q in ipairs({ 'a%b', 'rate_100', '1_0%' }) do
    T.eq(0, select(2, search(q)), 'nothing for ' .. q)
  end
  -- A tag must be whole: PostgREST cannot look inside a text[] cheaply.
  T.eq(0, select(2, search('DevOp')), 'a part of a tag is not a hit')
  -- An edit made elsewhere is searched at once (the server has it).
  S.psql("update prompts set content = 'now about helm' where id = '" .. p.id .. "'")
  T.ok(search('HELM')['prompt:' .. p.id], 'the new content')
  T.ok(not search('kubectl')['prompt:' .. p.id], 'not the old')
end)
