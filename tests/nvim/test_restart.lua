-- shelfd dies: the plugin says so, starts it again, and the mirror returns.
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')

T.test('a killed shelfd is restarted and the mirror comes back', function()
  local db = T.fresh({ helper = { max_restarts = 2 } })
  local function create(title, content)
    local err, item = T.await(function(cb)
      shelf.create('prompt', { title = title, content = content }, cb)
    end)
    T.eq(nil, err, 'create ' .. title)
    return item
  end
  local item = create('survivor', 'still here')
  local doomed = create('doomed', 'x')
  local temps = {}
  for _, title in ipairs({ 'Scratch B', 'Scratch A' }) do
    local terr, t = T.await(function(cb)
      shelf.create('block', { title = title, content = 'only in memory: ' .. title, temporary = true,
        tags = { 'kept' } }, cb)
    end)
    T.eq(nil, terr, 'create a temporary block')
    temps[title] = t
  end
  -- Changed after it was made: the last confirmed content is what comes back.
  T.eq(nil, (T.await(function(cb)
    shelf.update('block', temps['Scratch A'].id, { content = 'edited in memory' }, cb)
  end)), 'update a temporary block')
  local msgs = {}
  local orig = vim.notify
  vim.notify = function(m) table.insert(msgs, m) end
  local pid = client.pid()
  T.ok(pid, 'pid')
  -- Stopped, shelfd sees nothing of these writes: only the new one's first
  -- load can bring them to the mirror (the old mirror still holds 'doomed').
  vim.loop.kill(pid, 19)
  local out = vim.fn.system({ 'sqlite3', db, "DELETE FROM prompts WHERE title = 'doomed';"
    .. "INSERT INTO prompts (id, title, content, tags, created_at, updated_at) VALUES "
    .. "('0d0d0d0d-0000-4000-8000-000000000001', 'written while down', '', '[]', 'a', 'a');" })
  T.eq(0, vim.v.shell_error, 'sqlite3: ' .. out)
  T.eq('doomed', mirror.item('prompt', doomed.id).title, 'the old mirror before the restart')
  vim.loop.kill(pid, 9)
  T.wait(function()
    return client.pid() and client.pid() ~= pid and client.status().ready
  end, 'a new shelfd', 15000)
  T.wait(function() return #msgs >= 1 end, 'the messages')
  vim.notify = orig
  T.ok(msgs[1] and msgs[1]:find('stopped unexpectedly', 1, true) and msgs[1]:find('restarting', 1, true),
    'a message: ' .. vim.inspect(msgs))
  T.eq(0, #vim.tbl_filter(function(m) return m:find('temporary block', 1, true) end, msgs),
    'no temporary block lost: ' .. vim.inspect(msgs))
  -- The temporary blocks came back from Neovim's copy: same ids, content,
  -- tags and times, still temporary, and in the new shelfd's memory.
  for title, t in pairs(temps) do
    local got = T.get('block', t.id)
    T.ok(got, title .. ' is back')
    T.eq(true, got.temporary, title .. ' still temporary')
    T.eq(title == 'Scratch A' and 'edited in memory' or 'only in memory: ' .. title, got.content, title .. ' content')
    T.eq({ 'kept' }, got.tags, title .. ' tags')
    T.eq(t.created_at, got.created_at, title .. ' created_at')
    T.eq(true, mirror.item('block', t.id).temporary, title .. ' in the mirror')
  end
  local text = vim.api.nvim_exec('Shelf status', true)
  T.ok(text:find('restarted after crashing once (last: killed by signal 9)', 1, true), text)
  T.eq('survivor', mirror.item('prompt', item.id).title, 'mirror after restart')
  T.eq('still here', T.get('prompt', item.id).content, 'content after restart')
  T.eq(nil, mirror.item('prompt', doomed.id), 'a row deleted while it was down is gone')
  T.eq('written while down', (mirror.item('prompt', '0d0d0d0d-0000-4000-8000-000000000001') or {}).title,
    'a row written while it was down is there')
end)

T.test(':Shelf restart keeps temporary blocks; deleted or saved ones do not come back as temporary', function()
  T.fresh()
  local function temp(title)
    local err, t = T.await(function(cb)
      shelf.create('block', { title = title, content = title .. ' text', temporary = true }, cb)
    end)
    T.eq(nil, err, 'create ' .. title)
    return t
  end
  local kept, gone, saved = temp('kept'), temp('gone'), temp('saved')
  T.eq(nil, (T.await(function(cb) shelf.delete('block', gone.id, cb) end)), 'delete')
  T.eq(nil, (T.await(function(cb) shelf.save_temporary(saved.id, cb) end)), 'save')
  T.eq(nil, mirror.temps[gone.id], 'a deleted one is not kept')
  T.eq(nil, mirror.temps[saved.id], 'a saved one is not kept')
  local pid = client.pid()
  vim.cmd('Shelf restart')
  T.wait(function()
    return client.pid() ~= pid and client.status().ready and T.get('block', kept.id) ~= nil
  end, 'the new shelfd with the kept block', 15000)
  T.eq('kept text', T.get('block', kept.id).content, 'content')
  T.eq(nil, T.get('block', gone.id), 'the deleted one stays deleted')
  T.eq(nil, T.get('block', saved.id).temporary, 'the saved one is a real block')
  -- And a second restart: still there.
  pid = client.pid()
  vim.cmd('Shelf restart')
  T.wait(function()
    return client.pid() ~= pid and client.status().ready and T.get('block', kept.id) ~= nil
  end, 'the second restart', 15000)
  T.eq(true, mirror.item('block', kept.id).temporary, 'still temporary')
end)

T.test('another library in setup() drops the temporary blocks and says so; edit buffers are not told "deleted"',
  function()
  local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
  local old = T.fresh()
  local err, t = T.await(function(cb)
    shelf.create('block', { title = 'Left behind', content = 'x', temporary = true }, cb)
  end)
  T.eq(nil, err, 'create')
  local _, real = T.await(function(cb) shelf.create('block', { title = 'Stays there', content = 'y' }, cb) end)
  require('shelf.edit').open('block', real.id)
  U.loaded()
  local buf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(buf, -1, -1, false, { 'unsaved' })
  local msgs = {}
  local orig = vim.notify
  vim.notify = function(m) table.insert(msgs, m) end
  local new = T.fresh()
  T.wait(function() return #msgs >= 3 end, 'the messages')
  vim.notify = orig
  local said = table.concat(msgs, '\n')
  T.ok(said:find(string.format('setup() opens another library: sqlite %s (was sqlite %s)', new, old), 1, true), said)
  T.ok(said:find("another library opened: 1 temporary block was dropped (they belong to the library they were made "
    .. "beside): 'Left behind'", 1, true), said)
  T.ok(said:find("'Stays there' is not in the library now open; this buffer keeps the text", 1, true), said)
  T.ok(not said:find('elsewhere', 1, true) and not said:find('shelfd restarted', 1, true), said)
  T.eq('unsaved', vim.api.nvim_buf_get_lines(buf, -2, -1, false)[1], 'the text kept')
  T.eq(nil, mirror.item('block', t.id), 'not in the new library')
  T.eq(nil, mirror.temps[t.id], 'not kept')
  vim.api.nvim_buf_delete(buf, { force = true })
end)

T.test('SIGTERM: shelfd shuts down cleanly (exit code 0) and is started again', function()
  T.fresh({ helper = { max_restarts = 2 } })
  local msgs = {}
  local orig = vim.notify
  vim.notify = function(m) table.insert(msgs, m) end
  local pid = client.pid()
  vim.loop.kill(pid, 15)
  T.wait(function()
    return client.pid() and client.pid() ~= pid and client.status().ready
  end, 'a new shelfd', 15000)
  vim.notify = orig
  -- Under the sanitizers a leak, and in any build a handle left open, makes
  -- the exit code non-zero.
  T.ok(msgs[1] and msgs[1]:find('(exit code 0)', 1, true), 'a clean exit: ' .. vim.inspect(msgs))
end)

T.test('a shelfd that keeps crashing is given up on, with a message', function()
  T.fresh({ helper = { max_restarts = 1 } })
  local msgs = {}
  local orig = vim.notify
  vim.notify = function(m) table.insert(msgs, m) end
  -- The first crash is restarted: the second kill goes to the new shelfd.
  local pid = client.pid()
  T.ok(pid, 'running')
  vim.loop.kill(pid, 9)
  T.wait(function()
    return client.pid() and client.pid() ~= pid
  end, 'the restart after the first crash', 15000)
  vim.loop.kill(client.pid(), 9)
  T.wait(function()
    return #vim.tbl_filter(function(m) return m:find('not restarting', 1, true) end, msgs) > 0
  end, 'the give-up message')
  vim.notify = orig
  T.eq(false, client.running(), 'not running')
  T.ok(client.status().error:find('crashed 2 times', 1, true), client.status().error)
  -- :Shelf status says it crashed, how often, and how to start it again.
  local text = vim.api.nvim_exec('Shelf status', true)
  T.ok(text:find('helper     STOPPED: crashed twice in a minute (twice in all; last: killed by signal 9)', 1, true)
    and text:find(':Shelf restart starts it again', 1, true), text)
  T.ok(not text:find("not started yet", 1, true), text)
  -- An action now fails at once with the reason instead of hanging.
  local err = T.await(function(cb) shelf.create('prompt', { title = 'x' }, cb) end)
  T.ok(err, 'an error')
  -- :Shelf restart brings it back.
  vim.cmd('Shelf restart')
  T.ready()
  T.ok(vim.api.nvim_exec('Shelf status', true):find('helper     running: ', 1, true), 'running again')
end)

-- Counts client.start() calls from now on (a restart after a crash is one).
local function count_starts()
  local counter = { n = 0 }
  local start = client.start
  client.start = function(...)
    counter.n = counter.n + 1
    return start(...)
  end
  function counter.stop()
    client.start = start
  end
  return counter
end

-- Returns once a callback scheduled now has run: whatever the exit handler
-- scheduled before it (a restart) has run too.
local function after_a_turn()
  local turned = false
  vim.schedule(function() turned = true end)
  T.wait(function() return turned end, 'a turn of the loop')
end

T.test('a library that cannot be opened is said once, not restarted', function()
  -- The database path is a folder: shelfd exits with 3 at start.
  local folder = T.path('a-folder')
  vim.fn.mkdir(folder, 'p')
  local msgs = {}
  local orig = vim.notify
  vim.notify = function(m) table.insert(msgs, m) end
  local starts = count_starts()
  -- The watch sees a restart: after a crash, by the time a callback
  -- scheduled once the message is out has run, shelfd was started again.
  T.fresh({ helper = { max_restarts = 3 } })
  local pid = client.pid()
  starts.n = 0
  vim.loop.kill(pid, 9)
  T.wait(function()
    return #vim.tbl_filter(function(m) return m:find('restarting', 1, true) end, msgs) > 0
  end, 'the crash message')
  after_a_turn()
  T.eq(1, starts.n, 'the restart seen by the watch')
  T.ready()
  msgs = {}
  require('shelf').setup({
    sqlite = { path = folder },
    helper = { log = vim.env.SHELF_TEST_TMP .. '/shelfd.log', max_restarts = 3 },
  })
  client.start()
  starts.n = 0
  T.wait(function()
    return #vim.tbl_filter(function(m) return m:find('could not start', 1, true) end, msgs) > 0
  end, 'the start-up message')
  after_a_turn()
  vim.notify = orig
  starts.stop()
  T.eq(0, starts.n, 'no start after the message')
  T.eq(0, #vim.tbl_filter(function(m) return m:find('restarting', 1, true) end, msgs),
    'no restart: ' .. vim.inspect(msgs))
  T.eq(false, client.running(), 'not running')
  T.ok(client.status().error:find('could not start', 1, true), client.status().error)
  local text = vim.api.nvim_exec('Shelf status', true)
  T.ok(text:find('helper     STOPPED: could not start (exit code 3', 1, true)
    and text:find('Fix the set-up, then :Shelf restart', 1, true), text)
  local err = T.await(function(cb) shelf.create('prompt', { title = 'x' }, cb) end)
  T.ok(err, 'an action fails at once')
end)

T.test('a database folder that cannot be created is said, not thrown', function()
  local blocker = T.path('not-a-folder')
  vim.fn.writefile({ 'x' }, blocker)
  require('shelf').setup({
    sqlite = { path = blocker .. '/library.db' },
    helper = { log = vim.env.SHELF_TEST_TMP .. '/shelfd.log' },
  })
  local chan, err = client.start()
  T.eq(nil, chan, 'no channel')
  T.ok(err and err:find('cannot create the folder for the library (sqlite.path)', 1, true)
    and err:find(blocker, 1, true), tostring(err))
  local aerr = T.await(function(cb) shelf.create('prompt', { title = 'x' }, cb) end)
  T.ok(aerr and aerr:find('cannot create the folder', 1, true), tostring(aerr))
end)
