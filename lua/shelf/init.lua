-- shelf: the public API (doc/architecture.md). Nothing is required at load time, so
-- `require('shelf')` costs nothing until a function is called.
local M = {}

local kinds = { block = true, prompt = true, project = true }

---@alias shelf.Kind 'block'|'prompt'|'project'
---@alias shelf.Callback fun(err: string|nil, item: table|nil)

local function client()
  return require('shelf.client')
end

local function mirror()
  return require('shelf.mirror')
end

local function check_kind(fn, kind)
  if not kinds[kind] then
    error(string.format("shelf.%s: kind must be 'block', 'prompt' or 'project', not %s",
      fn, vim.inspect(kind)), 3)
  end
end

local function check(fn, name, value, want, optional)
  if value == nil and optional then
    return
  end
  if type(value) ~= want then
    error(string.format('shelf.%s: %s must be a %s, not %s', fn, name, want, type(value)), 3)
  end
end

-- shelfd refuses a message nested deeper than this and drops the channel
-- (its msgpack reader cannot skip one), so such fields stop here.
local max_depth = 16

local function check_depth(fn, fields)
  local function walk(v, depth)
    if type(v) ~= 'table' then
      return
    end
    if depth > max_depth then
      error(string.format('shelf.%s: fields are nested deeper than %d levels', fn, max_depth), 0)
    end
    for _, x in pairs(v) do
      walk(x, depth + 1)
    end
  end
  walk(fields, 1)
end

-- The library the options name, as a user reads it ('sqlite <path>',
-- 'supabase <url>').
local function library_name()
  local config = require('shelf.config')
  local o = config.get()
  if o.backend == 'supabase' then
    return 'supabase ' .. tostring(o.supabase.url)
  end
  return 'sqlite ' .. config.sqlite_path()
end

--- Configure the plugin. Options: |shelf-options|. Calling it again with
--- another backend stops the running helper; the next use starts the new one.
---@param opts shelf.Options|nil
function M.setup(opts)
  local config = require('shelf.config')
  local merged, err = config.merge(opts)
  if not merged then
    vim.notify('shelf: setup() ignored bad options: ' .. err, vim.log.levels.ERROR)
    return false
  end
  local old = config.get()
  local old_backend, old_path = old.backend, config.sqlite_path()
  local old_where = library_name()
  config.set(merged)
  -- Another database, project URL, key or timeouts: shelfd must start anew.
  local moved = old_backend ~= merged.backend or old_path ~= config.sqlite_path()
    or (merged.backend == 'supabase' and not vim.deep_equal(old.supabase, merged.supabase))
  if package.loaded['shelf.client'] and moved then
    local where = library_name()
    if where ~= old_where then
      -- Temporary blocks belong to the library they were made beside, as a
      -- sign-in as another user drops them too. (The same project with
      -- another key or timeouts is a restart: they are given back.)
      mirror().switch_library()
      if client().running() or mirror().count('prompt') + mirror().count('block') > 0 then
        -- Said once here: what was open from the other library is not deleted.
        vim.notify(string.format('shelf: setup() opens another library: %s (was %s); the knowledge tab shows '
          .. 'it once loaded, and edit buffers keep their text', where, old_where), vim.log.levels.WARN)
      end
    end
    client().reset()
  end
  return true
end

--- Open the knowledge tab.
function M.open()
  require('shelf.tab').open()
end

--- Summaries of one kind from the mirror (no content), unordered.
---@param kind shelf.Kind
---@return table[]
function M.items(kind)
  check_kind('items', kind)
  client().start()
  return mirror().items(kind)
end

--- One item with its full content, read by shelfd from the backend (never
--- a blocking request): cb(err, item) runs later. Returns a ticket for
--- require('shelf.client').cancel.
---@param kind shelf.Kind
---@param id string
---@param cb fun(err: string|nil, item: table|nil)
function M.get(kind, id, cb)
  check_kind('get', kind)
  check('get', 'id', id, 'string')
  check('get', 'cb', cb, 'function')
  return client().get_async(kind, id, cb)
end

