-- shelf.picker.mini: a shelf picker (picker/native.lua's spec) in mini.pick:
-- its matching on the shown line (folder, title, tags), the item in its
-- preview (<Tab>), <CR> and the action keys as custom mappings.
local M = {}

--- Open the picker described by `s` (see picker/native.lua). mini.pick
--- returns once the picker is closed.
function M.open(s)
  local MiniPick = require('mini.pick')
  local items = {}
  for _, e in ipairs(s.entries) do
    table.insert(items, { text = s.display(e), entry = e })
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
