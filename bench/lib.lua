-- bench/lib.lua: what the local benchmark programs share: a seeded library
-- generator, clocks, waiting, percentiles and the one-JSON-object-a-line
-- result format ($SHELF_BENCH_OUT). Load with dofile(root .. '/bench/lib.lua').
-- Benchmarks print figures; nothing here asserts a timing.
local L = {}

L.root = vim.env.SHELF_ROOT or vim.fn.getcwd()
L.quick = (vim.env.QUICK or '') ~= '' and vim.env.QUICK ~= '0'
L.out_path = vim.env.SHELF_BENCH_OUT
local log = io.stderr

function L.say(fmt, ...)
  log:write(string.format(fmt, ...) .. '\n')
  log:flush()
end

--- The loop-stall measure (bench/stall.lua, loaded by the runner before the
--- plugin), or one that does nothing when the program runs without it.
local noop = function() end
L.stall = _G.shelf_bench_stall or { phase = noop, pause = noop, resume = noop, mark = noop,
  summary = function() return nil end }

--- Run f() as the bench's own synchronous work: not counted as a stall.
function L.unmeasured(f, ...)
  L.stall.pause()
  local r = { f(...) }
  L.stall.resume()
  return (table.unpack or unpack)(r)
end

--- Monotonic milliseconds.
function L.now()
  return vim.loop.hrtime() / 1e6
end

--- Wall-clock milliseconds (the same clock in every process on the machine).
function L.wall()
  local s, us = vim.loop.gettimeofday()
  return s * 1000 + us / 1000
end

function L.fail(msg)
  L.say('bench: %s', msg)
  os.exit(1)
end

--- True when shelfd is at rest: no refresh and no action under way.
function L.at_rest()
  local l = require('shelf.client').status().loading
  return l == nil or l == vim.NIL or (type(l) == 'table' and not l.refresh and (l.actions or 0) == 0)
end

--- Wait for cond() (processing events meanwhile); exit on timeout.
function L.wait(cond, what, ms)
  if not vim.wait(ms or 120000, cond, 1) then
    L.fail('timed out waiting for ' .. (what or 'a condition'))
  end
end