--- A new item id: a random (version 4) UUID, from the system's random
--- source (libuv's uv_random, else /dev/urandom).
---@return string
function M.new_id()
  local uv = vim.uv or vim.loop
  local bytes
  if uv.random then
    local ok, b = pcall(uv.random, 16)
    bytes = ok and type(b) == 'string' and #b == 16 and b or nil
  end
  if not bytes then
    local f = io.open('/dev/urandom', 'rb')
    if f then
      bytes = f:read(16)
      f:close()
    end
  end
  if type(bytes) ~= 'string' or #bytes ~= 16 then
    error('shelf.new_id: no random numbers (neither uv.random nor /dev/urandom)', 2)
  end
  local b = { bytes:byte(1, 16) }
  b[7] = b[7] % 16 + 0x40 -- version 4
  b[9] = b[9] % 64 + 0x80 -- RFC 4122 variant
  return string.format('%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x', unpack(b))
end

--- Create an item; cb(err, item) once the backend confirmed it.
--- fields.temporary = true makes a session-only context block. fields.id
--- (a UUID, see new_id) makes a create sent again after a lost answer the
--- same create; without one, a new id is chosen here.
---@param kind shelf.Kind
---@param fields table
---@param cb shelf.Callback|nil
function M.create(kind, fields, cb)
  check_kind('create', kind)
  check('create', 'fields', fields, 'table')
  check('create', 'cb', cb, 'function', true)
  check('create', 'fields.id', fields.id, 'string', true)
  check_depth('create', fields)
  if fields.id == nil then
    fields = vim.tbl_extend('force', {}, fields, { id = M.new_id() })
  end
  return client().call('create', { kind, fields }, cb)
end

--- Change only the given fields; vim.NIL clears one.
---@param kind shelf.Kind
---@param id string
---@param fields table
---@param cb shelf.Callback|nil
function M.update(kind, id, fields, cb)
  check_kind('update', kind)
  check('update', 'id', id, 'string')
  check('update', 'fields', fields, 'table')
  check('update', 'cb', cb, 'function', true)
  check_depth('update', fields)
  return client().call('update', { kind, id, fields }, cb)
end

--- Delete an item (a folder takes its content with it).
---@param kind shelf.Kind
---@param id string
---@param cb shelf.Callback|nil
function M.delete(kind, id, cb)
  check_kind('delete', kind)
  check('delete', 'id', id, 'string')
  check('delete', 'cb', cb, 'function', true)
  return client().call('delete', { kind, id }, cb)
end

--- Save a temporary context block as a real one (same id).
---@param id string
---@param cb shelf.Callback|nil
function M.save_temporary(id, cb)
  check('save_temporary', 'id', id, 'string')
  check('save_temporary', 'cb', cb, 'function', true)
  return client().call('save_temp', { id }, cb)
end

--- Refresh everything from the backend; cb(err) when done.
---@param cb fun(err: string|nil)|nil
function M.refresh(cb)
  check('refresh', 'cb', cb, 'function', true)
  return client().call('refresh', {}, cb)
end

--- Insert an item's content into the current buffer at the cursor.
---@param kind 'block'|'prompt'
---@param id string
function M.insert(kind, id)
  check_kind('insert', kind)
  check('insert', 'id', id, 'string')
  return require('shelf.insert').insert(kind, id)
end

--- Sign in (supabase backend).
function M.login(email, password, cb)
  check('login', 'email', email, 'string')
  check('login', 'password', password, 'string')
  check('login', 'cb', cb, 'function', true)
  return client().call('login', { email, password }, cb)
end

--- Sign in with an OAuth provider ('google', 'github', ...) in the browser;
--- shelfd pushes the URL to open (shelf.login shows and opens it). cb(err,
--- user) when the sign-in ends. |shelf-login|
function M.login_oauth(provider, cb)
  check('login_oauth', 'provider', provider, 'string')
  check('login_oauth', 'cb', cb, 'function', true)
  return require('shelf.login').start('login_oauth', provider, cb)
end

--- Sign in by a link or code sent to email (shelf.login says it was sent
--- and asks for the code); cb(err, user) when it ends.
function M.login_email(email, cb)
  check('login_email', 'email', email, 'string')
  check('login_email', 'cb', cb, 'function', true)
  return require('shelf.login').start('login_email', email, cb)
end

--- The code from the sign-in mail; cb(err, user).
function M.login_verify(email, code, cb)
  check('login_verify', 'email', email, 'string')
  check('login_verify', 'code', code, 'string')
  check('login_verify', 'cb', cb, 'function', true)
  return client().call('login_verify', { email, code }, cb)
end

--- Finish the waiting sign-in from the address the browser ended on (or its
--- code); cb(err, user).
function M.login_paste(text, cb)
  check('login_paste', 'text', text, 'string')
  check('login_paste', 'cb', cb, 'function', true)
  return client().call('login_paste', { text }, cb)
end

--- Give up the waiting sign-in.
function M.login_cancel(cb)
  check('login_cancel', 'cb', cb, 'function', true)
  return client().call('login_cancel', {}, cb)
end

--- Sign out (supabase backend).
function M.logout(cb)
  check('logout', 'cb', cb, 'function', true)
  return client().call('logout', {}, cb)
end

--- { backend, user, loading, realtime, error, counts, ... }
function M.status()
  return client().status()
end

--- A short text for a statusline; statusline({ user = true }) also says
--- who is signed in to Supabase, and how.
function M.statusline(opts)
  return require('shelf.status').statusline(opts)
end

-- require('shelf').builder: the prompt builder's API (|shelf-builder-api|),
-- loaded when first used.
return setmetatable(M, {
  __index = function(_, key)
    if key == 'builder' then
      return require('shelf.builder')
    end
  end,
})
