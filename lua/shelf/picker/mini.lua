-- shelf.picker.mini: a shelf picker (picker/native.lua's spec) in mini.pick:
-- its matching on the shown line (folder, title, tags), the item in its
-- preview (<Tab>), <CR> and the action keys as custom mappings.
local M = {}

--- Open the picker described by `s` (see picker/native.lua). mini.pick
--- returns once the picker is closed.
function M.open(s)
  local MiniPick = require('mini.pick')
  -- The lines are made in short slices (shelf.slices.SLICE_NS) once the
  -- picker is open, then given to it whole (mini.pick matches in slices of
  -- its own): the picker opens at once and the editor goes on while 100k
  -- lines are made.
  local function items()
    local out, i = {}, 1
    local hrtime = (vim.uv or vim.loop).hrtime
    local function slice()
      if not MiniPick.is_picker_active() then
        return
      end
      local slices = require('shelf.slices')
      local deadline = slices.deadline(slices.SLICE_NS)
      while i <= #s.entries do
        local e = s.entries[i]
        out[i] = { text = s.display(e), entry = e }
        i = i + 1
        if i % 256 == 0 and hrtime() > deadline then
          return vim.defer_fn(slice, 0)
        end
      end
      MiniPick.set_picker_items(out)
    end
    slice()
  end
  local mappings = {}
  for name, key in pairs(s.keys) do
    mappings['shelf_' .. name] = {
      char = key,
      func = function()
        local current = (MiniPick.get_picker_matches() or {}).current
        if current then
          s.run(name, current.entry)
        end
        return true -- close the picker
      end,
    }
  end
  MiniPick.start({
    source = {
      name = s.title,
      items = items,
      preview = function(buf, item)
        s.preview(buf, item.entry)
      end,
      choose = function(item)
        if item then
          s.run(s.default, item.entry)
        end
      end,
    },
    mappings = mappings,
  })
end

return M
