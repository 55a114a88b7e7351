-- The chaos run (run by run_stack.sh against a fresh stack): two writers on
-- one account, shelfd (this Neovim) and the web app (supabase-js, in
-- tests/stack/chaos-webapp.mjs), do random creates, updates, moves and deletes
-- of prompts, blocks and folders while faults are injected at random (HTTP
-- 5xx/429 bursts, slow answers, dropped connections, gateway killed and
-- restarted, PostgreSQL restarted, realtime cut). A write that fails is tried
-- again the way a person would. Then the faults stop, and both views must
-- converge to the database within a bound, with no acknowledged write lost
-- and no row duplicated.
--
-- SHELF_SOAK=1 makes it long (SHELF_CHAOS_SECONDS, default 600; quick: 40).
-- SHELF_CHAOS_SEED repeats a run (the seed is printed).
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')

local soak = vim.env.SHELF_SOAK == '1'
local seconds = tonumber(vim.env.SHELF_CHAOS_SECONDS or '') or (soak and 600 or 40)
local seed = tonumber(vim.env.SHELF_CHAOS_SEED or '') or (os.time() % 1000000)
local CONVERGE_MS = 60000
local out = io.stderr
local function say(fmt, ...)
  out:write('chaos: ' .. string.format(fmt, ...) .. '\n')
end

local S = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/stackenv_support.lua')
local env, load_env = S.env, S.load_env
local root = vim.env.SHELF_ROOT
local stack_sh = root .. '/tests/stack/stack.sh'
local admin_js = root .. '/tests/stack/admin.js'
local dir = vim.env.SHELF_TEST_TMP

local function nonil(v)
  if v == vim.NIL then
    return nil
  end
  return v
end

local function psql_json(sql)
  local res = vim.fn.system({ 'psql', env.DATABASE_URL, '-qAtc',
    'select coalesce(json_agg(t), \'[]\') from (' .. sql .. ') t' })
  T.eq(0, vim.v.shell_error, 'psql: ' .. res)
  return vim.json.decode(res)
end

-- The database as both writers should see it: table -> id -> row.
local TABLES = { 'prompts', 'context_blocks', 'prompt_projects', 'dataset_projects' }
local function db_snapshot(user_id)
  local snap = {}
  for _, t in ipairs(TABLES) do
    local cols = t:find('projects') and 'id, name, parent_id, updated_at'
      or 'id, title, content, tags, project_id, updated_at'
    snap[t] = {}
    for _, row in ipairs(psql_json(string.format("select %s from %s where user_id = '%s'", cols, t, user_id))) do
      snap[t][row.id] = row
    end
  end
  return snap
end

local function tags_key(tags)
  tags = nonil(tags) or {}
  local copy = {}
  for _, t in ipairs(tags) do
    table.insert(copy, t)
  end
  table.sort(copy)
  return table.concat(copy, ',')
end

