-- The public API end to end, with the real shelfd on a SQLite file.
local shelf = require('shelf')

local function create(kind, fields)
  local err, item = T.await(function(cb)
    shelf.create(kind, fields, cb)
  end, 'create ' .. kind)
  T.eq(nil, err, 'create error')
  return item
end

-- The messages fn() gives through vim.notify, and what it returns.
local function notes(fn)
  local msgs = {}
  local orig = vim.notify
  vim.notify = function(m)
    table.insert(msgs, m)
  end
  local ok, res = pcall(fn)
  vim.notify = orig
  assert(ok, res)
  return msgs, res
end

T.test('setup rejects bad options and names the key', function()
  local msgs, ok = notes(function()
    return shelf.setup({ backend = 'mongo', tab = { width = 'wide' }, bogus = 1 })
  end)
  T.eq(false, ok, 'setup result')
  local m = msgs[1] or ''
  T.ok(m:find("option 'backend' must be one of sqlite, supabase", 1, true), 'backend named: ' .. m)
  T.ok(m:find("option 'tab.width' must be number", 1, true), 'tab.width named: ' .. m)
  T.ok(m:find("unknown option 'bogus'", 1, true), 'bogus named: ' .. m)
end)

T.test('setup rejects numbers out of range, and says a picker may be a name', function()
  local bad, picker, fine
  local msgs = notes(function()
    bad = shelf.setup({ tab = { width = -5, fold_above = 1.5 }, helper = { max_restarts = -1 },
      supabase = { timeouts = { request = 0, heartbeat = 4000000 } } })
    picker = shelf.setup({ picker = 42 })
    fine = shelf.setup({ tab = { width = 30, fold_above = 0 }, supabase = { timeouts = { request = 3600000 } } })
  end)
  T.eq(false, bad, 'numbers out of range refused')
  local m = msgs[1] or ''
  for _, want in ipairs({ "option 'tab.width' must be a whole number of at least 1, not -5",
    "option 'tab.fold_above' must be a whole number of at least 0, not 1.5",
    "option 'helper.max_restarts' must be a whole number of at least 0, not -1",
    "option 'supabase.timeouts.request' must be a whole number from 1 to 3600000, not 0",
    "option 'supabase.timeouts.heartbeat' must be a whole number from 1 to 3600000, not 4000000" }) do
    T.ok(m:find(want, 1, true), 'said: ' .. want .. ' in ' .. m)
  end
  T.eq(false, picker, 'a number for the picker refused')
  T.ok((msgs[2] or ''):find("option 'picker' must be table or string, not number", 1, true), msgs[2])
  T.eq(true, fine, 'numbers in range taken: ' .. tostring(msgs[3]))
  T.eq(30, require('shelf.config').get().tab.width, 'and in force')
  shelf.setup({})
end)

T.test('the helper starts on first use and loads an empty library', function()
  T.eq(false, require('shelf.client').running(), 'running before first use')
  T.fresh()
  local st = shelf.status()
  T.eq('sqlite', st.backend, 'backend')
  T.eq(true, st.ready, 'ready')
  T.eq({ block = 0, prompt = 0, project = 0, temporary = 0 }, st.counts, 'counts')
  -- shelfd yields a shared core to Neovim: its nice value (field 19 of
  -- /proc/PID/stat, after the name in parentheses) is above Neovim's.
  local function nice(pid)
    local f = assert(io.open('/proc/' .. pid .. '/stat'))
    local stat = f:read('*a')
    f:close()
    return tonumber(vim.split(vim.trim(stat:match('%) (.*)$')), ' ')[17])
  end
  T.ok(nice(require('shelf.client').pid()) > nice(vim.fn.getpid()), 'shelfd runs below the editor\'s priority')
end)

