-- Helpers of the fault tests against the local stack (stack_faults*.lua):
-- load with dofile(vim.env.SHELF_ROOT .. '/tests/nvim/faults_support.lua').
-- They start faults through tests/stack (stack.sh, admin.js), read the
-- database with psql, drive edit buffers as a user would (:w), and check
-- after each fault that shelfd recovered: Realtime joined, no error, the
-- mirror equal to the database, and no new error message for a while.
local UI = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')

local F = {}
F.SOAK = vim.env.SHELF_SOAK == '1'
F.message = UI.message
F.messages = function() return UI.messages end

local root = vim.env.SHELF_ROOT
local stack = root .. '/tests/stack/stack.sh'
local dir = vim.env.SHELF_STACK_DIR

local S = dofile(root .. '/tests/nvim/stackenv_support.lua')
F.env = S.env

-- Faults injected and survived (each F.recovered counts one), and when the
-- current one was first injected.
F.survived = {}
local fault_started = nil

function F.injected()
  fault_started = fault_started or vim.loop.now()
end

-- Every status shelfd pushed, with the time it came.
F.statuses = {}
vim.api.nvim_create_autocmd('User', {
  pattern = 'ShelfStatus',
  callback = function()
    local st = client.status()
    table.insert(F.statuses, { at = vim.loop.now(), error = st.error, realtime = st.realtime,
      realtime_message = st.realtime_message })
  end,
})

F.psql = S.psql
F.requests = S.requests
F.last_request = S.last_request
F.token_exp = S.token_exp

--- node admin.js CMD [JSON]
function F.admin(cmd, arg)
  F.injected()
  local argv = { 'node', root .. '/tests/stack/admin.js', '--env', vim.env.SHELF_STACK_ENV, cmd }
  if arg then
    table.insert(argv, vim.json.encode(arg))
  end
  local out = vim.fn.system(argv)
  T.eq(0, vim.v.shell_error, 'admin ' .. cmd .. ': ' .. out)
  return out
end

function F.fault(spec)
  return F.admin('fault', spec)
end

--- The stack's own view: realtime connections and channels, faults left, settings.
function F.stack_status()
  local argv = { 'node', root .. '/tests/stack/admin.js', '--env', vim.env.SHELF_STACK_ENV, 'status' }
  local out = vim.fn.system(argv)
  T.eq(0, vim.v.shell_error, 'admin status: ' .. out)
  return vim.json.decode(out)
end

--- The session file shelfd wrote (access_token, expires_at, user_id, ...), or nil.
F.session = S.session

function F.gateway_kill()
  F.injected()
  local out = vim.fn.system({ stack, 'gateway-stop', dir, 'KILL' })
  T.eq(0, vim.v.shell_error, 'gateway-stop: ' .. out)
end

-- Jobs started in the background; F.wait_jobs() waits for them.
local jobs = {}

local function bg(argv, what)
  local job = { what = what }
  job.id = vim.fn.jobstart(argv, {
    on_exit = function(_, code)
      job.code = code
    end,
  })
  T.ok(job.id > 0, 'started ' .. what)
  table.insert(jobs, job)
  return job
end

--- Start the gateway again after `secs` s, without blocking this editor.
function F.gateway_start_after(secs)
  return bg({ 'sh', '-c', string.format('sleep %s && exec "$0" gateway-start "$1"', secs), stack, dir },
    'gateway-start')
end

--- Stop PostgreSQL; returns once it is down.
function F.pg_stop()
  F.injected()
  local out = vim.fn.system({ stack, 'pg-stop', dir })
  T.eq(0, vim.v.shell_error, 'pg-stop: ' .. out)
end

--- Start PostgreSQL again, without blocking this editor.
function F.pg_start()
  return bg({ stack, 'pg-start', dir }, 'pg-start')
end

function F.wait_jobs()
  for _, j in ipairs(jobs) do
    T.wait(function() return j.code ~= nil end, j.what .. ' finished', 60000)
    T.eq(0, j.code, j.what .. ' exit code')
  end
  jobs = {}
end

function F.setup(extra)
  shelf.setup(vim.tbl_deep_extend('force', {
    backend = 'supabase',
    supabase = {
      url = F.env.SHELF_SUPABASE_URL,
      anon_key = F.env.SHELF_SUPABASE_ANON_KEY,
      -- Short enough for a quick test; the defaults are 10/30/25/10 s.
      timeouts = { connect = 2000, request = 3000, heartbeat = 2000, heartbeat_reply = 1500 },
    },
    helper = { log = vim.env.SHELF_TEST_TMP .. '/shelfd.log' },
  }, extra or {}))
end

function F.wait_joined(timeout)
  T.wait(function() return client.status().realtime == 'joined' end, 'realtime joined', timeout or 30000)
end