-- Differences between the Lua mirror and a snapshot (empty: equal).
local function mirror_diff(snap)
  local diffs = {}
  local function cmp(kind, want_rows, filter)
    local seen = {}
    for _, it in ipairs(mirror.items(kind)) do
      local id = it.id
      if filter(it) then
        seen[id] = true
        local row = want_rows[id]
        if not row then
          table.insert(diffs, kind .. ' ' .. id .. ' in the mirror, not in the database')
        elseif kind == 'project' then
          if it.name ~= row.name or nonil(it.parent_id) ~= nonil(row.parent_id) then
            table.insert(diffs, string.format('folder %s differs: mirror %s, database %s', id,
              vim.inspect({ it.name, nonil(it.parent_id), it.updated_at }),
              vim.inspect({ row.name, nonil(row.parent_id), row.updated_at })))
          end
        elseif it.title ~= row.title or nonil(it.project_id) ~= nonil(row.project_id)
          or tags_key(it.tags) ~= tags_key(row.tags) or it.size ~= #row.content then
          table.insert(diffs, string.format('%s %s differs: mirror %s, database %s', kind, id,
            vim.inspect({ it.title, nonil(it.project_id), tags_key(it.tags), it.size, it.updated_at }),
            vim.inspect({ row.title, nonil(row.project_id), tags_key(row.tags), #row.content, row.updated_at })))
        end
      end
    end
    for id in pairs(want_rows) do
      if not seen[id] then
        table.insert(diffs, kind .. ' ' .. id .. ' in the database, not in the mirror')
      end
    end
  end
  local function all() return true end
  cmp('prompt', snap.prompts, all)
  cmp('block', snap.context_blocks, function(it) return not it.temporary end)
  cmp('project', snap.prompt_projects, function(it) return it.type == 'prompts' end)
  cmp('project', snap.dataset_projects, function(it) return it.type == 'datasets' end)
  return diffs
end

-- --- background jobs (faults, the web app) -----------------------------------
local jobs = {}
local function run_job(argv, on_done)
  local id
  id = vim.fn.jobstart(argv, {
    -- What the jobs say goes to a log, shown when something went wrong.
    on_stderr = function(_, lines)
      local f = io.open(dir .. '/jobs.log', 'a')
      if f then
        for _, l in ipairs(lines or {}) do
          if l ~= '' then
            f:write(l, '\n')
          end
        end
        f:close()
      end
    end,
    on_exit = function(_, code)
      jobs[id] = nil
      if on_done then
        on_done(code)
      end
    end,
  })
  if id > 0 then
    jobs[id] = true
  elseif on_done then
    on_done(-1)
  end
  return id
end

-- --- the fault injector -------------------------------------------------------
local faults = {}       -- kind -> count injected
local outage = false    -- a gateway or PostgreSQL restart is under way
local function count_fault(kind)
  faults[kind] = (faults[kind] or 0) + 1
end

local function admin(args, kind)
  local argv = { 'node', admin_js, '--env', vim.env.SHELF_STACK_ENV }
  vim.list_extend(argv, args)
  run_job(argv, function(code)
    if code == 0 and kind then
      count_fault(kind)
    end
  end)
end

local function pg_restart_cmd()
  local pg_ctl = '/usr/lib/postgresql/15/bin/pg_ctl'
  local cmd = string.format('%s -D %s -l %s/postgres.log -m fast -w -t 60 restart >/dev/null',
    vim.fn.shellescape(pg_ctl), vim.fn.shellescape(env.PG_DATA), vim.fn.shellescape(env.STACK_DIR))
  if vim.trim(vim.fn.system({ 'id', '-u' })) == '0' then
    cmd = 'runuser -u postgres -- ' .. cmd
  end
  return cmd
end

local function inject()
  local r = math.random()
  local paths = { '/rest/v1/', '/rest/v1/', '/auth/v1/', nil }
  if r < 0.25 then
    local status = ({ 500, 502, 503, 503 })[math.random(4)]
    admin({ 'fault', vim.json.encode({ count = math.random(1, 5), status = status,
      path = paths[math.random(4)] }) }, 'http_5xx')
  elseif r < 0.35 then
    admin({ 'fault', vim.json.encode({ count = math.random(1, 4), status = 429,
      body = { message = 'rate limited' }, path = paths[math.random(4)] }) }, 'http_429')
  elseif r < 0.5 then
    -- Some answers come later than shelfd's request timeout (4 s here): the
    -- request may still land after shelfd gave up on it.
    admin({ 'fault', vim.json.encode({ count = math.random(1, 3), delay_ms = math.random(300, 6000),
      path = '/rest/v1/' }) }, 'slow_response')
  elseif r < 0.62 then
    admin({ 'fault', vim.json.encode({ count = math.random(1, 3), drop = true,
      path = paths[math.random(4)] }) }, 'dropped_connection')
  elseif r < 0.75 then
    admin({ 'drop-realtime' }, 'realtime_cut')
  elseif outage then
    return
  elseif r < 0.9 then
    -- Down for up to 3 s; in a soak now and then for 30 s.
    local down = math.random(5, 30) / 10
    if soak and math.random() < 0.15 then
      down = 30
    end
    outage = true
    run_job({ 'bash', '-c', string.format('%s gateway-stop %s KILL && sleep %.1f && %s gateway-start %s',
      stack_sh, env.STACK_DIR, down, stack_sh, env.STACK_DIR) }, function(code)
      outage = false
      if code == 0 then
        count_fault('gateway_kill')
      end
    end)
  else
    outage = true
    run_job({ 'bash', '-c', pg_restart_cmd() }, function(code)
      outage = false
      if code == 0 then
        count_fault('postgres_restart')
        -- Supabase's Realtime restarts its replication with the database
        -- and its channels rejoin; the stack's change stream reconnects
        -- silently, so its sockets are cut here to do the same.
        admin({ 'drop-realtime' })
      end
    end)
  end
end

-- --- the editor's writer (shelfd) ---------------------------------------------
local L = {
  items = {},            -- id -> { kind, ptype, marker, fields, state, containers, v }
  markers = {},          -- marker -> true
  foreign_deletes = {},  -- web app rows we deleted (or tried to)
  ops = { create = 0, update = 0, move = 0, delete = 0, delete_foreign = 0, user_retries = 0,
    failed = 0, landed_though_failed = 0 },
  busy = {},             -- id -> true while an action on it runs
  pending = 0,           -- actions (with their user retries) not finished
  next_marker = 1,
  errors = {},           -- error text -> count
}
local stopping = false

local function note_error(err)
  local key = tostring(err):gsub('%x+%-%x+%-%x+%-%x+%-%x+', 'ID'):gsub('%d+', 'N'):sub(1, 120)
  L.errors[key] = (L.errors[key] or 0) + 1
  L.ops.failed = L.ops.failed + 1
end

local function is_gone(err)
  return err:find('no longer exists', 1, true) or err:find('there is no ', 1, true)
end

local function is_fk(err)
  return err:find('23503', 1, true) ~= nil
end

local function later(ms, fn)
  vim.defer_fn(fn, ms)
end

local function folder_col(kind)
  return kind == 'project' and 'parent_id' or 'project_id'
end

local function fields_for(kind, marker, v)
  if kind == 'project' then
    return { name = string.format('%s v%d', marker, v) }
  end
  return { title = string.format('%s v%d', marker, v),
    content = string.format('%s content v%d %08x', marker, v, math.random(0, 0x7fffffff)),
    tags = { 't' .. (v % 3) } }
end

local function find_marker(kind, marker)
  for _, it in ipairs(mirror.items(kind)) do
    local id = it.id
    local name = it.title or it.name or ''
    if name:sub(1, #marker + 1) == marker .. ' ' then
      return id
    end
  end
end

local function own_live(pred)
  local out_ = {}
  for id, it in pairs(L.items) do
    if it.state == 'live' and not L.busy[id] and (not pred or pred(it)) then
      table.insert(out_, id)
    end
  end
  table.sort(out_)
  return out_
end

local function folders_of(ptype, pred)
  local ids = {}
  for _, it in ipairs(mirror.items('project')) do
    local id = it.id
    if it.type == ptype and (not pred or pred(id, it)) then
      table.insert(ids, id)
    end
  end
  table.sort(ids)
  return ids
end

local function finish()
  L.pending = L.pending - 1
end

local function lua_create()
  local r = math.random()
  local kind, ptype = 'prompt', 'prompts'
  if r < 0.35 then
    kind, ptype = 'block', 'datasets'
  elseif r < 0.55 then
    kind, ptype = 'project', (math.random() < 0.5 and 'prompts' or 'datasets')
  end
  local marker = 'L' .. L.next_marker
  L.next_marker = L.next_marker + 1
  L.markers[marker] = true
  local fields = fields_for(kind, marker, 0)
  if kind == 'project' then
    fields.type = ptype
    -- Our folders only go inside our own folders (no cycles across writers).
    local own = own_live(function(it) return it.kind == 'project' and it.ptype == ptype end)
    if #own > 0 and math.random() < 0.5 then
      fields.parent_id = own[math.random(#own)]
    end
  else
    local f = folders_of(ptype)
    if #f > 0 and math.random() < 0.5 then
      fields.project_id = f[math.random(#f)]
    end
  end
  L.ops.create = L.ops.create + 1
  L.pending = L.pending + 1
  local function register(item_id)
    L.items[item_id] = { kind = kind, ptype = ptype, marker = marker, v = 0,
      fields = vim.deepcopy(fields), state = 'live', containers = { fields[folder_col(kind)] } }
    L.items[item_id].fields.type = nil
    finish()
  end
  local attempt
  attempt = function()
    shelf.create(kind, fields, function(err, item)
      if not err then
        register(item.id)
        return
      end
      note_error(err)
      if is_fk(err) then
        -- The folder went away meanwhile: make it at the top instead.
        fields[folder_col(kind)] = nil
      end
      -- A person looks at the refreshed list before typing :w again.
      local function check()
        L.ops.user_retries = L.ops.user_retries + 1
        shelf.refresh(function(rerr)
          if rerr then
            later(math.random(500, 2000), check)
            return
          end
          local id = find_marker(kind, marker)
          if id then
            L.ops.landed_though_failed = L.ops.landed_though_failed + 1
            register(id)
          else
            attempt()
          end
        end)
      end
      later(math.random(500, 2000), check)
    end)
  end
  attempt()
end

-- Our folder `t` lies inside our folder `id`.
local function own_descendant(t, id)
  local cur = L.items[t]
  for _ = 1, 200 do
    if not cur then
      return false
    end
    local p = cur.fields.parent_id
    if not p then
      return false
    end
    if p == id then
      return true
    end
    cur = L.items[p]
  end
  return true
end

local function lua_update(move)
  local ids = own_live()
  if #ids == 0 then
    return lua_create()
  end
  local id = ids[math.random(#ids)]
  local it = L.items[id]
  local change
  if move then
    local col = folder_col(it.kind)
    local targets
    if it.kind == 'project' then
      targets = own_live(function(o) return o.kind == 'project' and o.ptype == it.ptype end)
      targets = vim.tbl_filter(function(t) return t ~= id and not own_descendant(t, id) end, targets)
    else
      targets = folders_of(it.ptype)
    end
    local target = (#targets > 0 and math.random() < 0.8) and targets[math.random(#targets)] or nil
    change = { [col] = target or vim.NIL }
    table.insert(it.containers, target)
    L.ops.move = L.ops.move + 1
  else
    change = fields_for(it.kind, it.marker, it.v + 1)
    L.ops.update = L.ops.update + 1
  end
  L.busy[id] = true
  L.pending = L.pending + 1
  local function attempt()
    shelf.update(it.kind, id, change, function(err)
      if not err then
        for k, v in pairs(change) do
          it.fields[k] = nonil(v)
        end
        if move then
          it.containers = { nonil(change[folder_col(it.kind)]) }
        else
          it.v = it.v + 1
        end
      else
        note_error(err)
        if is_gone(err) then
          it.state = 'gone' -- deleted by the web app, or with its folder
        elseif is_fk(err) then
          -- The folder is gone, the row is as it was.
          table.remove(it.containers)
        else
          L.ops.user_retries = L.ops.user_retries + 1
          later(math.random(500, 2000), attempt)
          return
        end
      end
      L.busy[id] = nil
      finish()
    end)
  end
  attempt()
end

local function lua_delete()
  local ids = own_live()
  if #ids == 0 then
    return lua_create()
  end
  local id = ids[math.random(#ids)]
  local it = L.items[id]
  L.ops.delete = L.ops.delete + 1
  L.busy[id] = true
  L.pending = L.pending + 1
  local function attempt()
    shelf.delete(it.kind, id, function(err)
      if err then
        note_error(err)
        -- "No longer exists" stays possible here: the web app deletes our
        -- rows and folders (cascades), and a delete the person tries again
        -- may find that an earlier try landed. (shelfd's own retry of an
        -- unanswered delete that finds nothing reports success.)
        if not is_gone(err) then
          L.ops.user_retries = L.ops.user_retries + 1
          later(math.random(500, 2000), attempt)
          return
        end
      end
      it.state = 'deleted'
      L.busy[id] = nil
      finish()
    end)
  end
  attempt()
end

local function lua_delete_foreign()
  local cands = {}
  for _, kind in ipairs({ 'prompt', 'block', 'project' }) do
    for _, it in ipairs(mirror.items(kind)) do
      local id = it.id
      local name = it.title or it.name or ''
      if name:sub(1, 1) == 'W' then
        table.insert(cands, { kind, id })
      end
    end
  end
  if #cands == 0 then
    return
  end
  table.sort(cands, function(a, b) return a[2] < b[2] end)
  local c = cands[math.random(#cands)]
  L.foreign_deletes[c[2]] = true
  L.ops.delete_foreign = L.ops.delete_foreign + 1
  L.pending = L.pending + 1
  shelf.delete(c[1], c[2], function(err)
    if err then
      note_error(err)
    end
    finish()
  end)
end

local function lua_step()
  if stopping or L.pending >= 3 then
    return
  end
  local r = math.random()
  if r < 0.3 then
    lua_create()
  elseif r < 0.6 then
    lua_update(false)
  elseif r < 0.8 then
    lua_update(true)
  elseif r < 0.95 then
    lua_delete()
  else
    lua_delete_foreign()
  end
end

-- --- checking what each writer expects against the database -----------------
local function check_writer(name, items, other_deletes, snap, report)
  local tables = { prompt = 'prompts', block = 'context_blocks',
    prompts = 'prompt_projects', datasets = 'dataset_projects' }
  local function folder_exists(id)
    return snap.prompt_projects[id] ~= nil or snap.dataset_projects[id] ~= nil
  end
  for id, it in pairs(items) do
    local t = tables[it.kind == 'project' and it.ptype or it.kind]
    local row = snap[t][id]
    local explained = other_deletes[id]
    for _, c in pairs(it.containers or {}) do
      if c ~= vim.NIL and c and not folder_exists(c) then
        explained = true
      end
    end
    if it.state == 'live' then
      if not row then
        if explained then
          report.removed_by_other = report.removed_by_other + 1
        else
          report.lost = report.lost + 1
          table.insert(report.details, string.format('%s: %s %s (%s) is missing', name, t, id, it.marker))
        end
      elseif not it.uncertain then
        local f = it.fields
        local same
        if t:find('projects') then
          same = f.name == row.name and nonil(f.parent_id) == nonil(row.parent_id)
        else
          same = f.title == row.title and f.content == row.content
            and tags_key(f.tags) == tags_key(row.tags) and nonil(f.project_id) == nonil(row.project_id)
        end
        if not same then
          report.lost = report.lost + 1
          table.insert(report.details, string.format('%s: %s %s (%s) is not as last saved: want %s, have %s',
            name, t, id, it.marker, vim.inspect(f), vim.inspect(row)))
        end
      end
    elseif it.state == 'gone' then
      if row or not explained then
        report.lost = report.lost + 1
        table.insert(report.details, string.format('%s: %s %s (%s) said gone, %s', name, t, id, it.marker,
          row and 'but it is there' or 'and nobody deleted it'))
      end
    elseif it.state == 'deleted' then
      if row then
        report.lost = report.lost + 1
        table.insert(report.details, string.format('%s: %s %s (%s) deleted, but back', name, t, id, it.marker))
      end
    end
  end
end

T.test('chaos: two writers under random faults converge, nothing lost, nothing doubled', function()
  math.randomseed(seed)
  say('seed %d, %d s of chaos%s (SHELF_CHAOS_SEED=%d repeats it)', seed, seconds, soak and ' (soak)' or '', seed)
  shelf.setup({
    backend = 'supabase',
    supabase = { url = env.SHELF_SUPABASE_URL, anon_key = env.SHELF_SUPABASE_ANON_KEY,
      timeouts = { request = 4000, heartbeat = 5000, heartbeat_reply = 3000 } },
    helper = { log = dir .. '/shelfd.log' },
  })
  T.ready()
  local err, user = T.await(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login')
  T.eq(nil, err, 'login')
  T.wait(function() return client.status().realtime == 'joined' end, 'realtime joined', 30000)

  local web_dir = dir .. '/web'
  vim.fn.mkdir(web_dir, 'p')
  local web_exit
  run_job({ 'node', root .. '/tests/stack/chaos-webapp.mjs', vim.env.SHELF_STACK_ENV,
    tostring(seed + 1), tostring(seconds), web_dir }, function(code) web_exit = code end)

  local started = vim.loop.now()
  local step_timer = vim.loop.new_timer()
  step_timer:start(100, 120, vim.schedule_wrap(lua_step))
  local fault_timer = vim.loop.new_timer()
  local function arm()
    local ms = soak and math.random(2000, 8000) or math.random(1000, 3500)
    fault_timer:start(ms, 0, vim.schedule_wrap(function()
      if vim.loop.now() - started < seconds * 1000 then
        inject()
        arm()
      end
    end))
  end
  arm()
  -- The run lasts `seconds` (its length is what is asked for), while the
  -- timers above keep the editor writing and the faults coming.
  T.wait(function() return vim.loop.now() - started >= seconds * 1000 end, 'the end of the run',
    seconds * 1000 + 60000)

  -- Faults stop: every outage ends, injected faults not yet used are cleared.
  fault_timer:stop()
  fault_timer:close()
  T.wait(function() return not outage end, 'the last outage to end', 120000)
  load_env()
  local cleared, answer = false, ''
  -- Until the gateway answers (tried once a second).
  vim.wait(120000, function()
    answer = vim.fn.system({ 'node', admin_js, '--env', vim.env.SHELF_STACK_ENV, 'clear-faults' })
    cleared = vim.v.shell_error == 0
    return cleared
  end, 1000)
  if not cleared then
    say('the fault jobs said:\n%s\ngateway log:\n%s', table.concat(vim.fn.readfile(dir .. '/jobs.log', '', -30), '\n'),
      table.concat(vim.fn.readfile(env.STACK_DIR .. '/gateway.log', '', -30), '\n'))
  end
  T.ok(cleared, 'the gateway answers after the faults (' .. vim.trim(answer) .. '; '
    .. vim.fn.system({ stack_sh, 'status', env.STACK_DIR }) .. ')')
  local faults_stopped = vim.loop.now()
  say('faults stopped after %d s; waiting for both writers to settle', (faults_stopped - started) / 1000)
  stopping = true
  step_timer:stop()
  step_timer:close()
  -- Both writers finish what they started (retrying as a person would).
  T.wait(function() return L.pending == 0 end, 'the editor writer to settle', 180000)
  T.wait(function() return vim.fn.filereadable(web_dir .. '/web-settled') == 1 or web_exit ~= nil end,
    'the web app writer to settle', 180000)
  T.eq(nil, web_exit, 'the web app writer is still running (exit code)')
  T.wait(function() return vim.tbl_count(jobs) <= (web_exit == nil and 1 or 0) end,
    'the fault jobs to end', 60000)

  say('both writers settled')
  -- The database is quiet now. How long until the mirror equals it?
  local quiet = vim.loop.now()
  local snap = db_snapshot(user.id)
  local diffs, converged, converge_ms
  -- A write held up by a fault (a slow answer the gateway still carries out,
  -- a late create shelfd deletes again) may land meanwhile: then the
  -- database has moved, and the mirror is measured against it anew.
  for _ = 1, 5 do
    converged = vim.wait(CONVERGE_MS, function()
      diffs = mirror_diff(snap)
      return #diffs == 0
    end, 50)
    converge_ms = vim.loop.now() - quiet
    local now = db_snapshot(user.id)
    if vim.deep_equal(snap, now) then
      break
    end
    say('the database changed while measuring (a late write); measuring again')
    snap, quiet = now, vim.loop.now()
  end
  if not converged then
    say('the mirror did not converge in %d s; first differences:\n  %s', CONVERGE_MS / 1000,
      table.concat(vim.list_slice(diffs, 1, 10), '\n  '))
  end
  vim.fn.writefile({ 'go' }, web_dir .. '/web-refetch')
  T.wait(function() return web_exit ~= nil end, 'the web app report', 120000)
  T.eq(0, web_exit, 'the web app writer exit code')
  local web = vim.json.decode(table.concat(vim.fn.readfile(web_dir .. '/web-report.json'), '\n'))
  T.ok(vim.deep_equal(snap, db_snapshot(user.id)), 'the database stayed quiet while measuring')

  -- The web app's refetched view against the database.
  local web_diffs = 0
  for _, t in ipairs(TABLES) do
    local rows = {}
    for _, row in ipairs(web.view[t] or {}) do
      rows[row.id] = row
      local want = snap[t][row.id]
      if not want or (row.title or row.name) ~= (want.title or want.name) then
        web_diffs = web_diffs + 1
      end
    end
    for id in pairs(snap[t]) do
      if not rows[id] then
        web_diffs = web_diffs + 1
      end
    end
  end

  -- Lost and duplicated writes, for both writers.
  local report = { lost = 0, removed_by_other = 0, details = {} }
  local web_items = {}
  for id, it in pairs(web.items) do
    local kind, ptype = it.kind, nil
    if kind == 'prompts' or kind == 'datasets' then
      kind, ptype = 'project', it.kind
    end
    local containers = {}
    for _, c in ipairs(it.containers or {}) do
      if c ~= vim.NIL then
        table.insert(containers, c)
      end
    end
    web_items[id] = { kind = kind, ptype = ptype, marker = it.marker, fields = it.fields, state = it.state,
      containers = containers, uncertain = it.uncertain == true }
  end
  local web_deletes = {}
  for _, id in ipairs(web.foreign_deletes) do
    web_deletes[id] = true
  end
  check_writer('editor', L.items, web_deletes, snap, report)
  check_writer('web app', web_items, L.foreign_deletes, snap, report)
  local duplicated, unknown, per_marker, rows = 0, 0, {}, 0
  for _, t in ipairs(TABLES) do
    for id, row in pairs(snap[t]) do
      rows = rows + 1
      local marker = (row.title or row.name or ''):match('^([LW]%d+) ')
      if not marker or not (L.markers[marker] or web.markers[marker]) then
        unknown = unknown + 1
        table.insert(report.details, 'a row nobody made: ' .. t .. ' ' .. id)
      else
        per_marker[marker] = (per_marker[marker] or 0) + 1
        if per_marker[marker] == 2 then
          duplicated = duplicated + 1
          table.insert(report.details, 'duplicated: ' .. marker)
        end
      end
    end
  end

  local function fmt(tbl)
    local keys = vim.tbl_keys(tbl)
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do
      if type(tbl[k]) == 'number' then
        table.insert(parts, k .. ' ' .. tbl[k])
      end
    end
    return table.concat(parts, ', ')
  end
  local nfaults = 0
  for _, n in pairs(faults) do
    nfaults = nfaults + n
  end
  say('editor (shelfd) operations: %s', fmt(L.ops))
  say('web app (supabase-js) operations: %s', fmt(web.ops))
  say('faults injected: %d (%s)', nfaults, fmt(faults))
  say('errors the editor saw: %s', fmt(L.errors))
  say('convergence: mirror equal to the database %d ms after both writers settled (%d ms after the faults stopped); web app refetch %d ms; %d rows',
    converge_ms, vim.loop.now() - faults_stopped, web.refetch_ms, rows)
  say('lost %d, duplicated %d, unknown rows %d, web view differences %d, removed by the other writer %d',
    report.lost, duplicated, unknown, web_diffs, report.removed_by_other)
  for _, d in ipairs(vim.list_slice(report.details, 1, 20)) do
    say('  %s', d)
  end
  T.ok(converged, 'the mirror converged within ' .. CONVERGE_MS / 1000 .. ' s')
  T.eq(0, report.lost, 'lost writes')
  T.eq(0, duplicated, 'duplicated rows')
  T.eq(0, unknown, 'rows nobody made')
  T.eq(0, web_diffs, 'differences between the web app view and the database')
  -- A fault every 1-3.5 s (soak: 2-8 s), some of which find the gateway down.
  T.ok(nfaults >= math.max(3, seconds / (soak and 15 or 8)), 'enough faults were injected: ' .. nfaults)
  T.ok(L.ops.create + L.ops.update + L.ops.move + L.ops.delete >= 20, 'the editor wrote enough')
  T.eq(true, client.running(), 'shelfd still running')
end)
