-- shelf.health: :checkhealth shelf. Works on Neovim 0.7 (require('health')
-- with report_*) and 0.8+ (vim.health with start/ok/warn/error/info).
local M = {}

local health = vim.health or require('health')
local ui = require('shelf.ui')
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local error = health.error or health.report_error
local info = health.info or health.report_info

local function check_binary(client)
  local path, looked = client.find_binary()
  if not path then
    error('shelfd not found; looked at: ' .. table.concat(looked, ', '), {
      'Run `make` in the plugin directory (it builds bin/shelfd)',
      'or set helper.cmd in setup() to where shelfd is',
    })
    return false
  end
  -- Running the binary once here is fine: :checkhealth is asked for.
  local out = vim.fn.system({ path, '--version' })
  if vim.v.shell_error ~= 0 then
    error(string.format('%s does not run (exit %d): %s', path, vim.v.shell_error, vim.trim(out)), {
      'Rebuild it with `make`; a missing shared library shows above',
    })
    return false
  end
  ok('shelfd found: ' .. path)
  -- `shelfd --version` reads "shelfd VERSION (lib VERSION, lib VERSION)".
  local version, libs = vim.trim(out):match('^shelfd (%S+) %((.*)%)$')
  if not version then
    for _, line in ipairs(vim.split(vim.trim(out), '\n')) do
      info(line)
    end
    return true
  end
  ok('shelfd version ' .. version)
  for _, lib in ipairs(vim.split(libs, ',%s*')) do
    info('links ' .. lib)
  end
  return true
end

-- Which kind of Supabase key is configured (never the key itself).
local function check_key(config)
  local opts = config.get()
  if opts.backend ~= 'supabase' then
    return
  end
  local key = opts.supabase.anon_key or vim.env.SHELF_SUPABASE_ANON_KEY
  if not key or key == '' then
    error('no Supabase key: set supabase.anon_key (the publishable key) or $SHELF_SUPABASE_ANON_KEY')
    return
  end
  local kind = config.key_kind(key)
  if kind == 'publishable' then
    ok('Supabase key: a publishable key (sb_publishable_...)')
  elseif kind == 'legacy_anon' then
    ok('Supabase key: a legacy anon key (JWT)')
    info('Supabase is retiring legacy keys; the publishable key (sb_publishable_...) works the same')
  elseif kind == 'secret' then
    error(config.secret_key_error(key, 'the Supabase key'))
  else
    warn('Supabase key: neither a publishable key nor a legacy anon JWT', { 'Use the project\'s publishable key (sb_publishable_...)' })
  end
end

local function check_backend(client, config)
  local opts = config.get()
  local st = client.status()
  if not st.running then
    info('shelfd is not running (it starts on first use, e.g. :Shelf); backend checks need it running')
    return
  end
  if opts.backend == 'sqlite' then
    local path = st.path or config.sqlite_path()
    local dir = vim.fn.fnamemodify(path, ':h')
    if vim.fn.filewritable(dir) == 2 and (vim.fn.filereadable(path) == 0 or vim.fn.filewritable(path) == 1) then
      ok('database writable: ' .. path)
    else
      error('database not writable: ' .. path, { 'Check the permissions of ' .. dir })
    end
  end
  if st.ready then
    local c = st.counts or {}
    ok(string.format('library loaded: %s, %s, %s', ui.plural(c.prompt or 0, 'prompt'),
      ui.plural(c.block or 0, 'context block'), ui.plural(c.project or 0, 'folder')))
  else
    warn('the library is still loading')
  end
  if st.error then
    error('last error: ' .. tostring(st.error), { ':Shelf status shows more; :Shelf refresh retries' })
  else
    ok('backend reachable, no errors')
  end
  if opts.backend == 'supabase' then
    local user = type(st.user) == 'table' and (st.user.email or st.user.id) or st.user
    if user then
      ok('signed in as ' .. tostring(user) .. (st.provider and (' (' .. st.provider .. ')') or ''))
    else
      warn('not signed in', { ':Shelf login signs in (' .. table.concat(require('shelf.login').choices(), ', ')
        .. '); :help shelf-login says what to allow in the Supabase dashboard' })
    end
    if st.realtime == 'joined' then
      ok('realtime joined: changes elsewhere show up at once')
    else
      warn('realtime is ' .. tostring(st.realtime or 'off'),
        { 'Changes made elsewhere show up on :Shelf refresh until it joins' })
    end
  end
end

function M.check()
  start('shelf.nvim')
  if vim.fn.has('nvim-0.7') == 1 then
    local v = vim.version()
    ok(string.format('Neovim %d.%d.%d', v.major, v.minor, v.patch))
  else
    error('Neovim 0.7 or newer is needed')
  end
  local config = require('shelf.config')
  local client = require('shelf.client')
  local _, err = config.merge(vim.deepcopy(config.get()))
  if err then
    error('options: ' .. err)
  else
    ok('options valid (backend: ' .. config.get().backend .. ')')
  end
  check_key(config)
  start('shelf.nvim: helper')
  if check_binary(client) then
    check_backend(client, config)
  end
  info('log file: ' .. config.log_path())
end

return M
