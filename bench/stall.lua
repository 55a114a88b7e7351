-- bench/stall.lua: the loop-stall measure of every bench Neovim. A repeating
-- 2 ms libuv timer schedules a callback on Neovim's main loop; the gap between
-- two such callbacks is how long the loop could not serve the user (keys,
-- redraws). The largest gap is the stall. A gap is at most the stall plus the
-- 2 ms period. Loaded with --cmd before the plugin, so it sees the whole
-- program (bench/run.sh, bench/supabase.sh): `lua _G.shelf_bench_stall =
-- dofile('.../bench/stall.lua')`. The first gap counted is the one after the
-- first tick: Neovim's own start-up is not the plugin's.
--
-- The bench's own synchronous work (writing a seed, running a child process
-- with system(), a loop that forces a full render from an emptied buffer) is
-- not the plugin's: programs wrap it in pause()/resume(), and call mark() just
-- before an operation they run back to back, so each gap holds one of them.
-- phase(name) labels the gaps that follow, so the report says where the
-- largest one happened. Each gap also records the CPU time Neovim used during
-- it (getrusage): a long gap with little CPU is a machine busy with other
-- work, not this Neovim working.
--
-- At exit (os.exit, which skips Neovim's autocommands, is wrapped) one line
-- goes to $SHELF_BENCH_OUT: group "stall", the program ($BENCH_SCRIPT), the
-- library size ($BENCH_SIZE), the largest gap, its phase, and the five largest
-- gaps. With $BENCH_STALL_OUT instead the summary goes there as JSON (a child
-- Neovim whose parent reports it).
--
-- Each of the five largest gaps says when it ended (at_ms, the monotonic
-- clock: `perf record -k CLOCK_MONOTONIC` samples line up with it). With
-- $SHELF_BENCH_PROFILE set, LuaJIT's sampling profiler runs too (1 ms) and
-- each of them says where its samples were: the Lua stacks, most frequent
-- first, with the VM state (N/I compiled or interpreted Lua, G the
-- collector, C a C function: time spent in C before Lua runs, such as
-- Neovim turning a message into Lua values, is told at the Lua that runs
-- next). A tool to find what held the loop; sampling costs a little time.
local uv = vim.uv or vim.loop
local S = {}

local PERIOD = 2 -- ms
-- Read now: finish() may run in a signal callback, where vim.env cannot be used.
local script = vim.env.BENCH_SCRIPT or '?'
local size = tonumber(vim.env.BENCH_SIZE or '') or 0
local stall_out = vim.env.BENCH_STALL_OUT
local bench_out = vim.env.SHELF_BENCH_OUT
local last, last_cpu, paused, pending = nil, 0, false, false
local ticks, max, max_phase, phase = 0, 0, nil, 'start'
local top = {} -- the largest gaps, { ms, phase, cpu ms }, largest first, at most 5
local max_cpu = 0 -- the CPU time of the largest gap
local per_phase = {} -- phase -> largest gap in it
local per_phase_cpu = {} -- phase -> the most CPU time Neovim used in one gap in it

-- The profiler's samples since the last tick: { stack, vmstate } ...
local samples
if (os.getenv('SHELF_BENCH_PROFILE') or '') ~= '' then
  local ok, profile = pcall(require, 'jit.profile')
  if ok then
    samples = {}
    profile.start('i1', function(th, n, vmstate)
      if #samples < 5000 then
        samples[#samples + 1] = { profile.dumpstack(th, 'pl <', 6), vmstate, n }
      end
    end)
  end
end

-- Where a gap's samples were: the five most frequent stacks.
local function where()
  if not samples or #samples == 0 then
    return nil
  end
  local count = {}
  for _, s in ipairs(samples) do
    local k = s[2] .. ' ' .. s[1]
    count[k] = (count[k] or 0) + s[3]
  end
  local list = {}
  for k, c in pairs(count) do
    list[#list + 1] = { k, c }
  end
  table.sort(list, function(a, b) return a[2] > b[2] end)
  local out = {}
  for i = 1, math.min(5, #list) do
    out[i] = string.format('%d x %s', list[i][2], list[i][1])
  end
  return out
end

local function now()
  return uv.hrtime() / 1e6
end

local function cpu()
  local u = uv.getrusage()
  return (u.utime.sec + u.stime.sec) * 1000 + (u.utime.usec + u.stime.usec) / 1000
end

local function note(gap, busy, at)
  ticks = ticks + 1
  if gap > max then
    max, max_phase, max_cpu = gap, phase, busy
  end
  if gap > (per_phase[phase] or 0) then
    per_phase[phase] = gap
  end
  if busy > (per_phase_cpu[phase] or 0) then
    per_phase_cpu[phase] = busy
  end
  if #top < 5 or gap > top[#top][1] then
    table.insert(top, { gap, phase, busy, where(), at })
    table.sort(top, function(a, b) return a[1] > b[1] end)
    top[6] = nil
  end
end

local function tick()
  pending = false
  local t, c = now(), cpu()
  if last and not paused then
    note(t - last, c - last_cpu, t)
  end
  last, last_cpu = t, c
  if samples then
    samples = {}
  end
end

local timer = uv.new_timer()
timer:start(PERIOD, PERIOD, function()
  -- One callback in the queue at a time: a stalled loop gets one, not a pile.
  if not pending then
    pending = true
    vim.schedule(tick)
  end
end)
-- The timer must not keep a Neovim that is done from exiting.
timer:unref()

--- Label the gaps from now on (the largest gap reports its label).
function S.phase(name)
  phase = name
end

--- Stop counting (the bench's own synchronous work follows).
function S.pause()
  paused = true
end

--- Count again, from now.
function S.resume()
  paused = false
  last, last_cpu = now(), cpu()
  if samples then
    samples = {}
  end
end

--- The gap to the next tick starts now (just before a timed operation that
--- runs back to back with others, without the loop running in between).
function S.mark()
  if last then
    last, last_cpu = now(), cpu()
    if samples then
      samples = {}
    end
  end
end

local function r(x)
  return math.floor(x * 100 + 0.5) / 100
end

--- The figures so far.
function S.summary()
  local t = {}
  for _, g in ipairs(top) do
    table.insert(t, { ms = r(g[1]), phase = g[2], cpu_ms = r(g[3]), where = g[4], at_ms = r(g[5]) })
  end
  local phases, phases_cpu = {}, {}
  for k, v in pairs(per_phase) do
    phases[k] = r(v)
  end
  for k, v in pairs(per_phase_cpu) do
    phases_cpu[k] = r(v)
  end
  return { ticks = ticks, max = r(max), phase = max_phase, cpu_ms = r(max_cpu), top = t, phases = phases,
    phases_cpu = phases_cpu, period_ms = PERIOD }
end

local written = false
--- Write the summary once. cut: the program was stopped (its runner's
--- timeout) before it ended.
function S.finish(cut)
  if written then
    return
  end
  written = true
  timer:stop()
  local s = S.summary()
  s.cut_short = cut == true or nil
  local path = stall_out
  local line
  if path and path ~= '' then
    line = vim.json.encode(s)
  else
    path = bench_out
    if not path or path == '' then
      return
    end
    local f = io.open('/proc/loadavg', 'r')
    local load = f and tonumber(f:read('*l'):match('^(%S+)'))
    if f then
      f:close()
    end
    line = vim.json.encode({ group = 'stall', name = 'longest loop stall (' .. script .. ')', size = size,
      unit = 'ms', ours = { n = s.ticks, max = s.max }, stall = s, load = load })
  end
  local f = io.open(path, 'a')
  if f then
    f:write(line .. '\n')
    f:close()
  end
end

local exit = os.exit
-- luacheck: ignore 122
os.exit = function(...)
  S.finish()
  return exit(...)
end
vim.api.nvim_create_autocmd('VimLeavePre', { callback = function() S.finish() end })
-- The runner's timeout stops a program with SIGTERM: its stalls so far still count.
local term = uv.new_signal()
if term then
  term:start('sigterm', function()
    S.finish(true)
    os.exit = exit
    exit(143)
  end)
  term:unref()
end

return S
