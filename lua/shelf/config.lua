-- shelf.config: the defaults (each documented in :help shelf-options) and
-- their validation. setup() merges the user's options onto a copy.
local M = {}

---@class shelf.Options
M.defaults = {
  -- 'sqlite' (a local file, no setup needed) or 'supabase'. |shelf-backend|
  backend = 'sqlite',
  sqlite = {
    -- The database file. nil: stdpath('data') .. '/shelf/library.db'.
    path = nil,
  },
  supabase = {
    -- Project URL and key; nil falls back to $SHELF_SUPABASE_URL and
    -- $SHELF_SUPABASE_ANON_KEY. The key is the project's publishable key
    -- (sb_publishable_...) or its legacy anon key; never a secret key.
    -- |shelf-supabase|
    url = nil,
    anon_key = nil,
    -- What :Shelf login offers (password is always there too): Supabase Auth
    -- provider names (google, github, gitlab, azure, ...) and 'email' (a
    -- link or code by mail). |shelf-login|
    providers = { 'google', 'email' },
    -- The port on 127.0.0.1 where the browser comes back after signing in;
    -- allow http://127.0.0.1:<port>/** in Supabase. 0: any free port.
    redirect_port = 47615,
    -- A CA bundle for a server with a private certificate authority.
    ca_file = nil,
    -- Keep a copy of the signed-in user's library on this computer (mode
    -- 0600 in stdpath('state')), so the tab is drawn from it at start and
    -- then brought up to date. |shelf-o-supabase.cache|
    cache = true,
    -- Network timeouts in ms; nil keeps shelfd's defaults (connect 10000,
    -- request 30000, heartbeat 25000, heartbeat_reply 10000). |shelf-timeouts|
    timeouts = {},
    -- The web app's table names.
    tables = {
      blocks = 'context_blocks',
      prompts = 'prompts',
      dataset_projects = 'dataset_projects',
      prompt_projects = 'prompt_projects',
    },
  },
  helper = {
    -- Path of shelfd; nil: the one `make` builds inside the plugin.
    cmd = nil,
    -- A log file for shelfd; nil: stdpath('cache') .. '/shelf/shelfd.log'.
    log = nil,
    -- Restarts after a crash within a minute before giving up.
    max_restarts = 3,
  },
  -- ---- UI (tab/, edit.lua, picker.lua, insert.lua) ----
  -- The knowledge tab. |shelf-tab|
  tab = {
    -- 'left' or 'right': the side of the knowledge tab's window.
    position = 'left',
    width = 40,
    -- Show tags and age after each title, dimmed.
    hints = true,
    -- In a library of more items than this, folders (and Unsorted) start
    -- closed, so the tab draws what can be seen. |shelf-tab-big|
    fold_above = 1000,
    -- Icons before items; folders show their own icon (default 📁).
    icons = {
      prompt = '≡',
      block = '¶',
      temporary = '~',
      unsorted = '…',
      builder = '●', -- the mark of a block in the prompt builder
    },
    -- Keys in the tab (a string, a list of strings, or false to unmap).
    -- Each is also a <Plug>(shelf-tab-NAME) map. |shelf-tab-keys|
    keys = {
      open = { '<CR>', 'o' }, -- open an item; fold or unfold a folder
      toggle = 'za',          -- fold or unfold the folder under the cursor
      insert = 'p',           -- insert into the window you came from
      new = 'a',              -- new item in the folder under the cursor
      new_folder = 'A',       -- new folder (inside the one under the cursor)
      rename = 'r',
      delete = 'd',           -- asks first, and says what goes with a folder
      yank = 'y',             -- content into the unnamed register
      new_temporary = 't',    -- new temporary block
      save_temporary = 's',   -- save a temporary block as a real one
      build = 'b',            -- add to the prompt builder, or take out
      move = 'm',             -- move to another folder
      filter = '/',           -- filter by title, tags and content
      refresh = 'R',
      close = 'q',
      help = 'g?',
    },
  },
  -- Edit buffers (shelf://prompt/<id>, shelf://block/<id>). |shelf-edit|
  edit = {
    -- Where <CR> in the tab and the pickers open an item: 'window' (the
    -- window you came from), 'split', 'vsplit' or 'tab'.
    open = 'window',
    -- How long a :q waits for a save still going (after :w gave up waiting
    -- for it) (ms).
    quit_timeout = 10000,
  },
  -- Pickers (:Shelf prompts, :Shelf blocks, :Shelf projects). |shelf-pickers|
  -- `picker = 'telescope'` is short for `picker = { ui = 'telescope' }`.
  picker = {
    -- Which picker: 'auto' (mini.pick if set up, else telescope.nvim if
    -- installed, else vim.ui.select), 'telescope', 'mini' or 'select'.
    ui = 'auto',
    -- What choosing a prompt or block does: 'insert', 'open', 'delete',
    -- 'build' (add it to the prompt builder) or 'ask' (a second menu).
    action = 'insert',
    -- Keys for each action in telescope and mini.pick (a key, or false).
    keys = {
      insert = '<C-y>',
      open = '<C-o>',
      delete = '<M-d>',
      build = '<C-e>', -- add to the prompt builder
    },
  },
  -- Inserting prompts and blocks. |shelf-insert|
  insert = {
    -- Ask for {{name}} placeholders in prompts when inserting them.
    placeholders = true,
  },
  -- The prompt builder (:Shelf build). |shelf-builder|
  builder = {
    -- Where :Shelf build shows it: 'vsplit' (on the right), 'split'
    -- (below), 'window' (the current window) or 'tab'.
    open = 'vsplit',
    -- Keys in the builder's buffer (a string, a list, or false). Each is
    -- also a <Plug>(shelf-build-NAME) map. |shelf-builder-keys|
    keys = {
      insert = '<LocalLeader>i', -- at the cursor of the window you came from
      yank = '<LocalLeader>y',   -- register + (clipboard), else "
      save = '<LocalLeader>s',   -- as a new saved prompt
      clear = '<LocalLeader>c',
      add = '<LocalLeader>a',    -- a picker of blocks and prompts
      open = '<LocalLeader>o',   -- the block under the cursor
      help = 'g?',
    },
  },
  -- ---- end of UI ----
}

