-- The end-to-end test harness: loaded by run.sh into a headless Neovim, it
-- defines the global T, runs the test file named by $SHELF_TEST_FILE, prints
-- one line a test and "N passed, N failed", and exits non-zero on failure;
-- with a test skipped (T.skip) and none failed, it exits 77, which ctest
-- shows as Skipped.
-- Tests run in order; they wait for the real shelfd with vim.wait, which
-- keeps processing RPC pushes meanwhile.
T = { tests = {} }

local out = io.stderr
local tmp = vim.env.SHELF_TEST_TMP

--- Register a test.
function T.test(name, fn)
  table.insert(T.tests, { name = name, fn = fn })
end

--- Register a test that cannot run here, and say why.
function T.skip(name, why)
  table.insert(T.tests, { name = name, skip = why })
end

local function fail(msg, level)
  error(msg, (level or 1) + 1)
end

function T.eq(want, got, what)
  if not vim.deep_equal(want, got) then
    fail(string.format('%s: expected %s, got %s', what or 'value', vim.inspect(want),
      vim.inspect(got)), 2)
  end
end

function T.ok(cond, what)
  if not cond then
    fail((what or 'condition') .. ' is false', 2)
  end
  return cond
end

--- An item with its content, as shelfd reads it (a get query, waited
--- for here): the item, or nil and why.
function T.get(kind, id, timeout)
  local err, item = T.await(function(cb)
    require('shelf.client').get_async(kind, id, cb)
  end, 'get ' .. kind .. ' ' .. tostring(id), timeout)
  return item, err
end

--- Wait until cond() is truthy; fails after timeout ms.
function T.wait(cond, what, timeout)
  local ok = vim.wait(timeout or 10000, cond, 10)
  if not ok then
    fail('timed out waiting for ' .. (what or 'a condition'), 2)
  end
end

--- Run fn(cb) and wait for cb; returns what cb got.
function T.await(fn, what, timeout)
  local done, res = false, nil
  fn(function(...)
    res = { ... }
    done = true
  end)
  T.wait(function()
    return done
  end, what or 'a callback', timeout)
  return unpack(res, 1, 2)
end

--- A fresh temp path.
local counter = 0
function T.path(name)
  counter = counter + 1
  return string.format('%s/%d-%s', tmp, counter, name)
end

--- Point the plugin at a new empty database and wait for its first load.
function T.fresh(opts)
  opts = vim.tbl_deep_extend('force', {
    sqlite = { path = T.path('library.db') },
    helper = { log = tmp .. '/shelfd.log' },
  }, opts or {})
  require('shelf').setup(opts)
  T.ready()
  return opts.sqlite.path
end

--- Start the helper if needed and wait until its first load finished.
function T.ready()
  local client = require('shelf.client')
  local _, err = client.start()
  T.ok(not err, 'helper started: ' .. tostring(err))
  T.wait(function()
    return client.status().ready == true
  end, 'the first load', 15000)
end

--- Count `User <pattern>` events from now on.
function T.count_events(pattern)
  local counter_ = { n = 0 }
  vim.api.nvim_create_autocmd('User', {
    pattern = pattern,
    callback = function()
      counter_.n = counter_.n + 1
    end,
  })
  return counter_
end

--- Start a second headless Neovim with the plugin, as another editor would
--- (the same Neovim build as this one). Returns an object with :lua(code, ...) and :stop().
function T.other_nvim(setup_opts)
  local chan = vim.fn.jobstart({ vim.v.progpath, '--embed', '--headless', '-u', 'NONE', '-i', 'NONE', '-n',
    '--cmd', 'set rtp^=' .. vim.env.SHELF_ROOT, '--cmd', 'runtime plugin/shelf.lua' }, { rpc = true })
  T.ok(chan > 0, 'second nvim started')
  local o = { chan = chan }
  function o:lua(code, ...)
    return vim.rpcrequest(self.chan, 'nvim_exec_lua', code, { ... })
  end
  function o:stop()
    pcall(self.lua, self, "require('shelf.client').stop()")
    pcall(vim.fn.jobstop, self.chan)
  end
  o:lua('require("shelf").setup(...)', setup_opts)
  return o
end

-- What the plugin calls that Neovim deprecates: Neovim 0.10+ reports each
-- through vim.deprecate (and lists it in :checkhealth vim.deprecated). A call
-- with the plugin's code on the stack fails the test file.
local deprecated = {}
if vim.deprecate then
  local orig = vim.deprecate
  vim.deprecate = function(name, ...)
    local trace = debug.traceback('', 2)
    if trace:find('/lua/shelf/', 1, true) or trace:find('/plugin/shelf.lua', 1, true) then
      deprecated[name] = trace
    end
    return orig(name, ...)
  end
end

