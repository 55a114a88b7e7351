-- shelf.display: text that another client may have written (the web app,
-- SQL, the API), made fit to show on one line. The store keeps every field
-- as written; only what the views show goes through here: line breaks, tabs
-- and other control characters become one space, invalid UTF-8 a U+FFFD,
-- text-direction overrides are dropped, long text ends in '…' at a display
-- width (strdisplaywidth: emoji and wide characters count as two), empty
-- titles read '(untitled)', and tags are only the non-empty strings, once.
local M = {}

M.untitled = '(untitled)'
M.unnamed = '(unnamed)'
M.ellipsis = '…'

--- Display widths (cells) text is cut at: titles and folder names in the
--- tab and pickers, titles quoted in messages, one tag, a folder's icon.
M.max = { label = 100, message = 60, tag = 40, icon = 4 }

--- A Lua pattern that finds `s` with ASCII letters in either case, as
--- their string.lower copies would compare (that is all string.lower
--- changes). Looking for it in each of 100k titles makes no lowered copy of
--- them: so many new strings double LuaJIT's string table, a rehash of every
--- string that holds the editor 13 ms or more at once.
function M.caseless(s)
  return (s:gsub('[%a%p%z]', function(c)
    if c:find('%a') then
      return '[' .. c:lower() .. c:upper() .. ']'
    end
    return c == '\0' and '%z' or '%' .. c
  end))
end

--- A field's value as a string: strings as they are, numbers and booleans
--- written out, anything else (nil, null, tables) nil.
---@return string|nil
function M.text(v)
  local t = type(v)
  if t == 'string' then
    return v
  elseif t == 'number' or t == 'boolean' then
    return tostring(v)
  end
  return nil
end

-- vim.trim validates its argument, and '(.-)%s*$' backtracks: this is
-- several times faster on 10k titles.
local function trim(s)
  local a, z = s:byte(1), s:byte(-1)
  if a and a > 32 and z > 32 then
    return s
  end
  return s:match('^%s*(.*%S)') or ''
end

local replacement = '\239\191\189' -- U+FFFD
local sep = '\n' -- stands for a control character until runs of them are joined

-- What a code point shows as: nil (itself), sep (a break: control
-- characters, line and paragraph separators) or '' (dropped: the bidi
-- embeddings, overrides and isolates that reorder the text around them).
local function special(cp)
  if cp < 0x20 or cp == 0x7F or (cp >= 0x80 and cp < 0xA0) or cp == 0x2028 or cp == 0x2029 then
    return sep
  end
  if (cp >= 0x202A and cp <= 0x202E) or (cp >= 0x2066 and cp <= 0x2069) or cp == 0xFEFF then
    return ''
  end
  return nil
end

-- The code point of the UTF-8 sequence at byte i and its length, or nil
-- when there is none (a stray byte, overlong, surrogate, past U+10FFFF).
local function decode(s, i, n)
  local byte = string.byte
  local c = byte(s, i)
  local len, cp, min
  if c < 0x80 then
    return c, 1
  elseif c >= 0xC2 and c <= 0xDF then
    len, cp, min = 2, c - 0xC0, 0x80
  elseif c >= 0xE0 and c <= 0xEF then
    len, cp, min = 3, c - 0xE0, 0x800
  elseif c >= 0xF0 and c <= 0xF4 then
    len, cp, min = 4, c - 0xF0, 0x10000
  else
    return nil
  end
  if i + len - 1 > n then
    return nil
  end
  for k = 1, len - 1 do
    local b = byte(s, i + k)
    if b < 0x80 or b > 0xBF then
      return nil
    end
    cp = cp * 64 + (b - 0x80)
  end
  if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then
    return nil
  end
  return cp, len
end

local byte = string.byte

-- True when `s` holds anything line() changes, so text that is fine (most
-- is) costs no rebuild. Printable ASCII, as most titles are, needs none: a
-- loop over the bytes (LuaJIT compiles it; several times faster than a
-- pattern) skips it, and the code points are decoded from the first other
-- byte on.
local function needs_cleaning(s)
  local n, i = #s, 1
  while i <= n do
    local b = byte(s, i)
    if b < 32 or b > 126 then
      break
    end
    i = i + 1
  end
  while i <= n do
    local cp, len = decode(s, i, n)
    if not cp or special(cp) then
      return true
    end
    i = i + len
  end
  return false