local options = vim.deepcopy(M.defaults)

-- Expected types of every option, by dotted path. A table type lists the
-- accepted Lua types; 'nil' marks an option that may be unset.
local schema = {
  backend = { 'string' },
  sqlite = { 'table' },
  ['sqlite.path'] = { 'string', 'nil' },
  supabase = { 'table' },
  ['supabase.url'] = { 'string', 'nil' },
  ['supabase.anon_key'] = { 'string', 'nil' },
  ['supabase.providers'] = { 'table' },
  ['supabase.providers.*'] = true, -- a list: checked by check_values
  ['supabase.redirect_port'] = { 'number' },
  ['supabase.ca_file'] = { 'string', 'nil' },
  ['supabase.cache'] = { 'boolean' },
  ['supabase.timeouts'] = { 'table' },
  ['supabase.timeouts.connect'] = { 'number' },
  ['supabase.timeouts.request'] = { 'number' },
  ['supabase.timeouts.heartbeat'] = { 'number' },
  ['supabase.timeouts.heartbeat_reply'] = { 'number' },
  ['supabase.tables'] = { 'table' },
  ['supabase.tables.blocks'] = { 'string' },
  ['supabase.tables.prompts'] = { 'string' },
  ['supabase.tables.dataset_projects'] = { 'string' },
  ['supabase.tables.prompt_projects'] = { 'string' },
  helper = { 'table' },
  ['helper.cmd'] = { 'string', 'nil' },
  ['helper.log'] = { 'string', 'nil' },
  ['helper.max_restarts'] = { 'number' },
  -- ---- UI ----
  tab = { 'table' },
  ['tab.position'] = { 'string' },
  ['tab.width'] = { 'number' },
  ['tab.hints'] = { 'boolean' },
  ['tab.fold_above'] = { 'number' },
  ['tab.icons'] = { 'table' },
  ['tab.icons.prompt'] = { 'string' },
  ['tab.icons.block'] = { 'string' },
  ['tab.icons.temporary'] = { 'string' },
  ['tab.icons.unsorted'] = { 'string' },
  ['tab.icons.builder'] = { 'string' },
  ['tab.keys'] = { 'table' },
  edit = { 'table' },
  ['edit.open'] = { 'string' },
  ['edit.quit_timeout'] = { 'number' },
  picker = { 'table', 'string' }, -- a string: short for { ui = it } (merged below)
  ['picker.ui'] = { 'string' },
  ['picker.action'] = { 'string' },
  ['picker.keys'] = { 'table' },
  ['picker.keys.insert'] = { 'string', 'boolean' },
  ['picker.keys.open'] = { 'string', 'boolean' },
  ['picker.keys.delete'] = { 'string', 'boolean' },
  ['picker.keys.build'] = { 'string', 'boolean' },
  insert = { 'table' },
  ['insert.placeholders'] = { 'boolean' },
  builder = { 'table' },
  ['builder.open'] = { 'string' },
  ['builder.keys'] = { 'table' },
  -- ---- end of UI ----
}