local function log_tail()
  local f = io.open(tmp .. '/shelfd.log', 'r')
  if not f then
    return ''
  end
  local text = f:read('*a')
  f:close()
  local lines = vim.split(text, '\n')
  return table.concat(vim.list_slice(lines, math.max(1, #lines - 30)), '\n')
end

-- The test running now (its name), for the watchdog.
local current = nil

-- A test file that hangs (a prompt waiting for keys no one types, a wait
-- without end) would only be killed by run.sh's timeout, saying nothing.
-- Shortly before that, this says where it is stuck and ends the file: a
-- timer's callback runs inside whatever waits on Neovim's loop, so its
-- traceback shows the waiting test's frames too.
local function arm_watchdog()
  local limit = tonumber(vim.env.SHELF_TEST_LIMIT_S or '')
  if not limit or limit <= 30 then
    return
  end
  local timer = vim.loop.new_timer()
  -- A callback of the loop: only what is safe there (no vim.fn). Exiting
  -- closes shelfd's pipes, and it stops on that.
  timer:start((limit - 20) * 1000, 0, function()
    local mode = vim.api.nvim_get_mode()
    out:write(string.format('FAIL %s: still running %d s after the file began (mode %s%s)\n%s\n',
      current or '(before the tests)', limit - 20, mode.mode, mode.blocking and ', waiting for keys' or '',
      debug.traceback('  where it waits:', 1)))
    out:write(string.format('--- shelfd log (tail) ---\n%s\n%d passed, %d failed\n', log_tail(), T.passed or 0,
      (T.failed or 0) + 1))
    os.exit(1)
  end)
end

local function run()
  arm_watchdog()
  local file = vim.env.SHELF_TEST_FILE
  local ok, err = pcall(dofile, file)
  if not ok then
    out:write('FAIL loading ' .. file .. ': ' .. tostring(err) .. '\n')
    out:write('0 passed, 1 failed\n')
    os.exit(1)
  end
  local passed, failed, skipped = 0, 0, 0
  T.passed, T.failed = 0, 0 -- (for the watchdog)
  for _, t in ipairs(T.tests) do
    local started = vim.loop.hrtime()
    local tok, terr = true, nil
    current = t.name
    if not t.skip then
      tok, terr = xpcall(t.fn, debug.traceback)
    end
    local ms = (vim.loop.hrtime() - started) / 1e6
    if t.skip then
      skipped = skipped + 1
      out:write(string.format('skip %s: %s\n', t.name, t.skip))
    elseif tok then
      passed = passed + 1
      out:write(string.format('ok %s (%.0f ms)\n', t.name, ms))
    else
      failed = failed + 1
      out:write(string.format('FAIL %s\n  %s\n', t.name, tostring(terr):gsub('\n', '\n  ')))
    end
    T.passed, T.failed = passed, failed
  end
  current = '(after the tests: stopping shelfd)'
  -- What the user saw, for the suite-wide secrets check (run.sh keeps it).
  local seen = {}
  for _, cmd in ipairs({ 'messages', 'Shelf status' }) do
    local ok, text = pcall(vim.api.nvim_exec, cmd, true)
    table.insert(seen, ok and text or '')
  end
  pcall(vim.fn.writefile, vim.split(table.concat(seen, '\n'), '\n'), tmp .. '/messages.txt', 'a')
  for name, trace in pairs(deprecated) do
    failed = failed + 1
    out:write(string.format('FAIL the plugin calls %s, which this Neovim deprecates:%s\n', name, trace))
  end
  -- shelfd must shut down cleanly: exit code 0 (sanitizers make leaks fail).
  local client = require('shelf.client')
  if client.running() then
    local code = client._stop_and_wait(10000)
    if code ~= 0 then
      failed = failed + 1
      out:write(string.format('FAIL shelfd exited with code %s at the end\n', tostring(code)))
    end
  end
  -- Every shelfd of the file is gone by now: a sanitizer report from any of
  -- them (a leak at a stop a test asked for too) fails the file, printed whole.
  for _, path in ipairs(vim.fn.glob(tmp .. '/sanitizer.*', false, true)) do
    failed = failed + 1
    local f = io.open(path, 'r')
    out:write(string.format('FAIL a sanitizer report from shelfd (%s):\n%s\n', vim.fn.fnamemodify(path, ':t'),
      f and f:read('*a') or '(unreadable)'))
    if f then
      f:close()
    end
  end
  if failed > 0 then
    out:write('--- shelfd log (tail) ---\n' .. log_tail() .. '\n')
  end
  out:write(string.format('%d passed, %d failed%s\n', passed, failed,
    skipped > 0 and string.format(', %d skipped', skipped) or ''))
  os.exit(failed > 0 and 1 or skipped > 0 and 77 or 0)
end

vim.schedule(run)