--- Set up, start shelfd, sign in as ada and wait for Realtime.
function F.start()
  T.test('sign in as ada', function()
    F.setup()
    T.ready()
    local err, user = T.await(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login')
    T.eq(nil, err, 'login')
    F.user = user
    F.wait_joined()
  end)
end

--- A row inserted with SQL, as another client would; returns its id.
function F.sql_insert(title)
  return F.psql(string.format("insert into prompts (user_id, title, content) values ('%s', '%s', 'x') returning id",
    F.user.id, title))
end

function F.create(kind, fields)
  local err, item = T.await(function(cb) shelf.create(kind, fields, cb) end, 'create ' .. kind, 60000)
  T.eq(nil, err, 'create ' .. kind)
  return item
end

-- ---- edit buffers --------------------------------------------------------------------------

--- Open an existing prompt in an edit buffer (in a window of its own).
function F.open(id)
  vim.cmd('silent! only!')
  vim.cmd('enew!')
  require('shelf.edit').open('prompt', id)
  UI.loaded()
  local buf = vim.api.nvim_get_current_buf()
  T.eq(id, (require('shelf.edit').info(buf) or {}).id, 'edit buffer')
  T.wait(function() return #UI.lines(buf) >= 7 end, 'the item loaded')
  return buf
end

--- A new prompt buffer with a title and content typed in.
function F.new_prompt(title, content)
  vim.cmd('silent! only!')
  vim.cmd('enew!')
  local buf = require('shelf.edit').new('prompt', { content = content })
  vim.api.nvim_buf_set_lines(buf, 1, 2, false, { 'title: ' .. title })
  return buf
end

function F.set_line(buf, n, text)
  local count = vim.api.nvim_buf_line_count(buf)
  if n > count then
    vim.api.nvim_buf_set_lines(buf, count, count, false, { text })
  else
    vim.api.nvim_buf_set_lines(buf, n - 1, n, false, { text })
  end
end

function F.line(buf, n)
  return vim.api.nvim_buf_get_lines(buf, n - 1, n, false)[1]
end

-- :w returns at once, without waiting for the confirmation, so the faults
-- these tests inject land while the save is under way.
require('shelf.edit').write_wait = 0

--- :w in the buffer's own context, as the user would type it.
function F.write(buf)
  vim.api.nvim_buf_call(buf, function()
    vim.cmd('write')
  end)
end

function F.modified(buf)
  return vim.api.nvim_buf_get_option(buf, 'modified')
end

-- ---- checks ------------------------------------------------------------------------------------

--- Wait until shelfd's status error contains every word of `words`.
function F.wait_error(words, what, timeout)
  T.wait(function()
    local e = client.status().error
    if not e then
      return false
    end
    for _, w in ipairs(words) do
      if not e:find(w, 1, true) then
        return false
      end
    end
    return true
  end, what, timeout or 30000)
  -- The watch F.recovered relies on (every status pushed) saw it too.
  local e = client.status().error
  T.ok(#vim.tbl_filter(function(s) return s.error == e end, F.statuses) > 0, 'the error among the statuses seen')
end

-- The user's rows in the database, as "kind id title" lines, sorted.
local function db_rows()
  local out = F.psql(string.format([[
    select 'prompt ' || id || ' ' || title from prompts where user_id = '%s'
    union all select 'block ' || id || ' ' || title from context_blocks where user_id = '%s'
    union all select 'project ' || id || ' ' || name from prompt_projects where user_id = '%s'
    union all select 'project ' || id || ' ' || name from dataset_projects where user_id = '%s'
    order by 1]], F.user.id, F.user.id, F.user.id, F.user.id))
  return out == '' and {} or vim.split(out, '\n')
end

local function mirror_rows()
  local rows = {}
  for _, kind in ipairs({ 'prompt', 'block', 'project' }) do
    for _, item in ipairs(mirror.items(kind)) do
      local id = item.id
      if not item.temporary then
        table.insert(rows, string.format('%s %s %s', kind, id, kind == 'project' and item.name or item.title))
      end
    end
  end
  table.sort(rows)
  return rows
end

--- The mirror becomes equal to the database (ids and titles of every kind).
function F.mirror_equals_db(what)
  local db, held
  local ok = vim.wait(20000, function()
    db, held = db_rows(), mirror_rows()
    return vim.deep_equal(db, held)
  end, 200)
  if not ok then
    error(string.format('%s: the mirror differs from the database\ndatabase:\n  %s\nmirror:\n  %s', what,
      table.concat(db, '\n  '), table.concat(held, '\n  ')), 2)
  end
end

--- After a fault: shelfd recovered by itself (still the same process or one
--- Lua restarted), Realtime joined, no error; the mirror equals the
--- database; a change made elsewhere arrives; and the status stays clean for
--- 2 s from the recovery (messages stopped).
function F.recovered(what)
  F.wait_jobs()
  T.wait(function()
    local st = client.status()
    return st.ready and st.realtime == 'joined' and st.error == nil
  end, what .. ': Realtime joined and no error', 60000)
  F.mirror_equals_db(what)
  -- A figure, not a check: from the first injection to a clean status and mirror.
  io.stderr:write(string.format('  recovered from %s in %.1f s after the fault began\n', what,
    (vim.loop.now() - (fault_started or vim.loop.now())) / 1000))
  fault_started = nil
  local since = vim.loop.now()
  -- A marker shelfd handles after what it had under way: a row another client
  -- adds reaches the mirror through Realtime, and the statuses pushed before
  -- it have been seen (pushes come in order).
  local marker = F.sql_insert('marker after ' .. what)
  T.wait(function() return mirror.item('prompt', marker) ~= nil end, what .. ': a change after recovery', 30000)
  -- Messages that stopped stay stopped: the quiet spell is what is checked.
  T.wait(function() return vim.loop.now() - since >= 2000 end, what .. ': a quiet spell')
  for _, s in ipairs(F.statuses) do
    if s.at >= since and (s.error or s.realtime ~= 'joined') then
      error(string.format('%s: a message after recovery: %s', what, vim.inspect(s)), 2)
    end
  end
  T.eq(true, client.running(), 'shelfd running')
  table.insert(F.survived, what)
end

--- Print the faults survived (a figure for the README).
function F.report()
  io.stderr:write(string.format('faults injected and survived: %d (%s)\n', #F.survived,
    table.concat(F.survived, '; ')))
end

return F