-- UI: every tab key is a key, a list of keys (not walked: '.*'), or false.
for name in pairs(M.defaults.tab.keys) do
  schema['tab.keys.' .. name] = { 'string', 'table', 'boolean' }
  schema['tab.keys.' .. name .. '.*'] = true
end

for name in pairs(M.defaults.builder.keys) do
  schema['builder.keys.' .. name] = { 'string', 'table', 'boolean' }
  schema['builder.keys.' .. name .. '.*'] = true
end

-- Values with a fixed set of choices.
local choices = {
  backend = { 'sqlite', 'supabase' },
  ['tab.position'] = { 'left', 'right' },
  ['edit.open'] = { 'window', 'split', 'vsplit', 'tab' },
  ['picker.ui'] = { 'auto', 'telescope', 'mini', 'select' },
  ['picker.action'] = { 'insert', 'open', 'delete', 'build', 'ask' },
  ['builder.open'] = { 'vsplit', 'split', 'window', 'tab' },
}

local function check(path, value, errors)
  local want = schema[path]
  if not want then
    table.insert(errors, string.format("unknown option '%s'", path))
    return
  end
  local t = type(value)
  if not vim.tbl_contains(want, t) then
    table.insert(errors, string.format("option '%s' must be %s, not %s", path,
      table.concat(vim.tbl_filter(function(w) return w ~= 'nil' end, want), ' or '), t))
    return
  end
  if choices[path] and not vim.tbl_contains(choices[path], value) then
    table.insert(errors, string.format("option '%s' must be one of %s, not '%s'", path,
      table.concat(choices[path], ', '), tostring(value)))
  end
  -- Tables whose keys are free-form (such as key maps) are not walked.
  if t == 'table' and not (schema[path .. '.*']) then
    for k, v in pairs(value) do
      check(path .. '.' .. tostring(k), v, errors)
    end
  end
end

