-- What every test against the local stack (run by run_stack.sh) starts with:
-- the stack's environment (SHELF_STACK_ENV, lines of `export K='v'`) and psql
-- on its database. Load with
-- local S = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/stackenv_support.lua').
local S = { env = {} }

-- Reads the environment file again (a restarted gateway may have moved), in
-- place, so every holder of S.env sees the new values.
function S.load_env()
  for line in io.lines(vim.env.SHELF_STACK_ENV) do
    local k, v = line:match("^export ([%w_]+)='([^']*)'")
    if k then
      S.env[k] = v
    end
  end
  return S.env
end
S.load_env()

-- One SQL string (several statements are fine) as the database owner; the
-- test fails on any SQL error. Returns the unaligned, trimmed output.
function S.psql(sql)
  local out = vim.fn.system({ 'psql', S.env.DATABASE_URL, '-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', sql })
  T.eq(0, vim.v.shell_error, 'psql: ' .. out .. ' for ' .. sql)
  return vim.trim(out)
end

--- Set up on the stack (with the `supabase` options in `extra`, if any), sign
--- in with a password and wait until the library is loaded and Realtime joined.
function S.sign_in(email, password, extra)
  local shelf = require('shelf')
  shelf.setup({
    backend = 'supabase',
    supabase = vim.tbl_extend('force',
      { url = S.env.SHELF_SUPABASE_URL, anon_key = S.env.SHELF_SUPABASE_ANON_KEY }, extra or {}),
    helper = { log = vim.env.SHELF_TEST_TMP .. '/shelfd.log' },
  })
  T.ready()
  local err = T.await(function(cb) shelf.login(email, password, cb) end, 'login')
  T.eq(nil, err, 'login')
  T.wait(function()
    local st = require('shelf.client').status()
    return st.ready and st.signed_in and st.realtime == 'joined'
  end, 'loaded and joined', 20000)
end

--- node admin.js CMD [JSON]: a test hook of the stack's gateway; its answer, decoded.
function S.admin(cmd, arg)
  local argv = { 'node', vim.env.SHELF_ROOT .. '/tests/stack/admin.js', '--env', vim.env.SHELF_STACK_ENV, cmd }
  if arg then
    table.insert(argv, vim.json.encode(arg))
  end
  local out = vim.fn.system(argv)
  T.eq(0, vim.v.shell_error, 'admin ' .. cmd .. ': ' .. out)
  return vim.json.decode(out)
end

--- The HTTP requests the gateway saw after number `after` (0: all), as
--- {n, method, path, query, prefer, done, status}, whose method is `method` and path starts
--- with `path` (each optional).
function S.requests(after, method, path)
  return vim.tbl_filter(function(r)
    return r.n > (after or 0) and (not method or r.method == method)
      and (not path or r.path:sub(1, #path) == path)
  end, S.admin('requests').requests)
end

--- The number of the last request the gateway saw (for S.requests(after)).
function S.last_request()
  local all = S.admin('requests').requests
  return #all > 0 and all[#all].n or 0
end

--- When a JWT expires (its exp claim, s since the epoch).
function S.token_exp(token)
  local out = vim.fn.system({ 'node', '-e',
    "console.log(JSON.parse(Buffer.from(process.argv[1].split('.')[1], 'base64url')).exp)", token })
  T.eq(0, vim.v.shell_error, 'the exp claim: ' .. out)
  return tonumber(vim.trim(out))
end

--- The session file shelfd wrote (access_token, expires_at, user_id, ...), or nil.
function S.session()
  local path = require('shelf.client').session_path()
  if vim.fn.filereadable(path) == 0 then
    return nil
  end
  return vim.json.decode(table.concat(vim.fn.readfile(path), ''))
end

return S
