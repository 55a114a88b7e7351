-- shelfd against a server that misbehaves on purpose (tests/stack/hostile.mjs):
-- malformed, truncated, huge and wrongly typed answers, another user's rows
-- and realtime events, websocket garbage, a session file others can read,
-- odd values that must not reach a URL, and TLS with a self-signed certificate.
local shelf = require('shelf')
local client = require('shelf.client')
local mirror = require('shelf.mirror')

local root = vim.env.SHELF_ROOT
local tmp = vim.env.SHELF_TEST_TMP
local USER = '11111111-1111-4111-8111-111111111111'
local OTHER = '22222222-2222-4222-8222-222222222222'
local jobs = {}

-- Start a node script that prints "PORT <n>"; returns the port.
local function start_node(args)
  local port, exited
  local err = {}
  local job = vim.fn.jobstart(args, {
    cwd = root .. '/tests/stack',
    on_stdout = function(_, lines)
      for _, l in ipairs(lines) do
        port = port or tonumber(l:match('^PORT (%d+)'))
      end
    end,
    on_stderr = function(_, lines) vim.list_extend(err, lines) end,
    on_exit = function(_, code) exited = code end,
  })
  T.ok(job > 0, 'started ' .. args[2])
  table.insert(jobs, job)
  T.wait(function() return port ~= nil or exited ~= nil end, args[2] .. ' listening', 20000)
  T.ok(port ~= nil, args[2] .. ' exited with ' .. tostring(exited) .. ': ' .. table.concat(err, '\n'))
  return port
end

local port = start_node({ 'node', 'hostile.mjs' })
local base = 'http://127.0.0.1:' .. port

local function ctl(what, body)
  local args = { 'curl', '-sS', '--max-time', '30', base .. '/__hostile/' .. what }
  if body then
    vim.list_extend(args, { '-H', 'content-type: application/json', '-d', vim.json.encode(body) })
  end
  local out = vim.fn.system(args)
  T.eq(0, vim.v.shell_error, 'control ' .. what .. ': ' .. out)
  return vim.json.decode(out)
end

local function setup(url, extra)
  shelf.setup({
    backend = 'supabase',
    supabase = vim.tbl_extend('force', { url = url or base, anon_key = 'hostile-anon-key' }, extra or {}),
    helper = { log = tmp .. '/shelfd.log' },
  })
end

local function ok(fn, what)
  local err, item = T.await(fn, what, 30000)
  T.eq(nil, err, what)
  return item
end

local function uuid(n)
  return string.format('%08x-0000-4000-8000-%012x', n, n)
end

-- Every id in the mirror, of every kind, with the row's user_id from shelfd.
local function mirror_owners()
  local out = {}
  for _, kind in ipairs({ 'block', 'prompt', 'project' }) do
    for row in mirror.rows(kind) do
      local id = mirror.id_at(kind, row)
      local item = T.get(kind, id)
      out[id] = item and item.user_id
    end
  end
  return out
end

local function assert_only_ours()
  for id, owner in pairs(mirror_owners()) do
    T.eq(USER, owner, 'owner of ' .. id .. ' in the mirror')
  end
end

