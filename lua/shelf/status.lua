-- shelf.status: the text of :Shelf status and of statusline().
local display = require('shelf.display')
local client = require('shelf.client')
local config = require('shelf.config')
local ui = require('shelf.ui')

local M = {}

local function loading_text(loading)
  if type(loading) ~= 'table' then
    return nil
  end
  local parts = {}
  if loading.refresh then
    table.insert(parts, 'refreshing')
  end
  if (loading.actions or 0) > 0 then
    table.insert(parts, string.format('%d action%s', loading.actions, loading.actions == 1 and '' or 's'))
  end
  return #parts > 0 and table.concat(parts, ', ') or nil
end

-- Who, and how (google, email, password); never a token.
local function user_text(st)
  local who = type(st.user) == 'table' and (st.user.email or st.user.id) or tostring(st.user)
  return who .. (st.provider and (' (' .. tostring(st.provider) .. ')') or '')
end

--- Lines describing the plugin's state, for :Shelf status.
---@return string[]
function M.lines()
  local st = client.status()
  local lines = {}
  -- Each value on its line, whatever a server or another client sent.
  local function add(label, value)
    table.insert(lines, string.format('%-10s %s', label, display.line(value)))
  end
  add('backend', st.backend or '?')
  if st.backend == 'sqlite' then
    add('database', st.path or config.sqlite_path())
  end
  if st.user then
    add('user', user_text(st))
  elseif st.backend == 'supabase' then
    add('user', 'not signed in' .. (st.session and (': ' .. st.session) or ''))
  end
  if type(st.login) == 'table' then
    add('signing in', string.format('%s, waiting for %s', st.login.provider or st.login.email or '?',
      st.login.redirect and ('the browser at ' .. st.login.redirect) or 'a pasted address or code'))
  end
  if st.key then
    add('key', st.key)
  end
  if st.realtime then
    add('realtime', st.realtime)
  end
  local path, looked = client.find_binary()
  local c = st.crashes or { total = 0 }
  local function times(n)
    return n == 1 and 'once' or (n == 2 and 'twice' or (n .. ' times'))
  end
  if st.running then
    add('helper', 'running: ' .. (st.helper_path or path or '?'))
    if c.total > 0 then
      add('', string.format('restarted after crashing %s (last: %s)', times(c.total), c.last_exit))
    end
  elseif c.given_up and c.total > 0 and c.recent > config.get().helper.max_restarts then
    add('helper', string.format('STOPPED: crashed %s in a minute (%s in all; last: %s); not restarted '
      .. 'automatically. :Shelf restart starts it again', times(c.recent), times(c.total), c.last_exit))
  elseif c.given_up then
    add('helper', string.format('STOPPED: could not start (%s). Fix the set-up, then :Shelf restart',
      c.last_exit or st.error or '?'))
  elseif c.total > 0 then
    add('helper', string.format('restarting after crashing %s (last: %s)', times(c.total), c.last_exit))
  elseif path then
    add('helper', 'not started yet: ' .. path)
  else
    add('helper', 'NOT FOUND; looked at: ' .. table.concat(looked, ', '))
  end
  if st.counts then
    add('items', string.format('%s, %s (%d temporary), %s', ui.plural(st.counts.prompt or 0, 'prompt'),
      ui.plural(st.counts.block or 0, 'context block'), st.counts.temporary or 0,
      ui.plural(st.counts.project or 0, 'folder')))
  end
  add('loading', loading_text(st.loading) or (st.running and not st.ready and 'first load' or 'no'))
  if st.checking then -- the full comparison after a reconnect or a start, in the background
    add('checking', 'every row against the backend (what changed is in already)')
  end
  if st.indexing == true then -- after a first sign-in: half a minute at 100k items
    add('indexing', 'the local copy for search (searches find everything meanwhile, more slowly)')
  end
  add('error', st.error or 'none')
  add('log', config.log_path())
  return lines
end

--- Show the status (:Shelf status).
function M.show()
  local chunks = { { 'shelf.nvim\n', 'Title' } }
  for _, line in ipairs(M.lines()) do
    table.insert(chunks, { line .. '\n' })
  end
  vim.api.nvim_echo(chunks, false, {})
end

--- A short text for a statusline: '' when all is well and idle; with
--- { user = true }, who is signed in (and how) when idle.
---@param opts table|nil
---@return string
function M.statusline(opts)
  if not client.running() then
    return ''
  end
  local st = client.status()
  if type(st.login) == 'table' then
    return 'shelf: signing in'
  end
  if st.error then
    return 'shelf: error'
  end
  if loading_text(st.loading) or not st.ready then
    return 'shelf: syncing'
  end
  if st.realtime and st.realtime ~= 'joined' and st.realtime ~= 'off' then
    return 'shelf: ' .. display.line(st.realtime, display.max.tag)
  end
  if opts and opts.user and st.backend == 'supabase' then
    return st.user and ('shelf: ' .. display.line(user_text(st), display.max.tag)) or 'shelf: not signed in'
  end
  return ''
end

return M
