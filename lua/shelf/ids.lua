-- shelf.ids: ids as people write them. Ids are UUIDs; buffer names, header
-- fields and messages show only as much of one as tells it apart from the
-- others of its kind, and read back a full id or such a prefix.
local display = require('shelf.display')
local mirror = require('shelf.mirror')

local M = {}

-- Shown at least this long: short enough to read, long enough that a new
-- item rarely makes an old prefix ambiguous.
M.min_len = 8

--- The shortest prefix of `id` (at least min_len characters) that no other
--- item of `kind` in the mirror starts with.
function M.short(kind, id)
  local n = M.min_len
  for other in pairs(mirror.ids(kind)) do
    if other ~= id then
      -- The length of the common prefix, plus one, is what tells them apart.
      local i = 1
      while i <= #id and id:byte(i) == other:byte(i) do
        i = i + 1
      end
      n = math.max(n, i)
    end
  end
  return id:sub(1, n)
end

--- The id of the item of `kind` that `text` names: its whole id or a prefix
--- of at least 4 characters no other item shares. Returns the id, or nil and
--- 'none' or 'several'.
function M.resolve(kind, text)
  local items = mirror.ids(kind)
  if items[text] then
    return text
  end
  if #text < 4 then
    return nil, 'none'
  end
  local starts = '^' .. display.caseless(text)
  local found
  for id in pairs(items) do
    if id:find(starts) then
      if found then
        return nil, 'several'
      end
      found = id
    end
  end
  if not found then
    return nil, 'none'
  end
  return found
end

return M