local pid
T.test('sign in to the hostile server; the session file is 0600', function()
  setup()
  T.ready()
  local user = ok(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login')
  T.eq(USER, user.id, 'user id')
  T.eq('rw-------', vim.fn.getfperm(client.session_path()), 'session file mode')
  T.wait(function() return client.status().realtime == 'joined' end, 'realtime joined', 20000)
  pid = client.pid()
end)

local mine
T.test("another user's rows in a list never reach the mirror", function()
  mine = ok(function(cb) shelf.create('prompt', { title = 'mine', content = 'c' }, cb) end, 'create')
  ctl('rows', { table = 'prompts', rows = {
    { id = uuid(1), user_id = OTHER, title = 'theirs', content = 'secret', tags = {} },
    { id = uuid(2), title = 'no owner', content = 'secret', tags = {} },
    { id = uuid(3), user_id = vim.NIL, title = 'null owner', content = 'secret', tags = {} },
  } })
  ctl('rows', { table = 'context_blocks', rows = {
    { id = uuid(4), user_id = OTHER, title = 'their block', content = 'secret', tags = {} },
  } })
  ok(function(cb) shelf.refresh(cb) end, 'refresh')
  T.ok(mirror.item('prompt', mine.id), 'our prompt is there')
  for n = 1, 4 do
    T.eq(nil, mirror.item('prompt', uuid(n)) or mirror.item('block', uuid(n)), 'foreign row ' .. n)
  end
  assert_only_ours()
end)

T.test("another user's realtime events never reach the mirror", function()
  local function event(type, id, owner, title)
    ctl('push', { table = 'prompts', type = type,
      record = { id = id, user_id = owner, title = title, content = 'x', tags = {} } })
  end
  event('INSERT', uuid(10), OTHER, 'pushed theirs')
  event('UPDATE', mine.id, OTHER, 'taken over')
  ctl('push', { table = 'prompts', type = 'INSERT',
    record = { id = uuid(11), title = 'pushed without owner', content = 'x', tags = {} } })
  -- Events are handled in order: once our marker is in, the others were seen.
  event('INSERT', uuid(12), USER, 'marker')
  T.wait(function() return mirror.item('prompt', uuid(12)) ~= nil end, 'the marker event')
  T.eq(nil, mirror.item('prompt', uuid(10)), 'foreign insert')
  T.eq(nil, mirror.item('prompt', uuid(11)), 'ownerless insert')
  T.eq('mine', mirror.item('prompt', mine.id).title, 'our prompt untouched')
  assert_only_ours()
end)

T.test('websocket garbage is skipped; realtime keeps working', function()
  ctl('push', { garbage = true })
  -- A frame over the limit may cost the connection: shelfd reconnects and
  -- rejoins, so the marker is pushed again until it arrives.
  T.wait(function()
    ctl('push', { table = 'prompts', type = 'INSERT',
      record = { id = uuid(13), user_id = USER, title = 'after garbage', content = 'x', tags = {} } })
    return vim.wait(1000, function() return mirror.item('prompt', uuid(13)) ~= nil end, 20)
  end, 'an event after the garbage', 60000)
  T.eq(pid, client.pid(), 'the same shelfd')
end)

-- A broken answer to a list: a clear error, the mirror kept, no crash.
local broken = {
  malformed = 'JSON',
  object = 'not a JSON list',
  html = 'not a JSON list',
  truncated = '',
  huge = "answer was refused: response larger than",
}
for mode, words in pairs(broken) do
  T.test('a ' .. mode .. ' list gives a clear error and keeps the mirror', function()
    local before = mirror.count('prompt')
    ctl('mode', { rest = mode })
    local err = T.await(function(cb) shelf.refresh(cb) end, 'refresh', 60000)
    ctl('mode', { rest = 'ok' })
    T.ok(type(err) == 'string' and #err > 10, 'an error: ' .. tostring(err))
    io.stderr:write('  (' .. mode .. ': ' .. err .. ')\n')
    T.ok(err:find(words, 1, true), 'the error says why: ' .. err)
    T.ok(not err:find('%%s') and not err:find('(null)', 1, true), 'a finished message: ' .. err)
    T.eq(before, mirror.count('prompt'), 'mirror kept')
    T.eq(pid, client.pid(), 'the same shelfd')
    ok(function(cb) shelf.refresh(cb) end, 'refresh after recovery')
  end)
end

T.test('rows of the wrong shape are dropped, the rest is kept', function()
  ctl('rows', { table = 'prompts', rows = {
    { id = 12345, user_id = USER, title = 'number id', content = 'x' },
    { user_id = USER, title = 'no id', content = 'x' },
    { id = uuid(20), user_id = USER, title = 42, content = { 'x' }, tags = 'notalist' },
    { id = uuid(21), user_id = USER, title = 'fine', content = 'x', tags = {} },
  } })
  ok(function(cb) shelf.refresh(cb) end, 'refresh')
  T.ok(mirror.item('prompt', uuid(21)), 'the good row')
  T.eq(nil, mirror.item('prompt', uuid(20)), 'the row with a number title and a table content')
  for _, item in ipairs(mirror.items('prompt')) do
    local id = item.id
    T.eq('string', type(id), 'ids are strings')
    T.eq('string', type(item.title), 'title of ' .. id)
  end
  -- Nothing odd breaks the views that read the mirror.
  shelf.open()
  pcall(vim.cmd, 'tabclose')
  T.eq(pid, client.pid(), 'the same shelfd')
end)

T.test('odd ids never reach a URL; values in URLs are encoded', function()
  for _, id in ipairs({ "x' or 1=1--", '../../auth/v1/user', 'a b&c=d', uuid(30) .. '#' }) do
    local err = T.await(function(cb) shelf.update('prompt', id, { title = 't' }, cb) end, 'update')
    T.ok(err, 'an odd id is refused: ' .. id)
    err = T.await(function(cb) shelf.delete('prompt', id, cb) end, 'delete')
    T.ok(err, 'an odd id is refused for delete: ' .. id)
  end
  ok(function(cb) shelf.update('prompt', mine.id, { title = "it's a \"test\" & more?#" }, cb) end, 'update')
  for _, line in ipairs(ctl('requests')) do
    local target = line:match('^%S+ (.*)$')
    T.ok(not target:find('[%s\'"<>\\^`{|}]'), 'an unencoded character in ' .. line)
    T.ok(not target:find('or 1=1', 1, true) and not target:find('..', 1, true), 'odd value in ' .. line)
    T.ok(not target:find('#', 1, true), 'a raw # in ' .. line)
  end
end)

T.test('a user id from Auth that is not a UUID is refused', function()
  ok(function(cb) shelf.logout(cb) end, 'logout')
  ctl('mode', { auth = 'bad_uid' })
  local err = T.await(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login', 30000)
  ctl('mode', { auth = 'ok' })
  T.ok(err, 'login refused')
  for _, line in ipairs(ctl('requests')) do
    T.ok(not line:find('evil', 1, true), 'the bad id reached a URL: ' .. line)
  end
  ctl('mode', { auth = 'not_json' })
  err = T.await(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login', 30000)
  ctl('mode', { auth = 'ok' })
  T.ok(err and #err > 10, 'a clear error for a non-JSON sign-in answer: ' .. tostring(err))
end)

T.test('a session file others can read is refused with a message', function()
  ok(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login')
  local path = client.session_path()
  T.eq('rw-------', vim.fn.getfperm(path), 'session file mode')
  T.eq(0, client._stop_and_wait(10000), 'shelfd stopped')
  vim.fn.setfperm(path, 'rw-r--r--')
  T.ready()
  local st = client.status()
  T.eq(false, st.signed_in, 'not signed in from a public session file')
  T.ok(type(st.session) == 'string' and st.session:find('readable by others', 1, true),
    'the status says why: ' .. vim.inspect(st.session))
  local err = T.await(function(cb) shelf.create('prompt', { title = 'x' }, cb) end, 'create')
  T.ok(err and err:find('readable by others', 1, true), 'a write says why: ' .. tostring(err))
  T.eq(0, client._stop_and_wait(10000), 'shelfd stopped')
  vim.fn.setfperm(path, 'rw-rw----')
  T.ready()
  T.eq(false, client.status().signed_in, 'a group-readable session file is refused too')
end)

-- TLS: a self-signed certificate made now, a TLS front on the hostile server.
local cert_dir = tmp .. '/tls'
local tls_port
local function make_cert()
  vim.fn.mkdir(cert_dir, 'p')
  local out = vim.fn.system({ 'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
    '-keyout', cert_dir .. '/key.pem', '-out', cert_dir .. '/cert.pem', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1' })
  T.eq(0, vim.v.shell_error, 'openssl: ' .. out)
  tls_port = start_node({ 'node', 'tls-proxy.mjs', cert_dir .. '/cert.pem', cert_dir .. '/key.pem',
    tostring(port) })
end

T.test('TLS: a self-signed certificate fails with a clear message', function()
  make_cert()
  client._stop_and_wait(10000)
  vim.fn.delete(client.session_path())
  setup('https://localhost:' .. tls_port)
  T.ready()
  local err = T.await(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login', 30000)
  T.ok(err and err:lower():find('certificate', 1, true), 'the error names the certificate: ' .. tostring(err))
end)

T.test('TLS: the custom CA makes HTTPS and WSS work', function()
  client._stop_and_wait(10000)
  setup('https://localhost:' .. tls_port, { ca_file = cert_dir .. '/cert.pem' })
  T.ready()
  ok(function(cb) shelf.login('ada@example.com', 'ada-password', cb) end, 'login over https')
  T.wait(function() return client.status().realtime == 'joined' end, 'realtime joined over wss', 30000)
  ctl('push', { table = 'prompts', type = 'INSERT',
    record = { id = uuid(40), user_id = USER, title = 'over wss', content = 'x', tags = {} } })
  T.wait(function() return mirror.item('prompt', uuid(40)) ~= nil end, 'an event over wss')
  local saw_wss = false
  for _, line in ipairs(ctl('requests')) do
    saw_wss = saw_wss or line:find('^WS /realtime/v1/websocket') ~= nil
    T.ok(not line:find('hostile-anon-key', 1, true) or line:find('^WS '), 'the key only in the ws URL')
  end
  T.ok(saw_wss, 'the websocket went through the TLS front')
end)

T.test('TLS: a certificate no longer trusted fails a save at once, saying so, without retries', function()
  -- Signed in over https with the CA above; now shelfd starts without it.
  client._stop_and_wait(10000)
  setup('https://localhost:' .. tls_port)
  T.ok(client.start(), 'started')
  T.wait(function() return client.status().signed_in end, 'the saved session')
  local retried = false
  local au = vim.api.nvim_create_autocmd('User', {
    pattern = 'ShelfStatus',
    callback = function()
      local e = client.status().error or ''
      retried = retried or (e:find('Creating prompt', 1, true) and e:find('retrying', 1, true)) ~= nil
    end,
  })
  local err = T.await(function(cb) shelf.create('prompt', { title = 'over bad tls' }, cb) end, 'create', 30000)
  vim.api.nvim_del_autocmd(au)
  T.ok(err and err:find("Creating prompt 'over bad tls' failed: TLS certificate verification failed for localhost:"
    .. tls_port .. ': certificate verify failed (self-signed certificate)', 1, true)
    and err:find('supabase.ca_file', 1, true), tostring(err))
  T.eq(false, retried, 'the save was not retried as if Supabase were unreachable')
end)

T.test('no option turns TLS verification off', function()
  for _, bad in ipairs({ { verify = false }, { insecure = true }, { ssl_verify = false },
    { tls = { verify = false } }, { ca_file = false } }) do
    T.eq(false, shelf.setup({ backend = 'supabase', supabase = bad }), 'refused: ' .. vim.inspect(bad))
  end
  local text = table.concat(vim.fn.readfile(root .. '/lua/shelf/config.lua'), '\n')
  for _, word in ipairs({ 'insecure', 'no_verify', 'verify', 'skip_tls', 'ssl_verify' }) do
    T.ok(not text:lower():find(word, 1, true), 'config.lua mentions ' .. word)
  end
  -- shelfd itself has no such flag.
  local csrc = vim.fn.system({ 'grep', '-rn', '-e', 'VERIFYPEER, 0', '-e', 'VERIFYHOST, 0',
    '-e', 'SSL_VERIFY_NONE', '-e', 'ALLOW_SELFSIGNED', '-e', 'SKIP_SERVER_CERT', root .. '/csrc' })
  T.eq('', csrc, 'verification switched off in csrc')
end)

T.test('a table name that is not a plain identifier never reaches a URL', function()
  client._stop_and_wait(10000)
  setup(base, { tables = { prompts = 'prompts?select=*&user_id=neq.x' } })
  local chan = client.start()
  T.ok(chan, 'started')
  local why = ''
  T.wait(function()
    why = client.status().error or ''
    return why:find('plain identifier', 1, true) and not client.running()
  end, 'shelfd refusing to start, saying why', 30000)
  io.stderr:write('  (' .. why .. ')\n')
  -- Good settings again before anything restarts it.
  setup(base)
  client.reset()
  T.ok(why:find('plain identifier', 1, true), 'the reason is shown: ' .. why)
  -- shelfd has exited: whatever it sent has been sent. The log shows the
  -- table URLs of earlier tests, so it would show this one.
  local seen = ctl('requests')
  T.ok(#vim.tbl_filter(function(l) return l:find('/rest/v1/prompts', 1, true) ~= nil end, seen) > 0,
    'table URLs in the log: ' .. vim.inspect(seen))
  for _, line in ipairs(seen) do
    T.ok(not line:find('neq.x', 1, true), 'the odd name reached a URL: ' .. line)
  end
end)

T.test('stop the hostile server', function()
  if client.running() then
    client._stop_and_wait(10000)
  end
  for _, job in ipairs(jobs) do
    vim.fn.jobstop(job)
  end
end)
