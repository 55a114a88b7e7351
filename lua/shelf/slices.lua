-- shelf.slices: work over the whole library done a slice of time at a time,
-- one slice per turn of Neovim's loop, so that keys and redraws go on
-- between them (no piece of the plugin may hold the loop for a frame).
local M = {}

--- How long a slice of any such work runs (ns). One turn of the loop runs
--- every callback that is due back to back (a mirror slice, a draw slice,
--- an answer), so each keeps well under half a frame: two stay within one.
M.SLICE_NS = 4e6

--- Run body(pause) in slices: body calls pause() every few hundred steps,
--- which yields once `budget()` ns have passed since the slice began; the
--- next slice runs on a later turn of the loop. Before each slice `go()`
--- says whether to go on (false: stop; done never runs). done(...) gets what
--- body returned. The first slice runs now, so a small job is done before
--- this returns.
function M.run(budget, body, go, done)
  local hrtime = (vim.uv or vim.loop).hrtime
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
    deadline = hrtime() + budget()
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

--- fn(kind, id, row) for every item of `kinds` in `library` (a
--- mirror.library: read its fields with mirror.column(kind, key, library)),
--- calling pause() every 256 items (inside M.run's body).
function M.each_item(library, kinds, pause, fn)
  local seen = 0
  for _, kind in ipairs(kinds) do
    for id, row in pairs(require('shelf.mirror').ids(kind, library)) do
      fn(kind, id, row)
      seen = seen + 1
      if seen % 256 == 0 then
        pause()
      end
    end
  end
end

-- Steps of the collector taken here, and the longest (ms).
M.gc_stats = { steps = 0, longest_ms = 0, runs = 0 }

local hrtime = (vim.uv or vim.loop).hrtime

-- Steps of the collector until `ns` have passed; the number of cycles they
-- finished. (A step is bounded: at 100k items the longest took 1-2 ms.)
local function collector_steps(ns)
  local deadline, cycles = hrtime() + ns, 0
  repeat
    local t = hrtime()
    if collectgarbage('step', 0) then
      cycles = cycles + 1
    end
    local ms = (hrtime() - t) / 1e6
    M.gc_stats.steps = M.gc_stats.steps + 1
    if ms > M.gc_stats.longest_ms then
      M.gc_stats.longest_ms = ms
    end
  until hrtime() > deadline
  return cycles
end

--- A big load makes garbage (what each push is decoded into) as fast as
--- it makes the library: with the collector paid a ms after each of its
--- pushes, the heap stays near what is live, and Neovim's memory with it
--- (a first load of 100k items with the tab open: 45-51 -> 37-40 MiB more
--- resident; every item is in 0.3 s later, the tab shows as soon as
--- before).
function M.pay_collector()
  collector_steps(M.SLICE_NS / 4)
end

local collecting = false

--- True while M.collect_garbage goes on (tests).
function M.collecting()
  return collecting
end

--- Collect the garbage a big change left (the library a restart replaced:
--- 30 MiB at 100k items) a slice at a time while the loop is free. Left to
--- itself the collector frees it in the bursts that the next allocations
--- set off, inside whatever runs then: a restart's next load held the loop
--- for 16-21 ms at 100k, and 10 ms with that garbage gone. Two cycles: the
--- one under way may have started before the garbage was made.
function M.collect_garbage()
  if collecting then
    return
  end
  collecting = true
  M.gc_stats.runs = M.gc_stats.runs + 1
  local cycles = 0
  local function slice()
    cycles = cycles + collector_steps(M.SLICE_NS / 2)
    if cycles >= 2 then
      collecting = false
      return
    end
    vim.defer_fn(slice, 0)
  end
  vim.defer_fn(slice, 0)
end

return M