--- Sorted copy and nearest-rank percentile.
function L.stats(xs)
  local s = {}
  for i, x in ipairs(xs) do
    s[i] = x
  end
  table.sort(s)
  local function p(q)
    if #s == 0 then
      return nil
    end
    return s[math.max(1, math.ceil(#s * q))]
  end
  local function r(x)
    return x and math.floor(x * 1000 + 0.5) / 1000
  end
  return { n = #s, p50 = r(p(0.5)), p95 = r(p(0.95)), p99 = r(p(0.99)) }
end

--- Neovim's CPU time so far, ms (all its threads).
function L.cpu()
  local u = (vim.uv or vim.loop).getrusage()
  return (u.utime.sec + u.stime.sec) * 1000 + (u.utime.usec + u.stime.usec) / 1000
end

--- A loop-gap tracker: a libuv timer every `period` ms; the largest gap
--- between two of its runs, minus the period, is the longest stall. start()
--- begins (again); stop() returns that stall and the CPU Neovim used during
--- the gap (little CPU: a machine busy with other work, not this Neovim).
function L.gaps(period)
  local timer = (vim.uv or vim.loop).new_timer()
  local gap, gap_cpu, last, last_cpu = 0, 0, 0, 0
  local function note()
    local t, c = L.now(), L.cpu()
    if t - last > gap then
      gap, gap_cpu = t - last, c - last_cpu
    end
    last, last_cpu = t, c
  end
  return {
    start = function()
      last, last_cpu, gap, gap_cpu = L.now(), L.cpu(), 0, 0
      timer:start(period, period, note)
    end,
    stop = function()
      note() -- the time since its last run counts too
      timer:stop()
      return math.max(0, gap - period), gap_cpu
    end,
  }
end

--- L.emit of the row `name` of `group` at library size `size`: samples (a
--- list) and any fields of `extra` (bytes_ours, theirs, ...).
function L.row(group, name, size, unit, samples, extra)
  local rec = { group = group, name = name, size = size, unit = unit, samples = samples }
  for k, v in pairs(extra or {}) do
    rec[k] = v
  end
  L.emit(rec)
end

--- Append one result line. rec: group, name, size, unit, ours = samples
--- (a list, summarised here) or a ready summary table; plus optional
--- bytes_ours. The targets and verdicts live in bench/report.mjs. Each line
--- also records the 1-minute load average when it was written (load).
function L.emit(rec)
  if rec.samples then
    rec.ours = L.stats(rec.samples)
    rec.samples = nil
  end
  rec.load = tonumber((L.read('/proc/loadavg') or ''):match('^(%S+)'))
  -- Which program wrote it (bench/run.sh names it), so the report can find a program's rows.
  rec.program = rec.program or vim.env.BENCH_SCRIPT
  local line = vim.json.encode(rec)
  if L.out_path and L.out_path ~= '' then
    local f = assert(io.open(L.out_path, 'a'))
    f:write(line .. '\n')
    f:close()
  end
  local o = rec.ours
  if o.max then
    L.say('  %-8s %-44s %7s  max %9.3f %s', rec.group, rec.name, tostring(rec.size), o.max, rec.unit)
    return
  end
  L.say('  %-8s %-44s %7s  p50 %9.3f  p95 %9.3f %s', rec.group, rec.name, tostring(rec.size), o.p50 or 0,
    o.p95 or o.p50 or 0, rec.unit)
end

-- ---- a deterministic library ------------------------------------------------------

-- Park-Miller minimal standard generator: exact in doubles, same everywhere.
function L.rng(seed)
  local x = seed % 2147483647
  if x <= 0 then
    x = x + 2147483646
  end
  local r = {}
  function r.next()
    x = (x * 16807) % 2147483647
    return x / 2147483647
  end
  function r.int(a, b)
    return a + math.floor(r.next() * (b - a + 1))
  end
  function r.pick(t)
    return t[r.int(1, #t)]
  end
  return r
end

local words = vim.split([[review refactor explain summarise translate draft test plan design
schema query index cache latency budget release notes changelog incident postmortem onboarding
guide style lint format commit message pull request branch deploy rollback migration backup
restore audit access token session login signup billing invoice customer support ticket triage
bug report feature flag experiment metric dashboard alert runbook oncall handover architecture
decision record api endpoint payload webhook retry timeout queue worker batch stream parser
tokenizer prompt context block folder library snippet template variable placeholder insert
search filter tag archive]], '%s+', { trimempty = true })

local function title(r, i)
  -- 20 to 80 characters of words, unique by the number at the end.
  local want = r.int(20, 80)
  local suffix = ' #' .. i
  local parts = {}
  local len = #suffix
  while true do
    local w = r.pick(words)
    if #parts == 0 then
      w = w:sub(1, 1):upper() .. w:sub(2)
    end
    if len + #w + 1 > want and #parts > 0 then
      break
    end
    table.insert(parts, w)
    len = len + #w + 1
  end
  return table.concat(parts, ' ') .. suffix
end
L.title = title

local function q(s)
  return "'" .. s:gsub("'", "''") .. "'"
end

local function uuid(prefix, i)
  return string.format('%08x-0000-4000-8000-%012x', prefix, i)
end

-- A corpus the contents are cut from: plain prose with line breaks.
local function corpus(r)
  local out, len = {}, 0
  while len < 9000 do
    local line = {}
    for _ = 1, r.int(6, 16) do
      table.insert(line, r.pick(words))
    end
    local s = table.concat(line, ' ') .. '.\n'
    table.insert(out, s)
    len = len + #s
  end
  return table.concat(out)
end

--- Write SQL that fills an empty shelf database (schema made by shelfd)
--- with `n` items across prompts and context blocks, in nested folders, and
--- return the path of the SQL file. Same n, same library.
function L.seed_sql(path, n)
  local r = L.rng(20260101 + n)
  local f = assert(io.open(path, 'w'))
  f:write('PRAGMA journal_mode=WAL;\nBEGIN;\n')
  f:write('CREATE TEMP TABLE bench_corpus(t TEXT);\n')
  f:write('INSERT INTO bench_corpus VALUES(' .. q(corpus(r)) .. ');\n')
  local base = 1767225600 -- 2026-01-01
  local function stamp()
    -- Up to two years back, so ages in the tab vary.
    return os.date('!%Y-%m-%dT%H:%M:%S', base - r.int(0, 2 * 365 * 86400)) .. '.000000+00:00'
  end
  -- Folders: one per 40 items (at least 2 of each type), a third nested
  -- below an earlier one, down to three levels.
  local folders = { prompts = {}, datasets = {} }
  local nf = math.max(4, math.floor(n / 40))
  for i = 1, nf do
    local ftype = i % 2 == 0 and 'prompts' or 'datasets'
    local list = folders[ftype]
    local parent, depth = nil, 1
    if #list > 2 and r.next() < 0.33 then
      local p = r.pick(list)
      if p.depth < 3 then
        parent, depth = p, p.depth + 1
      end
    end
    local id = uuid(ftype == 'prompts' and 0x0f01 or 0x0f02, i)
    table.insert(list, { id = id, depth = depth })
    local tbl = ftype == 'prompts' and 'prompt_projects' or 'dataset_projects'
    local ts = stamp()
    f:write(string.format("INSERT INTO %s(id,name,icon,parent_id,created_at,updated_at) VALUES(%s,%s,'📁',%s,%s,%s);\n",
      tbl, q(id), q(r.pick(words):gsub('^%l', string.upper) .. ' ' .. r.pick(words) .. ' ' .. i),
      parent and q(parent.id) or 'NULL', q(ts), q(ts)))
  end
  local tags = {}
  for i = 1, 30 do
    tags[i] = words[(i * 7) % #words + 1]
  end
  for i = 1, n do
    local prompt = r.next() < 0.5
    local tbl = prompt and 'prompts' or 'context_blocks'
    local list = folders[prompt and 'prompts' or 'datasets']
    local folder = r.next() < 0.9 and r.pick(list).id or nil
    local nt = r.int(0, 3)
    local t, seen = {}, {}
    for _ = 1, nt do
      local tag = r.pick(tags)
      if not seen[tag] then
        seen[tag] = true
        table.insert(t, '"' .. tag .. '"')
      end
    end
    -- Content 200 B to 8 KB, most of it short.
    local len = 200 + math.floor(7800 * r.next() ^ 3)
    local off = r.int(1, 9000 - len)
    local ts = stamp()
    f:write(string.format('INSERT INTO %s(id,project_id,title,content,tags,created_at,updated_at) VALUES('
      .. "%s,%s,%s,substr((SELECT t FROM bench_corpus),%d,%d),'[%s]',%s,%s);\n",
      tbl, q(uuid(prompt and 0x0a01 or 0x0a02, i)), folder and q(folder) or 'NULL', q(title(r, i)), off, len,
      table.concat(t, ','), q(ts), q(ts)))
  end
  -- The seed is not a change anyone has to be told about.
  f:write('DELETE FROM shelf_changes;\nCOMMIT;\n')
  f:close()
  return path
end

--- Files and process ids.
function L.read(path)
  local f = io.open(path, 'r')
  if not f then
    return nil
  end
  local s = f:read('*a')
  f:close()
  return s
end

--- VmRSS of a process in MiB.
function L.rss_mib(pid)
  local s = L.read('/proc/' .. pid .. '/status') or ''
  local kb = s:match('VmRSS:%s*(%d+)')
  return kb and tonumber(kb) / 1024 or nil
end

--- VmHWM (peak resident memory) of a process in MiB.
function L.hwm_mib(pid)
  local s = L.read('/proc/' .. pid .. '/status') or ''
  local kb = s:match('VmHWM:%s*(%d+)')
  return kb and tonumber(kb) / 1024 or nil
end

--- Context switches of all threads of a process (each one a wake-up).
function L.ctx_switches(pid)
  local total = 0
  local tasks = vim.fn.glob('/proc/' .. pid .. '/task/*', false, true)
  for _, t in ipairs(tasks) do
    local s = '\n' .. (L.read(t .. '/status') or '')
    total = total + tonumber(s:match('\nvoluntary_ctxt_switches:%s*(%d+)') or 0)
      + tonumber(s:match('\nnonvoluntary_ctxt_switches:%s*(%d+)') or 0)
  end
  return total, #tasks
end

return L
