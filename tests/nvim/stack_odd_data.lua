-- Odd data on the local stack (run by run_stack.sh): rows another client
-- wrote straight into the database with SQL (line breaks, control
-- characters, C1, bidi controls, emoji, RTL, 6,400 characters, empty and
-- blank titles; tags null, with NULLs, empty strings and duplicates) reach
-- the knowledge tab through Realtime, and after each the tab equals a fresh
-- render (odd_data_support.lua). Postgres keeps text as valid UTF-8 without
-- NUL, so those are the SQLite test's. SHELF_TEST_SEED picks the sequence.
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')
local O = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/odd_data_support.lua')
local S = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/stackenv_support.lua')
local psql = S.psql

local uid

-- A SQL literal holding exactly these bytes (valid UTF-8).
local function lit(s)
  if s == nil then
    return 'null'
  elseif s == '' then
    return "''"
  end
  return "convert_from(decode('" .. s:gsub('.', function(c) return string.format('%02x', c:byte()) end)
    .. "', 'hex'), 'UTF8')"
end

-- An id (a uuid) as SQL.
local function q(id)
  return id and ("'" .. id .. "'") or 'null'
end

local tbl = { prompt = 'prompts', block = 'context_blocks', prompts = 'prompt_projects',
  datasets = 'dataset_projects' }

-- Each write changes the content's length, which the mirror's `size` shows:
-- what to wait for.
local size = 0
local function next_size()
  size = size + 1
  return size
end

local function wait(cond, what)
  T.wait(cond, what, 20000)
end

local writer = {
  tags = function()
    local r = math.random(10)
    if r == 1 then
      return 'null'
    elseif r == 2 then
      return "'{}'"
    end
    local list = {}
    for i = 1, math.random(0, 4) do
      local k = math.random(6)
      list[i] = k == 1 and 'null' or k == 2 and "''" or k == 3 and "'dup'" or lit(vim.fn.strcharpart(O.text(false), 0, 40))
    end
    return 'array[' .. table.concat(list, ', ') .. ']::text[]'
  end,
  new_folder = function(t, parent, name, icon, what)
    local id = psql(string.format('insert into %s (user_id, name, icon, parent_id) values (%s, %s, %s, %s) '
      .. 'returning id', tbl[t], q(uid), lit(name), icon and lit(icon) or "'📁'", q(parent)))
    wait(function() return mirror.item('project', id) ~= nil end, what)
    return id
  end,
  update_folder = function(t, id, name, icon, what)
    psql(string.format("update %s set name = %s, icon = %s, updated_at = now() where id = '%s'", tbl[t], lit(name),
      lit(icon), id))
    wait(function() return mirror.item('project', id).name == name end, what)
  end,
  new_item = function(kind, f, what)
    local n = next_size()
    local cols = 'user_id, title, content, tags, project_id, updated_at'
    local vals = string.format("%s, %s, repeat('x', %d), %s, %s, now() - interval '%d seconds'", q(uid),
      lit(f.title), n, f.tags, q(f.project_id), f.ago or 0)
    if kind == 'prompt' then
      cols, vals = cols .. ', description', vals .. ', ' .. lit(f.description)
    end
    local id = psql(string.format('insert into %s (%s) values (%s) returning id', tbl[kind], cols, vals))
    wait(function() return (mirror.item(kind, id) or {}).size == n end, what)
    return id
  end,
  update_item = function(kind, id, title, tags, what)
    local n = next_size()
    psql(string.format("update %s set title = %s, tags = %s, content = repeat('x', %d), updated_at = now() "
      .. "where id = '%s'", tbl[kind], lit(title), tags, n, id))
    wait(function() return mirror.item(kind, id).size == n end, what)
  end,
  move_item = function(kind, id, to, what)
    local n = next_size()
    psql(string.format("update %s set project_id = %s, content = repeat('x', %d), updated_at = now() "
      .. "where id = '%s'", tbl[kind], q(to), n, id))
    wait(function() return mirror.item(kind, id).size == n end, what)
  end,
  delete_item = function(kind, id, what)
    psql(string.format("delete from %s where id = '%s'", tbl[kind], id))
    wait(function() return mirror.item(kind, id) == nil end, what)
  end,
}

T.test('signed in, realtime joined, the tab open', function()
  uid = psql("select id from auth.users where email = 'ada@example.com'")
  S.sign_in('ada@example.com', 'ada-password')
end)

T.test('property: random odd rows written with SQL; the tab always equals a fresh render', function()
  local seed = tonumber(vim.env.SHELF_TEST_SEED) or (os.time() % 1000000)
  vim.cmd('Shelf')
  local buf = vim.fn.bufnr('shelf://knowledge')
  T.ok(buf > 0, 'the tab')
  O.property(buf, seed, 40, writer, false)
  -- Every title as written, in the mirror and in the database.
  for _, kind in ipairs({ 'prompt', 'block' }) do
    for _, it in ipairs(mirror.items(kind)) do
      local hex = psql(string.format("select encode(convert_to(title, 'UTF8'), 'hex') from %s where id = '%s'",
        tbl[kind], it.id))
      T.eq(hex, (it.title:gsub('.', function(c) return string.format('%02x', c:byte()) end)), 'title of ' .. it.id)
    end
  end
end)
