-- shelf.client: starts shelfd on first use (and again after a crash), talks
-- msgpack-RPC to it, and hands its pushes on: library changes to
-- shelf.mirror, sign-in news to shelf.login, answers to the callbacks that
-- wait for them. Views talk to shelfd only through this module. Nothing here
-- waits on disk or network: actions are notifications answered later by a
-- `done` push, queries by an `answer` push; the only requests (get, status,
-- ping) are served from shelfd's memory.
local config = require('shelf.config')
local mirror = require('shelf.mirror')
local ui = require('shelf.ui')

local M = {}

local state = {
  chan = nil,          -- the job/channel id while shelfd runs
  path = nil,          -- the binary in use
  tickets = {},        -- ticket -> callback
  next_ticket = 1,
  status = {},         -- the last status shelfd pushed
  crashes = {},        -- times of recent crashes
  crash_total = 0,     -- crashes since the last (re)start by hand
  last_exit = nil,     -- how the last crash ended: 'exit code N: <stderr>'
  stopping = false,
  stderr = {},         -- the last lines shelfd wrote to stderr
  given_up = false,    -- crashed too often: no automatic start
  exits = {},          -- job id -> exit code
  start_error = nil,
  deferred = {},       -- pushes that came meanwhile, or while the mirror applies one: { event, payload }
  draining = false,
  resting = false,     -- a push was applied this turn of the loop: the next waits for the next
}

-- `changed` pushes shelfd may send ahead of the one being applied; each is
-- acknowledged ('taken') when its application starts.
local PUSHES_AHEAD = 2

local notify = ui.notify_later

local function status_changed()
  ui.fire('ShelfStatus', M.status)
end

-- The plugin's root directory: two levels above this file.
local function plugin_root()
  local src = debug.getinfo(1, 'S').source:sub(2)
  return vim.fn.fnamemodify(src, ':p:h:h:h')
end

--- Where shelfd is looked for, in order, and the first that is executable.
---@return string|nil path, string[] looked_at
function M.find_binary()
  local opts = config.get().helper
  local candidates = {}
  if opts.cmd then
    -- An explicit path is used alone: falling back elsewhere would hide a typo.
    table.insert(candidates, vim.fn.expand(opts.cmd))
  else
    if vim.env.SHELF_HELPER and vim.env.SHELF_HELPER ~= '' then
      table.insert(candidates, vim.env.SHELF_HELPER)
    end
    table.insert(candidates, plugin_root() .. '/bin/shelfd')
  end
  for _, c in ipairs(candidates) do
    if vim.fn.executable(c) == 1 then
      return c, candidates
    end
  end
  return nil, candidates
end

local function fail_tickets(msg)
  local pending = state.tickets
  state.tickets = {}
  for _, cb in pairs(pending) do
    pcall(cb, msg, nil)
  end
end

