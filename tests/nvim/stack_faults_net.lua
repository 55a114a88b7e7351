-- Faults against the local Supabase stack (run by run_stack.sh), part two:
-- the Realtime websocket cut without a close frame or black-holed, heartbeat
-- replies stopped, PostgreSQL restarted, the server refusing connections
-- when shelfd starts, and a host that does not resolve. Same checks after
-- each as stack_faults.lua (see faults_support.lua).
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/faults_support.lua')
local client = require('shelf.client')
local mirror = require('shelf.mirror')

U.start()

T.test('websocket cut without a close frame: reconnects, rejoins, reloads', function()
  U.wait_joined()
  local out = U.admin('drop-realtime')
  T.ok(out:find('"dropped":1', 1, true), 'one websocket dropped: ' .. out)
  local id = U.sql_insert('added right after the cut')
  T.wait(function() return mirror.item('prompt', id) ~= nil end, 'the row, after the rejoin', 30000)
  U.recovered('websocket cut (no close frame)')
end)

T.test('websocket black-holed (TCP open, silent): the heartbeat notices, then it rejoins', function()
  U.wait_joined()
  local out = U.admin('silence-realtime')
  T.ok(out:find('"silenced":1', 1, true), 'one websocket silenced: ' .. out)
  local id = U.sql_insert('added while the socket was silent')
  T.wait(function()
    local m = client.status().realtime_message
    return m and m:find('heartbeat', 1, true)
  end, 'a message about the missing heartbeat reply', 30000)
  T.wait(function() return mirror.item('prompt', id) ~= nil end, 'the row, after the rejoin', 30000)
  U.recovered('websocket black-holed')
end)

T.test('heartbeat replies stopped: reconnects until they come back', function()
  U.wait_joined()
  U.admin('config', { rt_heartbeats = 0 })
  T.wait(function()
    local st = client.status()
    return st.realtime ~= 'joined' and st.realtime_message and st.realtime_message:find('heartbeat', 1, true)
  end, 'the lost connection reported', 30000)
  local id = U.sql_insert('added while heartbeats went unanswered')
  U.admin('config', { rt_heartbeats = 1 })
  T.wait(function() return mirror.item('prompt', id) ~= nil end, 'the row', 30000)
  U.recovered('heartbeat replies stopped')
end)

T.test('PostgreSQL restarted: a save during the restart lands once; events flow again', function()
  U.wait_joined()
  local since = U.last_request()
  U.pg_stop()
  local nbuf = U.new_prompt('saved while postgres restarted', 'pg')
  local statuses_before = #U.statuses
  U.write(nbuf)
  -- PostgreSQL comes back once the save has met it down: refused by the
  -- REST API, or failed before it was sent because the short-lived token
  -- (8 s here) was due and Auth could not refresh it without PostgreSQL.
  T.wait(function()
    local r = U.requests(since, 'POST', '/rest/v1/prompts')
    if #r >= 1 and r[1].done and r[1].status ~= 201 then
      return true
    end
    for i = statuses_before + 1, #U.statuses do
      if (U.statuses[i].error or ''):find("'saved while postgres restarted' failed", 1, true) then
        return true
      end
    end
  end, 'the save refused while PostgreSQL is down', 30000)
  U.pg_start()
  T.wait(function() return not U.modified(nbuf) end, 'the save', 60000)
  U.wait_jobs()
  T.eq('1', U.psql("select count(*) from prompts where title = 'saved while postgres restarted'"), 'one row')
  -- Realtime events (not a reload) bring a row added after the restart.
  local id = U.sql_insert('added after the postgres restart')
  T.wait(function() return mirror.item('prompt', id) ~= nil end, 'an event after the restart', 30000)
  U.recovered('postgres restarted')
end)

T.test('connection refused when shelfd starts: it says so, retries, and loads once the server is up', function()
  U.gateway_kill()
  local err = client._stop_and_wait(10000)
  T.eq(0, err, 'shelfd stopped cleanly')
  client.start()
  U.wait_error({ 'connection refused', 'retrying' }, 'a message saying the server refuses')
  local nbuf = U.new_prompt('saved before the server came up', 'cr')
  U.write(nbuf)
  local id = U.sql_insert('added before the server came up')
  U.gateway_start_after(1)
  T.wait(function() return not U.modified(nbuf) end, 'the save', 40000)
  T.wait(function() return mirror.item('prompt', id) ~= nil end, 'the first load', 40000)
  T.eq('1', U.psql("select count(*) from prompts where title = 'saved before the server came up'"), 'one row')
  U.recovered('connection refused at start')
end)

T.test('a host that does not resolve: a clear message, the save keeps its text, no crash', function()
  local session = client.session_path()
  local saved = vim.fn.readfile(session)
  local s = vim.json.decode(table.concat(saved, '\n'))
  local port = U.env.SHELF_SUPABASE_URL:match(':(%d+)$')
  local bad = 'http://shelf-faults.invalid:' .. port
  s.url = bad
  U.injected()
  vim.fn.writefile({ vim.json.encode(s) }, session)
  -- setup() with another URL restarts shelfd by itself.
  U.setup({ supabase = { url = bad } })
  T.eq(false, client.running(), 'shelfd stopped by setup()')
  client.start()
  U.wait_error({ 'resolve', 'retrying' }, 'a message naming the name lookup')
  T.eq(true, client.running(), 'shelfd running')
  local nbuf = U.new_prompt('typed while the host was unknown', 'dns')
  U.write(nbuf)
  T.wait(function() return U.message('stays modified') ~= nil end, 'the save given up', 60000)
  T.eq(true, U.modified(nbuf), 'still modified')
  T.eq('title: typed while the host was unknown', U.line(nbuf, 2), 'text kept')
  -- Back to the right URL: the same buffer saves.
  vim.fn.writefile(saved, session)
  U.setup()
  T.ready()
  U.wait_joined()
  U.write(nbuf)
  T.wait(function() return not U.modified(nbuf) end, 'the save at the right URL', 30000)
  T.eq('1', U.psql("select count(*) from prompts where title = 'typed while the host was unknown'"), 'one row')
  U.recovered('unresolvable host')
end)

T.test('no duplicates anywhere, mirror equal to the database', function()
  T.eq('', U.psql([[select coalesce(string_agg(title, ','), '') from (select title from prompts
    group by title, user_id having count(*) > 1) d]]), 'duplicate prompt titles')
  U.mirror_equals_db('the end')
  U.report()
end)
