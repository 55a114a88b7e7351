-- shelf.slices: work over the whole library done a slice of time at a time,
-- one slice per turn of Neovim's loop, so that keys and redraws go on
-- between them (no piece of the plugin may hold the loop for a frame).
local M = {}

--- How long a slice of any such work runs (ns). One turn of the loop runs
--- every callback that is due back to back (a mirror slice, a draw slice,
--- an answer), so each keeps well under half a frame: two stay within one.
M.SLICE_NS = 4e6

--- How many items of heavy work (a summary made, a line drawn, a folder
--- placed) go between two looks at the clock. The first pass over a code
--- path compiles it: LuaJIT makes dozens of traces in the first few hundred
--- items, and each costs a pair of mprotect calls, which take 0.2-0.5 ms on
--- a virtual machine (its TLB flush waits for the other CPU). Looking every
--- 256 items let 44 of them land in one slice (22 ms of CPU at 100k items,
--- the tab's first filter); every 8 keeps such a burst within a slice's
--- margin. A look costs one hrtime() call.
M.EVERY = 8

local uv = vim.uv or vim.loop
local hrtime = uv.hrtime
local turn_ms, turn_began = nil, 0

--- When a slice of `ns` that starts now must end. Slices of different jobs
--- whose timers are due together run in one turn of the loop, back to back
--- (a draw of the tab and the collector after a restart: 10 ms of CPU in one
--- turn at 1k items), so they share one SLICE_NS a turn: a slice gets what
--- the turn has left, and at least a tenth of `ns`, so that each job goes
--- on. A turn is told by the loop's clock (uv.now(), set once a turn).
function M.deadline(ns)
  local now, ms = hrtime(), uv.now()
  if ms ~= turn_ms then
    turn_ms, turn_began = ms, now
  end
  local left = M.SLICE_NS - (now - turn_began)
  return now + math.max(math.min(ns, left), ns / 10)
end

--- Run body(pause) in slices: body calls pause() every few hundred steps,
--- which yields once `budget()` ns have passed since the slice began; the
--- next slice runs on a later turn of the loop. Before each slice `go()`
--- says whether to go on (false: stop; done never runs). done(...) gets what
--- body returned. The first slice runs now, so a small job is done before
--- this returns.
function M.run(budget, body, go, done)
  local deadline = 0
  local co = coroutine.create(function()
    return body(function()
      if hrtime() > deadline then
        coroutine.yield()
      end
    end)
  end)
  local function step()
    if not go() then
      return
    end
    deadline = M.deadline(budget())
    local res = { coroutine.resume(co) }
    if not res[1] then
      error(res[2])
    end
    if coroutine.status(co) == 'dead' then
      done(unpack(res, 2, table.maxn(res)))
    else
      vim.defer_fn(step, 0)
    end
  end
  step()
end

--- fn(kind, row) for every item of `kinds` in `library` (a mirror.library:
--- read its fields with mirror.column(kind, key, library)), calling pause()
--- every 256 items (inside M.run's body).
function M.each_item(library, kinds, pause, fn)
  local seen = 0
  for _, kind in ipairs(kinds) do
    for row in require('shelf.mirror').rows(kind, library) do
      fn(kind, row)
      seen = seen + 1
      if seen % 256 == 0 then
        pause()
      end
    end
  end
end

-- Steps of the collector taken here, and the collections begun (tests).
M.gc_stats = { steps = 0, runs = 0 }

-- The collector's pace. Left to itself, LuaJIT's collector does its work in
-- steps set off by allocation, inside whatever allocates: the garbage of a
-- library a restart replaced was freed in bursts inside the next load's
-- slices (13-29 ms at 100k). And at its own pace the heap of a load rose to
-- twice what is live (Neovim's resident memory with it). Driving it with
-- steps alone was worse: they leave it set to step at every KiB allocated,
-- and the tab's draws and the picker's sort then carried 20-40 ms of it.
-- So while a load runs and while the garbage of a replaced library is
-- collected, the collector is stopped for allocation and driven here
-- instead, a slice at a time; a cycle finished
-- by one of these steps gives it back its own pace (LuaJIT sets its next
-- threshold then). (A collector stopped by the user's config is started
-- again by this: it is not the default, and nothing else here needs it.)

-- Steps until `deadline` (hrtime) or `cycles` cycles finished; the number
-- finished. A step is short: at 100k items the longest took 1-2 ms. Each
-- step leaves the collector set to step again at the next KiB allocated:
-- stopped again, unless the last step finished what was asked.
local function collector_steps(deadline, cycles)
  local done = 0
  repeat
    M.gc_stats.steps = M.gc_stats.steps + 1
    -- (An error of another plugin's finalizer must not stop a load here.)
    local ok, finished = pcall(collectgarbage, 'step', 0)
    if ok and finished then
      done = done + 1
      if done >= cycles then
        return done
      end
    end
  until hrtime() > deadline
  collectgarbage('stop')
  return done
end

local collecting = 0 -- cycles still to finish (0: the collector keeps its own pace)
local scheduled = false

local slice

-- The next slice in a later turn of the loop, unless one is on its way.
local function schedule()
  if not scheduled then
    scheduled = true
    vim.defer_fn(slice, 0)
  end
end

function slice()
  scheduled = false
  if collecting <= 0 then
    return
  end
  collecting = collecting - collector_steps(M.deadline(M.SLICE_NS / 2), collecting)
  if collecting > 0 then
    schedule()
  end
end

--- True while collected here (tests).
function M.collecting()
  return collecting > 0
end

--- Collect the garbage a big change left (the library a restart replaced:
--- 30 MiB at 100k items) a slice at a time while the loop is free: two
--- cycles (the one under way may have begun before the garbage was made).
function M.collect_garbage()
  M.gc_stats.runs = M.gc_stats.runs + 1
  collecting = math.max(collecting, 2)
  schedule()
end

--- 2 ms of the collector after a push of a big load (shelf.mirror: from
--- its 10,000th item on): its garbage (what each push is decoded into) is
--- collected as it comes, and the heap stays near what is live (a first
--- load of 100k items with the tab open: the resident memory it adds,
--- 45-51 -> 36-38 MiB). A cycle finished once no push came for 100 ms
--- gives the collector back its pace.
local load_timer
function M.pay_collector()
  -- (Its own 2 ms, beside the push's slice: the load's pace, not the turn's.)
  local finished = collector_steps(hrtime() + M.SLICE_NS / 2, 1)
  collecting = math.max(collecting - finished, 1)
  -- The rest once no push came for a while: the load is over (or waits).
  load_timer = load_timer or uv.new_timer()
  load_timer:stop()
  load_timer:start(100, 0, schedule)
end

return M