local function on_exit(job, code)
  state.exits[job] = code
  -- A helper stopped on purpose (or one replaced since) is not a crash.
  if job ~= state.chan then
    return
  end
  state.chan = nil
  mirror.drop_load()
  if state.stopping then
    return
  end
  local why = #state.stderr > 0 and (': ' .. state.stderr[#state.stderr]) or ''
  fail_tickets(string.format('shelfd stopped unexpectedly (exit code %d)%s', code, why))
  state.crash_total = state.crash_total + 1
  -- 128 + N: killed by signal N.
  state.last_exit = (code > 128 and code < 160) and string.format('killed by signal %d%s', code - 128, why)
    or string.format('exit code %d%s', code, why)
  -- 2: bad arguments, 3: the library could not be opened. Both come from the
  -- set-up, and starting again would only fail the same way.
  if code == 2 or code == 3 then
    state.given_up = true
    state.start_error = string.format('shelfd could not start%s', why)
    notify(state.start_error .. '. Check setup() and :Shelf status; the log is '
      .. config.log_path() .. '; :Shelf restart tries again.')
    status_changed()
    return
  end
  local now = (vim.uv or vim.loop).now()
  state.crashes = vim.tbl_filter(function(t) return now - t < 60000 end, state.crashes)
  table.insert(state.crashes, now)
  local max = config.get().helper.max_restarts
  if #state.crashes > max then
    state.given_up = true
    state.start_error = string.format('shelfd crashed %d times in a minute%s', #state.crashes, why)
    notify(state.start_error .. '; not restarting. See :Shelf status and the log '
      .. config.log_path() .. '; :Shelf restart tries again.')
    status_changed()
    return
  end
  notify(string.format('shelfd stopped unexpectedly (exit code %d)%s; restarting it', code, why),
    vim.log.levels.WARN)
  vim.schedule(function()
    M.start()
  end)
end

local function on_stderr(_, lines)
  for _, line in ipairs(lines or {}) do
    if line ~= '' then
      table.insert(state.stderr, line)
      if #state.stderr > 20 then
        table.remove(state.stderr, 1)
      end
    end
  end
end

-- Where the Supabase session is kept (0.7 has no stdpath('state')).
local function session_path()
  local ok, dir = pcall(vim.fn.stdpath, 'state')
  if not ok then
    dir = vim.fn.stdpath('data')
  end
  return dir .. '/shelf/supabase-session.json'
end
M.session_path = session_path

-- The local copy of the library, beside the session: one file per project
-- URL, so another project's shelfd never opens this one's (the session file
-- names the user; shelfd keeps only that user's rows).
function M.cache_path(url)
  local dir = vim.fn.fnamemodify(session_path(), ':h')
  return string.format('%s/supabase-cache-%s.db', dir, vim.fn.sha256(url):sub(1, 16))
end

-- The folder of `file`, created if missing; nil and why if it cannot be.
local function ensure_folder(file, what, mode)
  local dir = vim.fn.fnamemodify(file, ':h')
  if vim.fn.isdirectory(dir) == 1 then
    return true
  end
  local ok, err = pcall(vim.fn.mkdir, dir, 'p', mode or 493) -- 0755
  if ok then
    return true
  end
  return nil, string.format('cannot create the folder for %s (%s): %s', what, dir,
    tostring(err):gsub('^Vim:', ''))
end

-- Delete the local copy at `cache` (and its -wal, -shm) without holding the
-- loop: unlinking a file of hundreds of MB (a library of 100k items) takes
-- the kernel 100-200 ms. Each file is renamed aside at once (cheap, and the
-- name is free for a new copy) and unlinked on libuv's thread pool; a rename
-- that fails (another system, a file held open) falls back to removing it
-- here. A leftover of an exit before the unlink ran goes with the next call
-- (keep: only those, the copy itself is in use).
local function remove_cache(cache, keep)
  local uv = vim.uv or vim.loop
  for _, suffix in ipairs({ '', '-wal', '-shm' }) do
    local file = cache .. suffix
    local aside = file .. '.removing'
    if not keep and uv.fs_stat(file) and not os.rename(file, aside) then
      os.remove(file)
    end
    if uv.fs_stat(aside) then
      uv.fs_unlink(aside, function() end)
    end
  end
end

-- The command line and environment of shelfd for the configured backend.
local function args_for(path)
  local opts = config.get()
  local log = config.log_path()
  local ok, err = ensure_folder(log, 'the log (helper.log)')
  if not ok then
    return nil, err
  end
  local args = { path, '--log', log }
  local env = nil
  if opts.backend == 'sqlite' then
    local db = config.sqlite_path()
    ok, err = ensure_folder(db, 'the library (sqlite.path)')
    if not ok then
      return nil, err
    end
    vim.list_extend(args, { '--sqlite', db })
  else
    local sb = opts.supabase
    local url = sb.url or vim.env.SHELF_SUPABASE_URL
    local key = sb.anon_key or vim.env.SHELF_SUPABASE_ANON_KEY
    if not url or url == '' then
      return nil, 'the supabase backend needs the project URL: set supabase.url in setup() or $SHELF_SUPABASE_URL'
    end
    if not key or key == '' then
      return nil, 'the supabase backend needs the anon key: set supabase.anon_key in setup() or $SHELF_SUPABASE_ANON_KEY'
    end
    local secret = config.secret_key_error(key, sb.anon_key and 'supabase.anon_key' or '$SHELF_SUPABASE_ANON_KEY')
    if secret then
      return nil, secret
    end
    local session = session_path()
    ok, err = ensure_folder(session, 'the session', 448) -- 0700
    if not ok then
      return nil, err
    end
    vim.list_extend(args, { '--supabase', url, '--session', session,
      '--redirect-port', tostring(sb.redirect_port or 47615) })
    local cache = M.cache_path(url)
    if sb.cache ~= false then
      vim.list_extend(args, { '--cache', cache })
      remove_cache(cache, true)
    else
      -- Turned off: a copy kept before is not left behind.
      remove_cache(cache)
    end
    if sb.ca_file then
      vim.list_extend(args, { '--ca-file', config.file_path(sb.ca_file) })
    end
    for name, ms in pairs(sb.timeouts or {}) do
      vim.list_extend(args, { '--timeout', string.format('%s=%d', name, ms) })
    end
    for kind, name in pairs(sb.tables) do
      vim.list_extend(args, { '--table', kind .. '=' .. name })
    end
    -- The key goes through the environment: argv is visible to other users.
    env = { SHELF_SUPABASE_ANON_KEY = key }
  end
  return args, nil, env
end

-- Give the temporary blocks Neovim kept to a shelfd just started (their
-- `changed` comes with its first load). One it refuses is dropped and said;
-- one a stopped shelfd never answered waits for the next start.
local function give_back_temps()
  for id, item in pairs(mirror.temps) do
    local fields = { title = item.title, content = item.content, tags = item.tags or {},
      project_id = item.project_id, temporary = true }
    local chan = state.chan
    M.call('restore_temp', { id, fields, item.created_at or vim.NIL, item.updated_at or vim.NIL }, function(err)
      if not err or state.chan ~= chan then
        return
      end
      mirror.forget_temp(id)
      -- Saved as a real block meanwhile: nothing was lost.
      if not err:find('a saved context block has the id', 1, true) then
        notify(string.format("the temporary block '%s' could not be given back to the new shelfd: %s",
          item.title or '(untitled)', err), vim.log.levels.WARN)
      end
    end)
  end
end

--- Start shelfd if it is not running. Returns the channel, or nil and why.
function M.start()
  if state.chan then
    return state.chan
  end
  if state.given_up then
    return nil, state.start_error .. '; :Shelf restart tries again'
  end
  local path, looked = M.find_binary()
  if not path then
    state.start_error = 'shelfd not found (looked at ' .. table.concat(looked, ', ')
      .. '); run `make` in the plugin directory or set helper.cmd'
    return nil, state.start_error
  end
  local args, err, env = args_for(path)
  if not args then
    state.start_error = err
    return nil, err
  end
  state.stopping = false
  state.stderr = {}
  state.path = path
  mirror.begin_load()
  state.status = {} -- a new process: nothing is known until it reports
  local ok, chan = pcall(vim.fn.jobstart, args, {
    rpc = true,
    env = env,
    on_exit = on_exit,
    on_stderr = on_stderr,
  })
  if not ok or chan <= 0 then
    mirror.drop_load()
    state.start_error = 'cannot start ' .. path .. ': ' .. tostring(ok and chan or chan)
    return nil, state.start_error
  end
  state.chan = chan
  state.start_error = nil
  -- At most 2 `changed` pushes ahead of the one being applied: a bulk change
  -- elsewhere then never piles up dozens that Neovim decodes in one go.
  pcall(vim.rpcnotify, chan, 'flow', PUSHES_AHEAD)
  give_back_temps()
  vim.api.nvim_create_autocmd('VimLeavePre', {
    group = vim.api.nvim_create_augroup('shelf_helper', { clear = true }),
    desc = 'shelf: stop shelfd',
    callback = function()
      M.stop(true)
    end,
  })
  return chan
end

--- Stop shelfd (on exit, backend switch, or :Shelf restart). When the
--- editor is exiting, pending callbacks are dropped rather than told.
function M.stop(exiting)
  if not state.chan then
    return
  end
  state.stopping = true
  local chan = state.chan
  state.chan = nil
  state.deferred = {} -- the stopped process's pushes
  mirror.stop_applying()
  state.resting = false
  if exiting then
    state.tickets = {}
  else
    fail_tickets('shelfd was stopped')
  end
  -- Closing the channel lets shelfd see EOF and shut down in order; a
  -- helper that does not exit soon after is stopped the hard way.
  pcall(vim.fn.chanclose, chan, 'rpc')
  vim.defer_fn(function()
    pcall(vim.fn.jobstop, chan)
  end, 3000)
end

--- Stop shelfd and wait for it to exit; returns its exit code (tests).
function M._stop_and_wait(timeout)
  local chan = state.chan
  M.stop()
  vim.wait(timeout or 5000, function()
    return state.exits[chan] ~= nil
  end, 10)
  return state.exits[chan]
end

--- Stop shelfd and forget past crashes (new settings deserve a new start).
function M.reset()
  M.stop()
  state.crashes = {}
  state.crash_total = 0
  state.last_exit = nil
  state.given_up = false
  state.start_error = nil
  state.status = {}
end

--- Restart shelfd now, forgetting past crashes.
function M.restart()
  M.reset()
  return M.start()
end

function M.running()
  return state.chan ~= nil
end

--- shelfd's process id, or nil (tests, :checkhealth).
function M.pid()
  if not state.chan then
    return nil
  end
  local ok, pid = pcall(vim.fn.jobpid, state.chan)
  return ok and pid or nil
end

local drain_later

local handlers = {}

function handlers.changed(payload)
  -- Taken: shelfd may send the next (see PUSHES_AHEAD).
  if state.chan then
    pcall(vim.rpcnotify, state.chan, 'taken')
  end
  mirror.apply(payload, function()
    -- Neovim may have read several pushes in one go and would run them
    -- back to back: the next one waits for the next turn of the loop.
    state.resting = true
    vim.defer_fn(function()
      state.resting = false
      if #state.deferred > 0 then
        drain_later()
      end
    end, 0)
  end)
end

function handlers.status(payload)
  state.status = payload
  -- Ends a burst of changes, or a new shelfd's first load (ShelfStatus
  -- below tells the views that waited for it).
  mirror.status_pushed(payload)
  status_changed()
end

-- A sign-in waiting for the browser or a mail moved on (doc/architecture-auth.md).
function handlers.auth(payload)
  require('shelf.login')._on_auth(payload)
end

function handlers.done(payload)
  local item = payload.item
  if item == vim.NIL then
    item = nil
  end
  mirror.confirmed(item)
  local cb = state.tickets[payload.ticket]
  state.tickets[payload.ticket] = nil
  if not cb then
    return
  end
  local err = payload.error
  if err == vim.NIL then
    err = nil
  end
  local ok, e = pcall(cb, err, item)
  if not ok then
    notify('a callback failed: ' .. tostring(e))
  end
end

-- A query's answer (client.query): no mirror change rides on it.
function handlers.answer(payload)
  local cb = state.tickets[payload.ticket]
  state.tickets[payload.ticket] = nil
  if not cb then
    return -- cancelled, or its shelfd was replaced
  end
  local err, result = payload.error, payload.result
  if err == vim.NIL then
    err = nil
  end
  if result == vim.NIL then
    result = nil
  end
  local ok, e = pcall(cb, err, result)
  if not ok then
    notify('a callback failed: ' .. tostring(e))
  end
end

local function handle(event, payload)
  local h = handlers[event]
  if h then
    local ok, err = pcall(h, payload)
    if not ok then
      notify('handling "' .. tostring(event) .. '" from shelfd failed: ' .. tostring(err))
    end
  end
end

-- While the mirror applies a big `changed` push in slices, later pushes wait,
-- in order, until it is done. (Nothing here waits on vim.rpcrequest: every
-- question to shelfd is a query answered by a push, see M.query.)
local function drain()
  state.draining = false
  while not mirror.busy() and not state.resting and #state.deferred > 0 do
    local p = table.remove(state.deferred, 1)
    handle(p[1], p[2])
  end
end

function drain_later()
  if not state.draining then
    state.draining = true
    vim.schedule(drain)
  end
end

--- Entry point of every push from shelfd (through nvim_exec_lua).
function M._receive(event, payload)
  if mirror.busy() or state.resting or #state.deferred > 0 then
    table.insert(state.deferred, { event, payload })
    if not mirror.busy() and not state.resting then
      drain_later()
    end
    return
  end
  handle(event, payload)
end

-- shelfd reads one message of at most 64 MiB and stops at a larger one (it
-- cannot skip a message it has not read), so text past what any item can
-- hold is refused here; smaller excess gets shelfd's own per-field message.
local max_text = 48 * 2 ^ 20
local function text_size(v, depth)
  if type(v) == 'string' then
    return #v
  elseif type(v) == 'table' and depth < 32 then -- deeper is refused anyway (RPC_MAX_DEPTH)
    local n = 0
    for _, x in pairs(v) do
      n = n + text_size(x, depth + 1)
    end
    return n
  end
  return 0
end

-- Send a notification with a new ticket whose answer (`done` or `answer`)
-- runs cb. Returns the ticket, or nil (cb then gets the error).
local function send(method, args, cb)
  local chan, err = M.start()
  if not chan then
    vim.schedule(function()
      cb(err, nil)
    end)
    return nil
  end
  local ticket = state.next_ticket
  state.next_ticket = ticket + 1
  state.tickets[ticket] = cb
  local ok, e = pcall(vim.rpcnotify, chan, method, ticket, unpack(args))
  if not ok then
    state.tickets[ticket] = nil
    vim.schedule(function()
      cb('cannot reach shelfd: ' .. tostring(e), nil)
    end)
    return nil
  end
  return ticket
end

--- Send an action; cb(err, result) runs later on the main loop. Returns the
--- ticket, or nil if shelfd could not be started (then cb got the error).
---@param method string 'create'|'update'|'delete'|'refresh'|'save_temp'
---@param args table positional arguments after the ticket
---@param cb fun(err: string|nil, result: any)|nil
function M.call(method, args, cb)
  cb = cb or function(err)
    if err then
      notify(err)
    end
  end
  local size = text_size(args, 0)
  if size > max_text then
    local verb = ({ create = 'Creating', update = 'Saving' })[method] or method
    local label = require('shelf.ui').kind_names[args[1]] or 'item'
    vim.schedule(function()
      cb(string.format('%s %s failed: it holds %.1f MiB of text, more than an item can (content and description: 16 MiB each)',
        verb, label, size / 2 ^ 20), nil)
    end)
    return nil
  end
  return send(method, args, cb)
end

--- Ask shelfd something; cb(err, result) runs later on the main loop, when
--- its `answer` push arrives (or with an error if shelfd stops first).
--- Returns the ticket (for M.cancel), or nil if shelfd could not be started.
---@param method string 'get'|'search'
---@param args table positional arguments after the ticket
---@param cb fun(err: string|nil, result: any)
function M.query(method, args, cb)
  return send(method, args, cb)
end

--- Forget a query's answer (its callback never runs) and tell shelfd, which
--- may drop the work if it has not started.
function M.cancel(ticket)
  if ticket and state.tickets[ticket] then
    state.tickets[ticket] = nil
    if state.chan then
      pcall(vim.rpcnotify, state.chan, 'cancel', ticket)
    end
  end
end

--- One item with its content: cb(err, item).
function M.get_async(kind, id, cb)
  return M.query('get', { kind, id }, cb)
end

--- {kind=, id=} of items whose title, tags or content contain query:
--- cb(err, hits). kind: 'block', 'prompt' or nil for both; limit: at most
--- that many hits (1 to 10000, default 10000). Searched in the store (see
--- doc/shelf.txt, the tab's filter, for what short queries match).
function M.search_async(query, kind, cb, limit)
  return M.query('search', { query, kind or vim.NIL, limit or vim.NIL }, cb)
end

--- The status: what shelfd pushed last, plus what only Lua knows.
function M.status()
  local st = vim.deepcopy(state.status or {})
  st.backend = st.backend or config.get().backend
  st.running = state.chan ~= nil
  st.helper_path = state.path or (M.find_binary())
  -- Crashes since the last start by hand, for :Shelf status.
  st.crashes = { total = state.crash_total, recent = #state.crashes, given_up = state.given_up,
    last_exit = state.last_exit }
  if state.start_error then
    st.error = state.start_error
  end
  if st.error == vim.NIL then
    st.error = nil
  end
  return st
end

return M
