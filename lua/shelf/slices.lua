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

return M
