-- The refresh after a write on the local stack (run by run_stack.sh): with a row in every
-- table, the refresh that follows a save asks each table one request, its two newest stamps
-- with a count, and reads no row again: the one the save changed is kept from the save's
-- answer. While Realtime stays joined after a count, the next refreshes leave it out (a row
-- deleted meanwhile came as its event); once Realtime was cut, or while its subscription is
-- only taken as live (the server said nothing), they count again. A row
-- changed with SQL without a new updated_at, its Realtime event never sent, is not seen by
-- such a refresh; the full comparison when Realtime's subscription comes back finds it.
local shelf = require('shelf')
local mirror = require('shelf.mirror')
local S = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/stackenv_support.lua')
local psql = S.psql

local uid, prompt_id, block_id

--- The requests to the tables after request number `after`.
local function rest_after(after)
  return S.requests(after, nil, '/rest/v1/')
end

--- A read of a table's newest stamps with a count (the store's delta).
local function newest(r)
  return r.method == 'GET' and r.query:find('select=id,updated_at&updated_at=not.is.null', 1, true)
    and r.query:find('&order=updated_at.desc&limit=2', 1, true)
end

--- Wait for the refresh that follows a write made after request `after`: the newest stamps
--- of every table, and every request to the tables answered.
local function wait_refresh(after)
  T.wait(function()
    local rs, probes = rest_after(after), 0
    for _, r in ipairs(rs) do
      if not r.done then
        return false
      end
      probes = probes + (newest(r) and 1 or 0)
    end
    return probes >= 4
  end, 'the refresh after the write: the newest stamps of every table, every request answered', 20000)
  T.wait(function() return not (require('shelf.client').status().loading or {}).refresh end,
    'the refresh ended', 20000)
end

--- Create a prompt through shelfd; returns the requests to the tables that it and the
--- refresh after it made.
local function write_and_refresh(title)
  local before = S.last_request()
  local err = T.await(function(cb) shelf.create('prompt', { title = title, content = 'w' }, cb) end, 'create')
  T.eq(nil, err, 'create')
  wait_refresh(before)
  return rest_after(before)
end

T.test('sign in with a row in every table', function()
  S.sign_in('ada@example.com', 'ada-password')
  uid = psql("select id from auth.users where email = 'ada@example.com'")
  prompt_id = psql(("insert into prompts (user_id, title, content) values ('%s', 'seeded', 'x') returning id")
    :format(uid))
  local block = psql(("insert into context_blocks (user_id, title, content) values ('%s', 'b', 'x') returning id")
    :format(uid))
  block_id = block
  local pf = psql(("insert into prompt_projects (user_id, name) values ('%s', 'pf') returning id"):format(uid))
  local df = psql(("insert into dataset_projects (user_id, name) values ('%s', 'df') returning id"):format(uid))
  T.wait(function()
    return mirror.item('prompt', prompt_id) and mirror.item('block', block) and mirror.item('project', pf)
      and mirror.item('project', df)
  end, 'the four rows, through Realtime', 20000)
  -- A refresh reads each table's newest stamp (comparing every stamp once).
  T.eq(nil, T.await(function(cb) shelf.refresh(cb) end, 'refresh'), 'refresh')
end)

