-- Odd data another client writes, shared by test_odd_data.lua (the SQLite
-- file, written with sqlite3) and stack_odd_data.lua (the stack's database,
-- written with psql): the odd texts, the checks of the knowledge tab, and a
-- seeded property run whose writes each backend's test supplies. Load with
-- local O = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/odd_data_support.lua').
local mirror = require('shelf.mirror')

local O = {}

O.long = string.rep('very long title ', 400) -- 6,400 characters

-- Named odd texts; `bad_utf8` only where the store takes any bytes (SQLite).
O.odd = {
  newline = 'Two\nlines',
  crlf = 'Windows\r\nline\rbreaks',
  tab = 'tab\tseparated\vand\ffeeds',
  control = 'bell\7 escape\27[31m red\127 del',
  c1 = 'next\194\133line', -- U+0085
  separators = 'line\226\128\168sep para\226\128\169sep', -- U+2028, U+2029
  long = O.long,
  empty = '',
  blank = ' \t \n ',
  bad_utf8 = 'bad \195\40 and \255\254 bytes \237\160\128 surrogate',
  emoji = 'party 🎉 family 👩‍👩‍👧 flag 🇩🇪',
  rtl = 'שלום עולם مرحبا بالعالم',
  bidi = 'safe \226\128\174txet desrever\226\128\172 end', -- U+202E ... U+202C
  cjk = '漢字とかなのタイトル',
  combining = 'cafe\204\129 na\204\136ive',
}

--- Lines with no control characters (the tab's lines are set as they are).
function O.assert_clean(lines, what)
  for i, l in ipairs(lines) do
    T.ok(not l:find('[%z\1-\31\127]'), string.format('%s line %d has a control character: %q', what, i, l))
  end
end

--- What the tab shows: every line, each line's node and every highlight
--- (as test_tab.lua compares them).
function O.snapshot(buf)
  local st = require('shelf.tab')._state()
  local rows, marks = {}, {}
  for l = 1, vim.api.nvim_buf_line_count(buf) do
    local r = st.rows[l]
    rows[l] = r and string.format('%s @%d in %s', r.node.key, r.depth, r.parent and r.parent.key or '-') or false
    for _, h in ipairs(st.hls[l] or {}) do
      table.insert(marks, string.format('%d:%d-%d %s', l, h[2], h[3], h[1]))
    end
  end
  return { lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false), rows = rows, marks = marks }
end

local function item_count()
  return #mirror.items('prompt') + #mirror.items('block')
end

--- Once the tab drew the last change: every line one line without control
--- characters and not too wide, a line for every item, and all of it equal
--- to a fresh render from an empty buffer.
function O.check_tab(buf, what)
  local st = require('shelf.tab')._state()
  T.wait(function() return not st.flush end, what .. ': the tab to draw')
  local shown = O.snapshot(buf)
  O.assert_clean(shown.lines, what)
  local n = 0
  for i, l in ipairs(shown.lines) do
    T.ok(vim.fn.strdisplaywidth(l) < 300, what .. ': line ' .. i .. ' is short')
    n = n + ((st.rows[i] and st.rows[i].node.type == 'item') and 1 or 0)
  end
  T.eq(item_count(), n, what .. ': one line an item')
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, {})
  vim.bo[buf].modifiable = false
  require('shelf.tab').render()
  local fresh = O.snapshot(buf)
  T.eq(fresh.lines, shown.lines, what .. ': lines')
  T.eq(fresh.rows, shown.rows, what .. ': rows')
  T.eq(fresh.marks, shown.marks, what .. ': highlights')
end