-- A JWT's payload: vim.base64 (Neovim 0.10+) where it exists, else by hand
-- (Neovim 0.7 has no decoder); only to read a key's role, never to trust it.
local function base64url_decode(s)
  s = s:gsub('-', '+'):gsub('_', '/')
  s = s .. string.rep('=', (4 - #s % 4) % 4)
  if vim.base64 then
    local ok, out = pcall(vim.base64.decode, s)
    return ok and out or nil
  end
  local alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  local out, bits, nbits = {}, 0, 0
  for c in s:gmatch('[^=]') do
    local v = alphabet:find(c, 1, true)
    if not v then
      return nil
    end
    bits = bits * 64 + (v - 1)
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      local byte = math.floor(bits / 2 ^ nbits)
      table.insert(out, string.char(byte))
      bits = bits - byte * 2 ^ nbits
    end
  end
  return table.concat(out)
end

--- What kind of Supabase API key `key` is: 'publishable', 'legacy_anon',
--- 'secret' (sb_secret_... or a service_role JWT) or 'other'.
---@param key string
---@return string
function M.key_kind(key)
  if key:sub(1, 15) == 'sb_publishable_' then
    return 'publishable'
  elseif key:sub(1, 10) == 'sb_secret_' then
    return 'secret'
  end
  local payload = key:match('^[%w_-]+%.([%w_-]+)%.')
  if not payload then
    return 'other'
  end
  local json = base64url_decode(payload)
  local ok, claims = pcall(vim.json and vim.json.decode or vim.fn.json_decode, json or '')
  local role = ok and type(claims) == 'table' and claims.role or nil
  if role == 'service_role' then
    return 'secret'
  elseif role == 'anon' then
    return 'legacy_anon'
  end
  return 'other'
end

--- The message for a secret key, or nil if key is fine to use.
function M.secret_key_error(key, where)
  if type(key) == 'string' and M.key_kind(key) == 'secret' then
    return where .. ' is a secret key (sb_secret_... or a service_role JWT): it bypasses '
      .. "row-level security and must not be in an editor's config; use the project's "
      .. 'publishable key (sb_publishable_...)'
  end
end

-- Numbers that count something (columns, items, ms, restarts): the least
-- and the most each may be (shelfd takes timeouts of up to an hour).
local HOUR_MS = 3600000
local counts_in = {
  ['tab.width'] = { 1 },
  ['tab.fold_above'] = { 0 },
  ['edit.quit_timeout'] = { 0 },
  ['helper.max_restarts'] = { 0 },
  ['supabase.timeouts.connect'] = { 1, HOUR_MS },
  ['supabase.timeouts.request'] = { 1, HOUR_MS },
  ['supabase.timeouts.heartbeat'] = { 1, HOUR_MS },
  ['supabase.timeouts.heartbeat_reply'] = { 1, HOUR_MS },
}

-- Checks of values beyond their types.
local function check_values(opts, errors)
  local sb = type(opts.supabase) == 'table' and opts.supabase or {}
  local err = M.secret_key_error(sb.anon_key, "option 'supabase.anon_key'")
  if err then
    table.insert(errors, err)
  end
  if type(sb.providers) == 'table' then
    for _, p in pairs(sb.providers) do
      if type(p) ~= 'string' or not p:match('^[a-z0-9_-]+$') or p == 'password' then
        table.insert(errors, string.format("option 'supabase.providers' holds %s: each is a "
          .. "provider name such as 'google' or 'github', or 'email'", vim.inspect(p)))
      end
    end
  end
  local port = sb.redirect_port
  if type(port) == 'number' and (port ~= math.floor(port) or port < 0 or port > 65535) then
    table.insert(errors, string.format("option 'supabase.redirect_port' must be a port "
      .. '(0..65535), not %s', tostring(port)))
  end
  for path, range in pairs(counts_in) do
    local v = opts
    for key in path:gmatch('[^.]+') do
      v = type(v) == 'table' and v[key] or nil
    end
    if type(v) == 'number' and (v ~= math.floor(v) or v < range[1] or v > (range[2] or math.huge)) then
      table.insert(errors, string.format("option '%s' must be a whole number %s, not %s", path,
        range[2] and string.format('from %d to %d', range[1], range[2]) or string.format('of at least %d', range[1]),
        tostring(v)))
    end
  end
end

--- Validate user options; returns the merged table, or nil and a message
--- naming every bad key.
---@param opts table|nil
---@return table|nil, string|nil
function M.merge(opts)
  if opts ~= nil and type(opts) ~= 'table' then
    return nil, 'setup() takes a table of options, not a ' .. type(opts)
  end
  if opts and type(opts.picker) == 'string' then
    opts = vim.tbl_extend('force', opts, { picker = { ui = opts.picker } })
  end
  local errors = {}
  for k, v in pairs(opts or {}) do
    check(tostring(k), v, errors)
  end
  if #errors == 0 then
    check_values(opts or {}, errors)
  end
  if #errors > 0 then
    table.sort(errors)
    return nil, table.concat(errors, '; ')
  end
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts or {})
  -- A list replaces the default list; deep_extend would merge them by index.
  if opts and type(opts.supabase) == 'table' and opts.supabase.providers then
    merged.supabase.providers = vim.deepcopy(opts.supabase.providers)
  end
  return merged
end

--- Replace the options (after M.merge succeeded).
function M.set(merged)
  options = merged
end

--- The options in force.
---@return shelf.Options
function M.get()
  return options
end

-- A path from the options as shelfd needs it: `~` expanded and absolute, so
-- the file does not depend on the directory Neovim was started in.
local function file_path(p)
  return vim.fn.fnamemodify(p, ':p')
end
M.file_path = file_path

--- The database file of the sqlite backend.
function M.sqlite_path()
  return file_path(options.sqlite.path or (vim.fn.stdpath('data') .. '/shelf/library.db'))
end

--- shelfd's log file.
function M.log_path()
  return file_path(options.helper.log or (vim.fn.stdpath('cache') .. '/shelf/shelfd.log'))
end

return M