end

-- `s` with invalid UTF-8 replaced and special code points mapped.
local function clean_utf8(s)
  local out, n, i = {}, #s, 1
  local find = string.find
  while i <= n do
    -- Runs of printable ASCII go as they are.
    local j = find(s, '[%z\1-\31\127-\255]', i)
    if not j then
      out[#out + 1] = s:sub(i)
      break
    elseif j > i then
      out[#out + 1] = s:sub(i, j - 1)
      i = j
    end
    local cp, len = decode(s, i, n)
    if cp then
      local sp = special(cp)
      out[#out + 1] = sp or s:sub(i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = replacement
      i = i + 1
    end
  end
  return table.concat(out)
end

--- The display width of one line of text.
function M.width(s)
  return vim.fn.strdisplaywidth(s)
end

--- `s` cut to at most `max` display cells, ending in '…' when cut.
function M.truncate(s, max)
  -- A character takes at least one byte per cell, so a short string fits.
  if not max or #s <= max or M.width(s) <= max then
    return s
  end
  -- The longest prefix (in characters) that fits with the ellipsis.
  local lo, hi = 0, vim.fn.strchars(s)
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if M.width(vim.fn.strcharpart(s, 0, mid)) <= max - 1 then
      lo = mid
    else
      hi = mid - 1
    end
  end
  return vim.fn.strcharpart(s, 0, lo) .. M.ellipsis
end

--- Any field's value as one line: control characters (line breaks, tabs,
--- CR, ...) with the spaces around them become one space, invalid UTF-8 a
--- U+FFFD, and the text is cut at `max` display cells (nil: not cut).
---@param v any
---@param max integer|nil
---@return string
function M.line(v, max)
  local s = M.text(v)
  if not s then
    return ''
  end
  -- Most text needs no more than the cut.
  if needs_cleaning(s) then
    s = clean_utf8(s):gsub('%s*' .. sep .. '[%s' .. sep .. ']*', ' ')
  end
  return M.truncate(s, max)
end

--- A title (or a folder's name) as one line, trimmed, '(untitled)' when
--- nothing is left.
---@param v any the title
---@param max integer|nil
---@param placeholder string|nil instead of '(untitled)'
function M.title(v, max, placeholder)
  local s = trim(M.line(v, nil))
  if s == '' then
    return placeholder or M.untitled
  end
  return M.truncate(s, max)
end

-- The tags shown of each summary's tags table (see M.tags).
local tags_of = setmetatable({}, { __mode = 'k' })

--- Tags to show: the strings (and numbers) of a list, each as one line,
--- without empty and repeated ones. A value that is not a list (another
--- client wrote a bare string or number) is one tag; null or an object none.
---@return string[] not to be changed: the same list comes back for the same table
local no_tags = {}

function M.tags(v)
  local list
  if type(v) == 'table' then
    if tags_of[v] then
      return tags_of[v]
    end
    -- Not kept for an empty table: 100k untagged items would be 100k
    -- entries of a weak table, each visited by the collector's atomic step.
    if next(v) == nil then
      return no_tags
    end
    list = v
  elseif M.text(v) then
    list = { v }
  else
    return {}
  end
  local out, seen = {}, {}
  for _, t in ipairs(list) do
    local s = M.text(t)
    if s then
      s = trim(M.line(s, M.max.tag))
      if s ~= '' and not seen[s] then
        seen[s] = true
        out[#out + 1] = s
      end
    end
  end
  -- Each summary's tags are a table of their own, never changed once sent.
  if list == v then
    tags_of[v] = out
  end
  return out
end

--- A folder's icon: its own (one line, a few cells), else the default.
function M.icon(v, default)
  local s = trim(M.line(v, M.max.icon))
  if s == '' then
    return default or '📁'
  end
  return s
end

return M