T.test("a write's refresh asks each table once and reads no row again", function()
  local rs = write_and_refresh('written')
  local probes, reads = 0, 0
  for _, r in ipairs(rs) do
    local what = r.method .. ' ' .. r.path .. r.query
    if newest(r) then
      probes = probes + 1
    elseif r.method == 'GET' then
      reads = reads + 1
      T.ok(false, 'no read of a row: the one written is kept from its write: ' .. what)
    else
      T.eq('POST /rest/v1/prompts', r.method .. ' ' .. r.path, 'the write itself (no count apart): ' .. what)
    end
  end
  T.eq(4, probes, 'one request per table')
  T.eq(0, reads, 'no read of a row')
  T.eq(5, #rs, 'five requests, with the write')
  T.ok(mirror.item('prompt', prompt_id), 'nothing lost')
end)

--- How many of the requests are reads of the newest stamps that ask for a count.
local function counted(rs)
  local n = 0
  for _, r in ipairs(rs) do
    if newest(r) and type(r.prefer) == 'string' and r.prefer:find('count=exact', 1, true) then
      n = n + 1
    end
  end
  return n
end

--- The requests after `after` that read a table whole (its first page).
local function whole_reads(after)
  local n = 0
  for _, r in ipairs(rest_after(after)) do
    if r.method == 'GET' and r.done and r.query:match('^%?select=%*&user_id=eq%.[%x%-]+&order=id&limit=%d+$') then
      n = n + 1
    end
  end
  return n
end

T.test('with Realtime joined since the last count, a refresh leaves the count out; a delete by SQL comes as its event', function()
  -- The count is owed once after the join; the refresh of this write pays it if an earlier one did not.
  write_and_refresh('counted once since the join')
  local row = psql(("insert into context_blocks (user_id, title, content) values ('%s', 'doomed', 'x') returning id")
    :format(uid))
  T.wait(function() return mirror.item('block', row) end, 'the new block, through Realtime', 20000)
  psql(("delete from context_blocks where id = '%s'"):format(row))
  T.wait(function() return mirror.item('block', row) == nil end, 'the delete, through Realtime', 20000)
  local rs = write_and_refresh('not counted')
  T.eq(0, counted(rs), 'no table counted again')
  T.eq(5, #rs, 'the write and one read of each table')
  T.eq(nil, mirror.item('block', row), 'the deleted block stays gone')
  T.ok(mirror.item('block', block_id) and mirror.item('prompt', prompt_id), 'nothing else lost')
  -- Realtime cut and back: the refresh its join asks for counts every table again (events
  -- were lost meanwhile); the next write's refresh leaves the counts out once more.
  local before = S.last_request()
  T.eq(1, S.admin('drop-realtime').dropped, 'one websocket dropped')
  T.wait(function() return whole_reads(before) >= 4 end, 'the full comparison after the rejoin', 30000)
  T.wait(function() return not require('shelf.client').status().checking end, 'the comparison done', 20000)
  write_and_refresh('after the rejoin')
  T.eq(4, counted(rest_after(before)), 'each table counted once since the rejoin')
end)

T.test('a change by SQL that keeps updated_at is found by the full comparison after a rejoin', function()
  -- Realtime is cut; it rejoins, but the server holds the subscription back (as Supabase
  -- does for seconds), so changes made meanwhile are never sent. shelfd takes the channel
  -- as live after a while without word and compares everything once.
  S.admin('config', { rt_subscribe_delay_ms = 600000 })
  local before = S.last_request()
  T.eq(1, S.admin('drop-realtime').dropped, 'one websocket dropped')
  T.wait(function() return whole_reads(before) >= 4 end, 'the full comparison after the rejoin', 30000)
  T.wait(function() return S.admin('status').realtime.pending_subscriptions == 1 end,
    'the subscription still held back', 10000)
  psql(("update prompts set title = 'renamed by SQL' where id = '%s'"):format(prompt_id))
  -- A refresh that asks only what changed since the newest stamp cannot see it. It counts
  -- every table: the server has not said that its changes flow.
  local rs = write_and_refresh('written while no change is sent')
  T.eq('seeded', mirror.item('prompt', prompt_id).title, 'not seen by the incremental refresh')
  T.eq(4, counted(rs), 'every table counted while the subscription is held back')
  -- The subscription comes: events may have been lost, so everything is compared again.
  before = S.last_request()
  S.admin('release-subscriptions')
  T.wait(function() return mirror.item('prompt', prompt_id).title == 'renamed by SQL' end,
    'the change, through the full comparison once the subscription came', 30000)
  T.eq(4, whole_reads(before), 'every table read whole')
  S.admin('config', { rt_subscribe_delay_ms = 0 })
end)
