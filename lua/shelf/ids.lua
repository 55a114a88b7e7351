-- shelf.ids: ids as people write them. Ids are UUIDs; buffer names, header
-- fields and messages show only as much of one as tells it apart from the
-- others of its kind, and read back a full id or such a prefix.
local display = require('shelf.display')
local mirror = require('shelf.mirror')
local uuid = require('shelf.uuid')

local floor = math.floor

local M = {}

-- Shown at least this long: short enough to read, long enough that a new
-- item rarely makes an old prefix ambiguous.
M.min_len = 8

--- The shortest prefix of `id` (at least min_len characters) that no other
--- item of `kind` in the mirror starts with.
function M.short(kind, id)
  local n = M.min_len
  -- Another UUID whose first 8 digits (min_len characters) differ changes
  -- nothing: its text is not made.
  local a = uuid.parts(id)
  local head = a and floor(a / 65536)
  for row in mirror.rows(kind) do
    local other_a = mirror.id_parts(kind, row)
    if not (head and other_a and floor(other_a / 65536) ~= head) then
      local other = mirror.id_at(kind, row)
      if other ~= id then
        -- The length of the common prefix, plus one, is what tells them apart.
        local i = 1
        while i <= #id and id:byte(i) == other:byte(i) do
          i = i + 1
        end
        n = math.max(n, i)
      end
    end
  end
  return id:sub(1, n)
end

--- The id of the item of `kind` that `text` names: its whole id or a prefix
--- of at least 4 characters no other item shares. Returns the id, or nil and
--- 'none' or 'several'.
function M.resolve(kind, text)
  if mirror.row(kind, text) then
    return text
  end
  if #text < 4 then
    return nil, 'none'
  end
  local starts = '^' .. display.caseless(text)
  -- Only a UUID whose first 4 digits are those of text can start with it:
  -- the others' text is not made.
  local head = tonumber(text:sub(1, 4):match('^%x%x%x%x$') or '', 16)
  local found
  for row in mirror.rows(kind) do
    local a = mirror.id_parts(kind, row)
    if not a or (head and floor(a / 4294967296) == head) then
      local id = mirror.id_at(kind, row)
      if id:find(starts) then
        if found then
          return nil, 'several'
        end
        found = id
      end
    end
  end
  if not found then
    return nil, 'none'
  end
  return found
end

return M
