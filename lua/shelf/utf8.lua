-- shelf.utf8: finding text that is not UTF-8 before it is sent. shelfd
-- refuses such text for every backend (JSON is UTF-8); found here first, the
-- message can name the line and column where Neovim shows the byte (<ff>).
local M = {}

--- The position of the first byte of `s` that is not part of well-formed
--- UTF-8 (no overlongs, surrogates or code points past U+10FFFF), or nil.
function M.first_invalid(s)
  local i = s:find('[\128-\255]')
  while i do
    local c = s:byte(i)
    local len = (c >= 0xC2 and c <= 0xDF) and 2 or (c >= 0xE0 and c <= 0xEF) and 3
      or (c >= 0xF0 and c <= 0xF4) and 4 or nil
    if not len then
      return i
    end
    for k = 1, len - 1 do
      local cc = s:byte(i + k)
      if not cc or cc < 0x80 or cc > 0xBF then
        return i
      end
    end
    local c2 = s:byte(i + 1)
    if (c == 0xE0 and c2 < 0xA0) or (c == 0xED and c2 > 0x9F) or (c == 0xF0 and c2 < 0x90)
      or (c == 0xF4 and c2 > 0x8F) then
      return i
    end
    i = s:find('[\128-\255]', i + len)
  end
  return nil
end

--- For lines of a buffer (the first being line `first`, default 1): nil when
--- all are UTF-8, else 'line N, column C: the byte <ff> is not UTF-8 text'.
function M.check_lines(lines, first)
  for n, line in ipairs(lines) do
    local col = M.first_invalid(line)
    if col then
      return string.format('line %d, column %d: the byte <%02x> is not UTF-8 text (JSON and the database '
        .. 'take only UTF-8)', n + (first or 1) - 1, col, line:byte(col))
    end
  end
  return nil
end

return M
