-- Equivalence on the local stack (run by run_stack.sh): a seeded random sequence of
-- creates, updates, moves and deletes of every kind (prompts, context blocks, folders of both
-- types, nested, with cascades), made partly through shelfd, partly in plain SQL and partly
-- with supabase-js as the web app writes; after each round the Lua mirror must equal the
-- database: every row of the user, every column the mirror shows. Some rounds make no write
-- through shelfd at all, so no refresh-after-action can hide a wrong realtime delta.
-- SHELF_EQ_SEED picks another sequence; the seed is printed.
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')

local S = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/stackenv_support.lua')
local env, psql = S.env, S.psql

local seed = tonumber(vim.env.SHELF_EQ_SEED or '20261125')
io.stderr:write('equivalence seed: ' .. seed .. '\n')
-- A small LCG: the same seed gives the same sequence on every machine and LuaJIT version.
local rng_state = seed
local function rand(n)
  rng_state = (rng_state * 1103515245 + 12345) % 2147483648
  return 1 + math.floor(rng_state / 2147483648 * n)
end
local function pick(list)
  if #list == 0 then
    return nil
  end
  return list[rand(#list)]
end
local counter = 0
local function uniq()
  counter = counter + 1
  return counter
end
local function uuid()
  local h = {}
  for i = 1, 32 do
    h[i] = string.format('%x', rand(16) - 1)
  end
  h[13] = '4'
  h[17] = ({ '8', '9', 'a', 'b' })[rand(4)]
  local s = table.concat(h)
  return string.format('%s-%s-%s-%s-%s', s:sub(1, 8), s:sub(9, 12), s:sub(13, 16), s:sub(17, 20), s:sub(21, 32))
end

local function q(s)
  if s == nil then
    return 'null'
  end
  return "'" .. tostring(s):gsub("'", "''") .. "'"
end
local function tags_sql(tags)
  local parts = {}
  for _, t in ipairs(tags) do
    table.insert(parts, q(t))
  end
  return 'array[' .. table.concat(parts, ',') .. ']::text[]'
end

local uid, bob
local tables = { prompt = 'prompts', block = 'context_blocks', pfolder = 'prompt_projects', dfolder = 'dataset_projects' }

-- The database as the mirror should show it, keyed kind:id (its times in
-- microseconds since the epoch, as shelfd gives them).
local function db_state()
  local sql = [[
select coalesce(json_agg(x), '[]') from (
  select json_strip_nulls(json_build_object('kind', 'prompt', 'id', id, 'title', title,
    'description', description, 'project_id', project_id, 'folder', folder, 'tags', tags,
    'size', octet_length(content), 'created_at', us(created_at), 'updated_at', us(updated_at))) x
    from prompts where user_id = '%s'
  union all
  select json_strip_nulls(json_build_object('kind', 'block', 'id', id, 'title', title,
    'project_id', project_id, 'tags', tags, 'size', octet_length(content),
    'created_at', us(created_at), 'updated_at', us(updated_at)))
    from context_blocks where user_id = '%s'
  union all
  select json_strip_nulls(json_build_object('kind', 'project', 'type', 'prompts', 'id', id, 'name', name,
    'icon', icon, 'parent_id', parent_id, 'folder_path', folder_path, 'is_system', is_system,
    'created_at', us(created_at), 'updated_at', us(updated_at)))
    from prompt_projects where user_id = '%s'
  union all
  select json_strip_nulls(json_build_object('kind', 'project', 'type', 'datasets', 'id', id, 'name', name,
    'icon', icon, 'parent_id', parent_id, 'folder_path', folder_path, 'is_system', is_system,
    'created_at', us(created_at), 'updated_at', us(updated_at)))
    from dataset_projects where user_id = '%s'
) s]]
  sql = sql:gsub('us%(([%w_]+)%)', '(extract(epoch from %1) * 1000000)::bigint')
  local rows = vim.json.decode(psql(string.format(sql, uid, uid, uid, uid)))
  local out = {}
  for _, r in ipairs(rows) do
    -- Lists show the first 200 bytes of a description, never ending inside a UTF-8 sequence.
    if type(r.description) == 'string' and #r.description > 200 then
      local n = 200
      while n > 0 and bit.band(r.description:byte(n), 0xC0) == 0x80 do
        n = n - 1
      end
      if n > 0 and bit.band(r.description:byte(n), 0xC0) == 0xC0 then
        n = n - 1
      end
      r.description = r.description:sub(1, n)
    end
    out[r.kind .. ':' .. r.id] = r
  end
  return out
end

local shown = {
  prompt = { 'id', 'title', 'description', 'project_id', 'folder', 'tags', 'size', 'created_at', 'updated_at' },
  block = { 'id', 'title', 'project_id', 'tags', 'size', 'created_at', 'updated_at' },
  project = { 'id', 'type', 'name', 'icon', 'parent_id', 'folder_path', 'is_system', 'created_at', 'updated_at' },
}
local function mirror_state()
  local out = {}
  for kind, cols in pairs(shown) do
    for _, it in ipairs(mirror.items(kind)) do
      local r = { kind = kind }
      for _, c in ipairs(cols) do
        if it[c] ~= nil and it[c] ~= vim.NIL then
          r[c] = it[c]
        end
      end
      out[kind .. ':' .. it.id] = r
    end
  end
  return out
end

-- The differences between the two, for the failure message (empty when equal).
local function diff()
  local db, m = db_state(), mirror_state()
  local lines = {}
  for k, r in pairs(db) do
    if not m[k] then
      table.insert(lines, 'missing from the mirror: ' .. k .. ' ' .. vim.inspect(r, { newline = '' }))
    elseif not vim.deep_equal(r, m[k]) then
      table.insert(lines, 'differs: ' .. k .. ' db ' .. vim.inspect(r, { newline = '' }) .. ' mirror '
        .. vim.inspect(m[k], { newline = '' }))
    end
  end
  for k in pairs(m) do
    if not db[k] then
      table.insert(lines, 'in the mirror, not in the database: ' .. k)
    end
  end
  table.sort(lines)
  return lines
end

local function check_equal(what)
  local last
  local ok = vim.wait(20000, function()
    if client.status().loading ~= nil then
      return false
    end
    last = diff()
    return #last == 0
  end, 50)
  if not ok then
    error(string.format('%s: the mirror differs from the database (%d differences):\n%s', what, #last,
      table.concat(vim.list_slice(last, 1, 15), '\n')), 2)
  end
end

-- Ids held by the database now, per table, and the folder parents (to avoid cycles).
local function db_ids()
  local ids = { prompts = {}, context_blocks = {}, prompt_projects = {}, dataset_projects = {} }
  local parent = {}
  local out = psql(string.format([[
select 'prompts', id, null::uuid from prompts where user_id = '%s'
union all select 'context_blocks', id, null::uuid from context_blocks where user_id = '%s'
union all select 'prompt_projects', id, parent_id from prompt_projects where user_id = '%s'
union all select 'dataset_projects', id, parent_id from dataset_projects where user_id = '%s'
order by 1, 2]], uid, uid, uid, uid))
  for line in out:gmatch('[^\n]+') do
    local t, id, p = line:match('^([%w_]+)|([^|]+)|(.*)$')
    table.insert(ids[t], id)
    parent[id] = p ~= '' and p or nil
  end
  return ids, parent
end

-- A folder that may become id's parent: not id itself, not below it.
local function parent_candidates(folders, parent, id)
  local out = {}
  for _, f in ipairs(folders) do
    local p, bad = f, false
    while p do
      if p == id then
        bad = true
        break
      end
      p = parent[p]
    end
    if not bad then
      table.insert(out, f)
    end
  end
  return out
end

local words = { 'alpha', 'review', "l'été", 'naïve', 'notes', '{{name}}', 'draft', 'ünïcode', 'plan', 'spec' }
local function text(min, max)
  -- Whole words only, so multi-byte characters are never cut.
  local n = min + rand(max - min + 1) - 1
  local parts = { pick(words) }
  local len = #parts[1]
  while true do
    local w = pick(words)
    if len + #w + 1 > n then
      break
    end
    table.insert(parts, w)
    len = len + #w + 1
  end
  return table.concat(parts, ' ')
end
local function tags()
  local t = {}
  for _ = 1, rand(3) - 1 do
    table.insert(t, pick({ 'a', 'b', 'work', 'home', 'x-y' }))
  end
  return t
end

-- One random operation: a table with the channel-independent intent.
-- op: create/update/move/delete; what: prompt/block/pfolder/dfolder.
local function random_op()
  local ids, parent = db_ids()
  local what = pick({ 'prompt', 'prompt', 'block', 'block', 'pfolder', 'dfolder' })
  local tbl = tables[what]
  local holder = what == 'prompt' and 'prompt_projects' or what == 'block' and 'dataset_projects' or tbl
  local folders = ids[holder]
  local target = pick(ids[tbl])
  local op = target and pick({ 'create', 'update', 'update', 'move', 'delete' }) or 'create'
  -- Deleting folders often would empty the library; keep it rarer.
  if op == 'delete' and (what == 'pfolder' or what == 'dfolder') and rand(3) > 1 then
    op = 'update'
  end
  local o = { op = op, what = what, table = tbl, id = target, fields = {} }
  local folderish = what == 'pfolder' or what == 'dfolder'
  if op == 'create' then
    o.id = uuid()
    if folderish then
      o.fields.name = 'Folder ' .. uniq() .. ' ' .. text(3, 20)
      local p = rand(2) == 1 and pick(folders) or nil
      o.fields.parent_id = p
    else
      o.fields.title = text(5, 60) .. ' #' .. uniq()
      o.fields.content = text(10, 600)
      o.fields.tags = tags()
      o.fields.project_id = rand(3) > 1 and pick(folders) or nil
      if what == 'prompt' and rand(2) == 1 then
        o.fields.description = text(50, 260)
      end
    end
  elseif op == 'update' then
    if folderish then
      o.fields.name = 'Renamed ' .. uniq() .. ' ' .. text(3, 20)
    else
      local r = rand(3)
      if r == 1 then
        o.fields.title = text(5, 60) .. ' #' .. uniq()
      elseif r == 2 then
        o.fields.content = text(10, 2000)
        o.fields.tags = tags()
      else
        o.fields.title = text(5, 60) .. ' #' .. uniq()
        o.fields.content = text(10, 300)
        if what == 'prompt' then
          o.fields.description = rand(2) == 1 and text(10, 300) or vim.NIL
        end
      end
    end
  elseif op == 'move' then
    if folderish then
      local cands = parent_candidates(folders, parent, target)
      o.fields.parent_id = rand(3) == 1 and vim.NIL or (pick(cands) or vim.NIL)
    else
      o.fields.project_id = rand(3) == 1 and vim.NIL or (pick(folders) or vim.NIL)
    end
  end
  return o
end

local kind_of = { prompt = 'prompt', block = 'block', pfolder = 'project', dfolder = 'project' }

local function via_shelfd(o)
  local kind = kind_of[o.what]
  if o.op ~= 'create' then
    T.wait(function() return mirror.item(kind, o.id) ~= nil end, 'the target in the mirror ' .. o.id)
  end
  local err
  if o.op == 'create' then
    local f = vim.deepcopy(o.fields)
    if kind == 'project' then
      f.type = o.what == 'pfolder' and 'prompts' or 'datasets'
    end
    err = T.await(function(cb) shelf.create(kind, f, cb) end, 'create')
  elseif o.op == 'delete' then
    err = T.await(function(cb) shelf.delete(kind, o.id, cb) end, 'delete')
  else
    err = T.await(function(cb) shelf.update(kind, o.id, o.fields, cb) end, 'update')
  end
  T.eq(nil, err, string.format('shelfd %s %s', o.op, o.what))
end

local function sql_value(k, v)
  if v == nil or v == vim.NIL then
    return 'null'
  elseif k == 'tags' then
    return tags_sql(v)
  end
  return q(v)
end

local function via_sql(o)
  if o.op == 'create' then
    local cols, vals = { 'id', 'user_id' }, { q(o.id), q(uid) }
    for k, v in pairs(o.fields) do
      table.insert(cols, k)
      table.insert(vals, sql_value(k, v))
    end
    if o.what == 'prompt' or o.what == 'block' then
      if not o.fields.tags then
        table.insert(cols, 'tags')
        table.insert(vals, "'{}'")
      end
    end
    psql(string.format('insert into %s (%s) values (%s)', o.table, table.concat(cols, ','), table.concat(vals, ',')))
  elseif o.op == 'delete' then
    psql(string.format('delete from %s where id = %s', o.table, q(o.id)))
  else
    local sets = { 'updated_at = now()' }
    for k, v in pairs(o.fields) do
      table.insert(sets, k .. ' = ' .. sql_value(k, v))
    end
    psql(string.format('update %s set %s where id = %s', o.table, table.concat(sets, ', '), q(o.id)))
  end
end

-- The web app's way: one supabase-js process runs a batch of operations in order.
local webapp_js = [[
const { createClient } = require('@supabase/supabase-js');
const WebSocket = require('ws');
const [url, key, ops] = process.argv.slice(1);
(async () => {
  const sb = createClient(url, key, { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: WebSocket } });
  const { data: auth, error } = await sb.auth.signInWithPassword({ email: 'ada@example.com', password: 'ada-password' });
  if (error) throw error;
  for (const o of JSON.parse(ops)) {
    let r;
    const f = o.fields;
    if (o.op === 'create') r = await sb.from(o.table).insert({ id: o.id, user_id: auth.user.id, ...f });
    else if (o.op === 'delete') r = await sb.from(o.table).delete().eq('id', o.id);
    else r = await sb.from(o.table).update({ ...f, updated_at: new Date().toISOString() }).eq('id', o.id);
    if (r.error) throw new Error(o.op + ' ' + o.table + ': ' + r.error.message);
  }
  process.exit(0);
})().catch((e) => { console.error(String(e && e.message || e)); process.exit(1); });
]]
local function via_webapp(batch)
  if #batch == 0 then
    return
  end
  local jops = {}
  for _, o in ipairs(batch) do
    local f = {}
    for k, v in pairs(o.fields) do
      f[k] = v == vim.NIL and vim.NIL or v
    end
    table.insert(jops, { op = o.op, table = o.table, id = o.id, fields = f })
  end
  local output = {}
  local code
  local job = vim.fn.jobstart({ 'node', '-e', webapp_js, env.SHELF_SUPABASE_URL, env.SHELF_SUPABASE_ANON_KEY,
    vim.json.encode(jops) }, {
    cwd = vim.env.SHELF_ROOT .. '/tests/stack',
    on_stderr = function(_, d) vim.list_extend(output, d) end,
    on_exit = function(_, c) code = c end,
  })
  T.ok(job > 0, 'node started')
  T.wait(function() return code ~= nil end, 'the web app batch', 60000)
  T.eq(0, code, 'supabase-js batch: ' .. table.concat(output, '\n'))
end

T.test('signed in, realtime joined, library empty', function()
  uid = psql("select id from auth.users where email = 'ada@example.com'")
  bob = psql("select id from auth.users where email = 'bob@example.com'")
  S.sign_in('ada@example.com', 'ada-password')
  check_equal('at the start')
end)

T.test('the comparison sees a wrong field, a missing row and an extra row', function()
  local id = psql(string.format(
    "insert into prompts (user_id, title, content) values ('%s', 'probe', 'x') returning id", uid))
  check_equal('after the probe row')
  local held = mirror.item('prompt', id)
  mirror._put('prompt', id, vim.tbl_extend('force', held, { title = 'wrong' }))
  local d = diff()
  T.eq(1, #d, 'one difference: ' .. table.concat(d, '; '))
  T.ok(d[1]:find('differs', 1, true), d[1])
  mirror._put('prompt', id, nil)
  d = diff()
  T.ok(#d == 1 and d[1]:find('missing from the mirror', 1, true), table.concat(d, '; '))
  mirror._put('prompt', id, held)
  mirror._put('prompt', '00000000-0000-4000-8000-000000000000', vim.tbl_extend('force', held,
    { id = '00000000-0000-4000-8000-000000000000' }))
  d = diff()
  T.ok(#d == 1 and d[1]:find('not in the database', 1, true), table.concat(d, '; '))
  mirror._put('prompt', '00000000-0000-4000-8000-000000000000', nil)
  psql(string.format("delete from prompts where id = '%s'", id))
  check_equal('after the probe row went')
end)

-- Rounds: which channels write. 'sql' and 'webapp' rounds make no write through shelfd.
local plan = { 'shelfd', 'sql', 'mixed', 'webapp', 'mixed', 'sql', 'shelfd', 'mixed', 'webapp', 'sql', 'mixed' }
local per_round = tonumber(vim.env.SHELF_EQ_OPS or '8')
for r, mode in ipairs(plan) do
  T.test(string.format('round %d (%s): the mirror equals the database', r, mode), function()
    local batch = {}
    for _ = 1, per_round do
      local o = random_op()
      local ch = mode
      if mode == 'mixed' then
        ch = pick({ 'shelfd', 'sql', 'webapp' })
      end
      if ch == 'webapp' then
        -- Ops of a batch are generated against the database as it is before the batch ran;
        -- flush before drawing the next one so targets exist.
        table.insert(batch, o)
        via_webapp(batch)
        batch = {}
      elseif ch == 'sql' then
        via_sql(o)
      else
        via_shelfd(o)
      end
    end
    -- Rows of another user, written in SQL, never show.
    if r % 3 == 0 then
      psql(string.format("insert into prompts (user_id, title, content) values ('%s', 'bob %d', 'x')", bob, r))
    end
    -- A bulk statement: many rows change in one transaction.
    if mode == 'sql' then
      psql(string.format("update prompts set tags = array_append(tags, 'bulk'), updated_at = now() where user_id = '%s' and project_id is null", uid))
    end
    check_equal('after round ' .. r)
  end)
end

T.test('after a full refresh the mirror still equals the database', function()
  local err = T.await(function(cb) shelf.refresh(cb) end, 'refresh')
  T.eq(nil, err, 'refresh')
  check_equal('after a refresh')
  local n = tonumber(psql(string.format(
    "select (select count(*) from prompts where user_id = '%s') + (select count(*) from context_blocks where user_id = '%s')",
    uid, uid)))
  T.ok(n > 0, 'the sequence left items to compare (' .. n .. ')')
end)
