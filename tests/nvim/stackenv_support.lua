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

--- The session file shelfd wrote (access_token, expires_at, user_id, ...), or nil.
function S.session()
  local path = require('shelf.client').session_path()
  if vim.fn.filereadable(path) == 0 then
    return nil
  end
  return vim.json.decode(table.concat(vim.fn.readfile(path), ''))
end

return S