T.test('prompts: create, get, update, delete, with ShelfChanged', function()
  T.fresh()
  local changed = T.count_events('ShelfChanged')
  local item = create('prompt', { title = 'Greet', content = 'Hello {{name}}', tags = { 'a', 'b' },
    description = 'says hi', folder = 'misc' })
  T.eq('prompt', item.kind, 'kind')
  T.eq('Greet', item.title, 'title')
  T.ok(item.id:match('^%x+%-%x+%-4%x+%-%x+%-%x+$'), 'a v4 uuid: ' .. item.id)
  T.wait(function() return changed.n > 0 end, 'ShelfChanged')
  local summary = shelf.items('prompt')[1]
  T.eq('Greet', summary.title, 'mirror title')
  T.eq(nil, summary.content, 'the mirror holds no content')
  T.eq(#'Hello {{name}}', summary.size, 'size')
  T.eq({ 'a', 'b' }, summary.tags, 'tags')
  local full = T.get('prompt', item.id)
  T.eq('Hello {{name}}', full.content, 'content')
  T.eq('misc', full.folder, 'folder')

  local err, updated = T.await(function(cb)
    shelf.update('prompt', item.id, { content = 'Hi {{name}}', description = vim.NIL }, cb)
  end)
  T.eq(nil, err, 'update error')
  T.eq('Hi {{name}}', updated.content, 'updated content')
  T.eq(nil, updated.description, 'description cleared')
  T.eq('Greet', updated.title, 'title kept')
  T.ok(updated.updated_at > item.updated_at, 'updated_at moved on')
  T.eq('Hi {{name}}', T.get('prompt', item.id).content, 'get after update')

  err = T.await(function(cb) shelf.delete('prompt', item.id, cb) end)
  T.eq(nil, err, 'delete error')
  T.eq(0, #shelf.items('prompt'), 'mirror after delete')
  T.eq(nil, T.get('prompt', item.id), 'get after delete')
end)

T.test('queries answer asynchronously; a cancelled one never calls back', function()
  T.fresh()
  local client = require('shelf.client')
  local item = create('block', { title = 'Needle', content = 'hay hay needle hay' })
  local err, full = T.await(function(cb)
    client.get_async('block', item.id, cb)
  end, 'get_async')
  T.eq(nil, err, 'get error')
  T.eq('hay hay needle hay', full.content, 'content')
  local gerr, none = T.await(function(cb)
    client.get_async('block', '00000000-0000-4000-8000-000000000000', cb)
  end, 'get_async of no item')
  T.ok(gerr and gerr:find('there is no context block with id 00000000-', 1, true),
    'missing item named: ' .. tostring(gerr))
  T.eq(nil, none, 'no item')
  local berr = T.await(function(cb)
    client.query('get', { 'fruit', item.id }, cb)
  end, 'get with a bad kind')
  T.ok(berr and berr:find("kind is 'block'", 1, true), 'bad kind explained: ' .. tostring(berr))
  local cancelled = false
  client.cancel(client.search_async('needle', nil, function()
    cancelled = true
  end))
  local serr, hits = T.await(function(cb)
    client.search_async('needle', 'block', cb)
  end, 'search_async')
  T.eq(nil, serr, 'search error')
  T.eq({ { kind = 'block', id = item.id } }, hits, 'hits')
  T.eq(false, cancelled, 'the cancelled search never called back')
end)

T.test('folders nest, hold items, and take them along when deleted', function()
  T.fresh()
  local top = create('project', { type = 'datasets', name = 'Docs' })
  T.eq('datasets', top.type, 'type')
  T.eq('📁', top.icon, 'default icon')
  local sub = create('project', { type = 'datasets', name = 'API', parent_id = top.id })
  local block = create('block', { title = 'Endpoints', content = 'GET /x', project_id = sub.id })
  local pfolder = create('project', { type = 'prompts', name = 'Docs' })
  T.eq('prompts', pfolder.type, 'a prompts folder may share the name')
  T.eq(3, #shelf.items('project'), 'three folders')
  T.eq(sub.id, shelf.items('block')[1].project_id, 'block in sub folder')

  local err = T.await(function(cb)
    shelf.create('project', { type = 'datasets', name = 'Docs' }, cb)
  end)
  T.ok(err and err:find('Docs'), 'duplicate folder refused: ' .. tostring(err))

  err = T.await(function(cb) shelf.delete('project', top.id, cb) end)
  T.eq(nil, err, 'delete folder')
  T.wait(function()
    return #shelf.items('block') == 0 and #shelf.items('project') == 1
  end, 'the cascade to reach the mirror')
  T.eq(nil, T.get('block', block.id), 'the block went with its folder')
  -- One of each is said in the singular.
  create('prompt', { title = 'Alone', content = 'x' })
  T.wait(function() return #shelf.items('prompt') == 1 end, 'the prompt in the mirror')
  local said = table.concat(require('shelf.status').lines(), '\n')
  T.ok(said:find('1 prompt, 0 context blocks (0 temporary), 1 folder', 1, true), ':Shelf status: ' .. said)
end)

T.test('blocks and folders: update and delete, with ShelfStatus while loading', function()
  T.fresh()
  local statuses = T.count_events('ShelfStatus')
  local function busy()
    local l = shelf.status().loading or {}
    return l.refresh == true or (l.actions or 0) > 0
  end
  local loading_seen = false
  local au = vim.api.nvim_create_autocmd('User', {
    pattern = 'ShelfStatus',
    callback = function()
      loading_seen = loading_seen or busy()
    end,
  })
  local folder = create('project', { type = 'datasets', name = 'Notes' })
  local block = create('block', { title = 'Draft', content = 'v1', tags = { 'x' } })
  local err, updated = T.await(function(cb)
    shelf.update('block', block.id, { content = 'v2', project_id = folder.id, tags = {} }, cb)
  end)
  T.eq(nil, err, 'update block')
  T.eq('v2', updated.content, 'block content')
  T.eq(folder.id, shelf.items('block')[1].project_id, 'block moved into the folder in the mirror')
  T.eq({}, shelf.items('block')[1].tags, 'tags cleared')
  local renamed
  err, renamed = T.await(function(cb) shelf.update('project', folder.id, { name = 'Notes 2' }, cb) end)
  T.eq(nil, err, 'rename folder')
  T.eq('Notes 2', renamed.name, 'folder name')
  T.eq('Notes 2', shelf.items('project')[1].name, 'mirror folder name')
  err = T.await(function(cb) shelf.delete('block', block.id, cb) end)
  T.eq(nil, err, 'delete block')
  T.eq(0, #shelf.items('block'), 'no block in the mirror')
  T.eq(1, #shelf.items('project'), 'the folder stays')
  vim.api.nvim_del_autocmd(au)
  T.ok(statuses.n >= 2, 'ShelfStatus fired around the actions: ' .. statuses.n)
  T.ok(loading_seen, 'a ShelfStatus showed something loading')
  T.wait(function() return not busy() end, 'nothing loading at rest')
end)

T.test('temporary blocks stay in the session until saved', function()
  local db = T.fresh()
  local tmp = create('block', { title = 'Scratch', content = 'draft', temporary = true })
  T.eq(true, tmp.temporary, 'temporary flag')
  T.eq(true, shelf.items('block')[1].temporary, 'mirror flag')
  local err = T.await(function(cb) shelf.update('block', tmp.id, { content = 'draft 2' }, cb) end)
  T.eq(nil, err, 'update temporary')
  T.eq('draft 2', T.get('block', tmp.id).content, 'temporary content')
  -- Not in the database file.
  local out = vim.fn.system({ 'sqlite3', db, 'select count(*) from context_blocks' })
  T.eq('0', vim.trim(out), 'rows in the database')
  local saved
  err, saved = T.await(function(cb) shelf.save_temporary(tmp.id, cb) end)
  T.eq(nil, err, 'save temporary')
  T.eq(tmp.id, saved.id, 'same id after saving')
  T.eq(nil, saved.temporary, 'no longer temporary')
  T.eq(nil, shelf.items('block')[1].temporary, 'mirror no longer temporary')
  out = vim.fn.system({ 'sqlite3', db, 'select content from context_blocks' })
  T.eq('draft 2', vim.trim(out), 'saved content in the database')
end)

T.test('bad arguments get clear errors', function()
  T.fresh()
  local ok, e = pcall(shelf.create, 'note', {})
  T.eq(false, ok, 'unknown kind raises')
  T.ok(tostring(e):find("kind must be 'block', 'prompt' or 'project'", 1, true), tostring(e))
  ok, e = pcall(shelf.update, 'prompt', 42, {})
  T.ok(not ok and tostring(e):find('id must be a string', 1, true), tostring(e))
  local err = T.await(function(cb) shelf.create('prompt', { content = 'no title' }, cb) end)
  T.ok(err and err:find("Creating prompt failed: 'title' is required", 1, true), tostring(err))
  err = T.await(function(cb) shelf.create('prompt', { title = 'x', tags = 'nope' }, cb) end)
  T.ok(err and err:find("'tags' must be a list of strings", 1, true), tostring(err))
  err = T.await(function(cb) shelf.create('prompt', { title = 'x', colour = 'red' }, cb) end)
  T.ok(err and err:find('colour', 1, true), 'unknown column named: ' .. tostring(err))
  err = T.await(function(cb) shelf.update('prompt', '00000000-0000-4000-8000-000000000000', { title = 'y' }, cb) end)
  T.ok(err and err:find('no prompt with id', 1, true), tostring(err))
  err = T.await(function(cb) shelf.create('project', { name = 'typeless' }, cb) end)
  T.ok(err and err:find("'type'", 1, true), tostring(err))
  -- The helper is still fine after all that.
  T.eq(true, require('shelf.client').running(), 'still running')
  T.ok(create('prompt', { title = 'still works' }).id, 'create after errors')
end)

T.test('odd text round-trips exactly', function()
  T.fresh()
  local title = [[It's "quoted"; DROP TABLE prompts; -- ✨ émoji]]
  local content = 'line 1\nline 2\ttab\n' .. string.rep('x', 300000) .. '\n🙂'
  local item = create('prompt', { title = title, content = content, tags = { "it's", 'naïve' } })
  local full = T.get('prompt', item.id)
  T.eq(title, full.title, 'title')
  T.eq(content, full.content, 'content')
  T.eq({ "it's", 'naïve' }, full.tags, 'tags')
end)

T.test('refresh and statusline', function()
  T.fresh()
  local err = T.await(function(cb) shelf.refresh(cb) end, 'refresh')
  T.eq(nil, err, 'refresh error')
  T.eq('', shelf.statusline(), 'idle statusline')
  local lines = require('shelf.status').lines()
  local text = table.concat(lines, '\n')
  T.ok(text:find('backend%s+sqlite'), text)
  T.ok(text:find('library.db', 1, true), 'database path shown: ' .. text)
  T.ok(text:find('error%s+none'), text)
  -- :Shelf refresh says how it ended.
  local said
  local orig = vim.notify
  vim.notify = function(m, level)
    said = { m, level }
  end
  vim.cmd('Shelf refresh')
  T.wait(function() return said ~= nil end, ':Shelf refresh message')
  vim.notify = orig
  T.eq({ 'shelf: refreshed', vim.log.levels.INFO }, said, ':Shelf refresh message')
end)

T.test('a ~ path is under the home folder; a relative one is made absolute', function()
  local config = require('shelf.config')
  T.eq(vim.fn.expand('~') .. '/notes/library.db', config.file_path('~/notes/library.db'), '~ expanded')
  local rel = 'rel-' .. vim.loop.hrtime() .. '/library.db'
  T.fresh({ sqlite = { path = rel } })
  local want = vim.fn.getcwd() .. '/' .. rel
  T.eq(want, config.sqlite_path(), 'absolute path')
  T.eq(1, vim.fn.filereadable(want), 'the database file is where the path says')
  T.ok(table.concat(require('shelf.status').lines(), '\n'):find(want, 1, true), ':Shelf status shows it')
end)

T.test('listeners that ask shelfd something while pushes arrive get every answer', function()
  T.fresh()
  local client = require('shelf.client')
  local pid = client.pid()
  -- Each ShelfChanged asks shelfd (as the tab's filter and edit buffers do)
  -- while the creates' pushes and other queries' answers arrive.
  local asked, answered, failed = 0, 0, {}
  local function ask()
    asked = asked + 1
    client.get_async('prompt', 'no-such-id', function(err)
      answered = answered + 1
      if not (err and err:find('no prompt with id no-such-id', 1, true)) then
        table.insert(failed, 'get: ' .. tostring(err))
      end
    end)
  end
  local id = vim.api.nvim_create_autocmd('User', { pattern = 'ShelfChanged', callback = ask })
  local done = 0
  for i = 1, 40 do
    shelf.create('prompt', { title = 'P' .. i, content = 'c' }, function(err)
      T.eq(nil, err, 'create error')
      done = done + 1
    end)
    for _ = 1, 5 do
      ask()
    end
  end
  T.wait(function() return done == 40 end, 'the creates')
  vim.api.nvim_del_autocmd(id)
  T.wait(function() return answered == asked end, 'every get answered')
  T.eq({}, failed, 'no query failed')
  T.ok(asked >= 240, 'the listener ran: ' .. asked)
  T.eq(pid, client.pid(), 'the same shelfd (the channel was not dropped)')
  T.eq(40, #shelf.items('prompt'), 'every prompt in the mirror')
end)
