-- shelf.uuid: a UUID's text as three numbers and back. The mirror keeps ids
-- so: 100k id strings were 7 MiB of Lua heap, and with the titles they
-- filled LuaJIT's string table past a size where it doubles, a rehash of
-- every string (13-25 ms at once) that no slice can split.
local M = {}

local byte, floor, format = string.byte, math.floor, string.format

-- acc with the hex digits of s[from..to] after it, or nil: one is no
-- lowercase hex digit.
local function hex(s, from, to, acc)
  for i = from, to do
    local ch = byte(s, i)
    if ch >= 48 and ch <= 57 then
      acc = acc * 16 + ch - 48
    elseif ch >= 97 and ch <= 102 then
      acc = acc * 16 + ch - 87
    else
      return nil
    end
  end
  return acc
end

--- The 32 hex digits of a canonical UUID (36 characters, lowercase, as
--- PostgreSQL and shelfd write them) as three numbers: digits 1-12, 13-24
--- and 25-32, each exact in a double. nil for any other value.
function M.parts(id)
  if type(id) ~= 'string' or #id ~= 36 or byte(id, 9) ~= 45 or byte(id, 14) ~= 45 or byte(id, 19) ~= 45
    or byte(id, 24) ~= 45 then
    return nil
  end
  local a = hex(id, 1, 8, 0)
  a = a and hex(id, 10, 13, a)
  local b = hex(id, 15, 18, 0)
  b = b and hex(id, 20, 23, b)
  b = b and hex(id, 25, 28, b)
  local c = hex(id, 29, 36, 0)
  if not (a and b and c) then
    return nil
  end
  return a, b, c
end

--- Whether a, b, c are the parts of a UUID as M.parts makes them (whole
--- numbers of 48, 48 and 32 bits).
function M.is_parts(a, b, c)
  return type(a) == 'number' and type(b) == 'number' and type(c) == 'number' and a >= 0 and a < 2 ^ 48
    and a % 1 == 0 and b >= 0 and b < 2 ^ 48 and b % 1 == 0 and c >= 0 and c < 2 ^ 32 and c % 1 == 0
end

--- The text of the UUID of parts a, b, c (from M.parts). In 16-bit pieces:
--- '%x' of more than 32 bits is not portable across Lua builds.
function M.text(a, b, c)
  return format('%04x%04x-%04x-%04x-%04x-%04x%04x%04x', floor(a / 4294967296), floor(a / 65536) % 65536,
    a % 65536, floor(b / 4294967296), floor(b / 65536) % 65536, b % 65536, floor(c / 65536), c % 65536)
end

--- A number for a table key from parts a, b, c: the last 8 digits, and the
--- others folded into 20 bits (ids that another program numbered in order
--- differ in a few digits anywhere). Under 2^52, each step exact. Two UUIDs
--- may share one: whoever indexes by it must compare the parts.
function M.key(a, b, c)
  local h = floor(a / 1048576) % 1048573
  h = (h * 1000003 + a % 1048576) % 1048573
  h = (h * 1000003 + floor(b / 1048576)) % 1048573
  h = (h * 1000003 + b % 1048576) % 1048573
  return c + 4294967296 * h
end

return M