local function pick(t)
  return t[math.random(#t)]
end
O.pick = pick

-- A random code point of the odd kinds: C0, DEL, C1, separators, bidi
-- controls, emoji, RTL, wide, combining, plain.
local function odd_char()
  local cp = pick({ math.random(1, 31), 127, math.random(0x80, 0x9F), 0x2028, 0x2029, math.random(0x202A, 0x202E),
    math.random(0x2066, 0x2069), 0xFEFF, math.random(0x1F300, 0x1F64F), math.random(0x05D0, 0x05EA),
    math.random(0x0627, 0x064A), math.random(0x4E00, 0x4FFF), 0x0301, 0x200D, math.random(32, 126) })
  if cp < 0x80 then
    return string.char(cp)
  elseif cp < 0x800 then
    return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64)
  elseif cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
    0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

--- A random odd text: a few of the odd texts and words (the 6,400-character
--- one rarely), or random characters; with `any_bytes` also random bytes but
--- NUL (what a C program reads of a text stops there).
function O.text(any_bytes)
  local r = math.random(8)
  if r == 1 and any_bytes then
    local b = {}
    for i = 1, math.random(0, 30) do
      b[i] = string.char(math.random(1, 255))
    end
    return table.concat(b)
  elseif r == 2 then
    local b = {}
    for i = 1, math.random(0, 12) do
      b[i] = odd_char()
    end
    return table.concat(b)
  end
  local pieces = {}
  for name, s in pairs(O.odd) do
    if any_bytes or name ~= 'bad_utf8' then
      table.insert(pieces, s)
    end
  end
  table.sort(pieces) -- pairs() has no fixed order; the seed must say it all
  vim.list_extend(pieces, { 'Alpha', 'beta', 'Zeta', '0 first', '~ last', 'mid', '' })
  local out = {}
  for i = 1, math.random(1, 3) do
    local p = pick(pieces)
    if p == O.long and math.random(4) > 1 then
      p = 'short'
    end
    out[i] = p
  end
  return table.concat(out, pick({ ' ', '', '\n', '\t' }))
end

--- The property: `steps` random writes by another client while the tab is
--- open, each checked with O.check_tab. `w` writes and waits until shelfd
--- has the change: new_folder(ftype, parent_id, name, icon) -> id,
--- update_folder(ftype, id, name, icon), new_item(kind, fields) -> id
--- (fields: title, tags, project_id, description, ago), update_item(kind,
--- id, title, tags), move_item(kind, id, to), delete_item(kind, id); and
--- w.tags() makes a random tags value as that backend stores it.
function O.property(buf, seed, steps, w, any_bytes)
  math.randomseed(seed)
  local function say(step, what)
    return string.format('seed %d (rerun: SHELF_TEST_SEED=%d), step %d (%s)', seed, seed, step, what)
  end
  local folders = { prompts = {}, datasets = {} }
  local names = {} -- parent id or '' -> name -> true (names are unique in a folder)
  local function folder_name(parent)
    local used = names[parent or ''] or {}
    names[parent or ''] = used
    local n = O.text(any_bytes)
    while used[n] do
      n = n .. '+'
    end
    used[n] = true
    return n
  end
  local function items()
    local out = {}
    for _, kind in ipairs({ 'prompt', 'block' }) do
      for _, it in ipairs(mirror.items(kind)) do
        table.insert(out, { kind = kind, id = it.id })
      end
    end
    table.sort(out, function(a, b) return a.id < b.id end)
    return out
  end
  local ftype = { prompt = 'prompts', block = 'datasets' }
  for step = 1, steps do
    local op = math.random(100)
    local list = items()
    local what
    if op <= 12 or #folders.prompts + #folders.datasets < 2 then
      local t = pick({ 'prompts', 'datasets' })
      local parent = #folders[t] > 0 and math.random(2) == 1 and pick(folders[t]) or nil
      local name = folder_name(parent)
      what = string.format('new %s folder %q', t, name)
      table.insert(folders[t], w.new_folder(t, parent, name, math.random(3) == 1 and O.text(any_bytes) or nil,
        say(step, what)))
    elseif op <= 20 then
      local t = pick({ 'prompts', 'datasets' })
      if #folders[t] > 0 then
        local id = pick(folders[t])
        local name = folder_name(mirror.item('project', id).parent_id)
        what = string.format('rename folder %s to %q', id, name)
        w.update_folder(t, id, name, math.random(2) == 1 and O.text(any_bytes) or '📁', say(step, what))
      end
    elseif op <= 55 or #list < 3 then
      local kind = pick({ 'prompt', 'block' })
      local f = folders[ftype[kind]]
      local fields = { title = O.text(any_bytes), tags = w.tags(),
        ago = pick({ 0, 300, 7200, 200000, 3000000, 50000000 }),
        project_id = #f > 0 and math.random(3) > 1 and pick(f) or nil,
        description = kind == 'prompt' and math.random(2) == 1 and O.text(any_bytes) or nil }
      what = string.format('new %s %q tags %s', kind, fields.title, fields.tags)
      w.new_item(kind, fields, say(step, what))
    else
      local it = pick(list)
      if op <= 75 then
        local title, tags = O.text(any_bytes), w.tags()
        what = string.format('%s %s: title %q, tags %s', it.kind, it.id, title, tags)
        w.update_item(it.kind, it.id, title, tags, say(step, what))
      elseif op <= 88 then
        local f = folders[ftype[it.kind]]
        local to = #f > 0 and math.random(4) > 1 and pick(f) or nil
        what = string.format('move %s %s to %s', it.kind, it.id, tostring(to))
        w.move_item(it.kind, it.id, to, say(step, what))
      else
        what = string.format('delete %s %s', it.kind, it.id)
        w.delete_item(it.kind, it.id, say(step, what))
      end
    end
    if what then
      O.check_tab(buf, say(step, what))
    end
  end
end

return O
