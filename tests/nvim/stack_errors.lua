-- What the server says when it refuses, against the local stack (run by
-- run_stack.sh): a Retry-After given as an HTTP date is honoured like one in
-- seconds, and a permission error (SQLSTATE 42501) says whether the table
-- lacks a GRANT for the signed-in role or a row-level security policy
-- refused the row: the two have different fixes.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/faults_support.lua')

U.start()

--- The error of the failed save of a new prompt titled `title`.
local function failed_save(title)
  local nbuf = U.new_prompt(title, 'x')
  U.write(nbuf)
  local msg
  T.wait(function()
    msg = U.message("'" .. title .. "' failed")
    return msg ~= nil
  end, 'the failure message of "' .. title .. '"', 30000)
  T.eq(true, U.modified(nbuf), 'the buffer stays modified')
  T.eq('0', U.psql("select count(*) from prompts where title = '" .. title .. "'"), 'nothing stored')
  return msg.msg
end

T.test('429 with Retry-After as an HTTP date: the save waits as long as asked', function()
  -- 6 s ahead by this clock; the stack runs on the same machine. Without the
  -- date the first retry would come after about 1 s.
  local at = os.date('!%a, %d %b %Y %H:%M:%S GMT', os.time() + 6)
  U.fault({ count = 1, status = 429, body = { message = 'slow down' }, headers = { ['Retry-After'] = at },
    path = '/rest/v1/prompts', method = 'POST' })
  local nbuf = U.new_prompt('after a dated Retry-After', 'r')
  U.write(nbuf)
  U.wait_error({ 'HTTP 429', 'slow down', 'retrying in ' }, 'a message with the wait')
  local secs = tonumber(require('shelf.client').status().error:match('retrying in (%d+) s'))
  T.ok(secs and secs >= 4 and secs <= 6, 'the wait the server asked for, not the backoff: '
    .. tostring(require('shelf.client').status().error))
  T.wait(function() return not U.modified(nbuf) end, 'the save', 40000)
  T.eq('1', U.psql("select count(*) from prompts where title = 'after a dated Retry-After'"), 'one row')
  U.recovered('429 with a dated Retry-After')
end)

T.test('42501 from a missing GRANT is not called row-level security', function()
  U.psql('revoke insert on prompts from authenticated')
  local ok, all = pcall(failed_save, 'no grant here')
  U.psql('grant insert on prompts to authenticated')
  assert(ok, all)
  T.ok(all:find('no GRANT on the table', 1, true), 'names the missing GRANT:\n' .. all)
  T.ok(all:find('permission denied for table prompts', 1, true), "PostgreSQL's words:\n" .. all)
  T.ok(not all:find('refused by the table', 1, true), 'not called a policy:\n' .. all)
end)

T.test('42501 from a row-level security policy says so', function()
  -- A policy that refuses every new row of this user's.
  U.psql([[create policy shelf_test_refuse on prompts as restrictive for insert
    to authenticated with check (title <> 'refused by policy')]])
  local ok, all = pcall(failed_save, 'refused by policy')
  U.psql('drop policy shelf_test_refuse on prompts')
  assert(ok, all)
  T.ok(all:find("refused by the table's row-level security policy", 1, true), 'names the policy:\n' .. all)
  T.ok(not all:find('no GRANT', 1, true), 'not called a GRANT:\n' .. all)
end)
