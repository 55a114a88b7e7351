-- Odd items that every backend must store exactly or refuse clearly: 1 MB+
-- content, quotes and SQL in titles, newlines, emoji, invalid UTF-8, and
-- values past shelfd's limits. Used by test_bad_input.lua (SQLite) and
-- stack_security.lua (Supabase). Call it after the library is ready.
local shelf = require('shelf')
local client = require('shelf.client')

return function(backend)
  local function create(kind, fields)
    return T.await(function(cb) shelf.create(kind, fields, cb) end, 'create', 60000)
  end

  -- Stored exactly (read back from shelfd after a full refresh), or refused
  -- with a message; never a crash or a different text.
  local function exact_or_refused(name, fields, must_store)
    local err, item = create('prompt', fields)
    if err then
      io.stderr:write(string.format('  (%s: %s refused: %s)\n', backend, name, err))
      T.ok(not must_store, name .. ' was refused: ' .. tostring(err))
      T.ok(type(err) == 'string' and #err > 10, name .. ': a clear message: ' .. tostring(err))
      return nil, err
    end
    T.eq(nil, T.await(function(cb) shelf.refresh(cb) end, 'refresh', 60000), 'refresh')
    local got = T.get('prompt', item.id)
    T.ok(got, name .. ': read back')
    io.stderr:write(string.format('  (%s: %s stored exactly)\n', backend, name))
    for k, v in pairs(fields) do
      T.ok(got[k] == v, string.format('%s: %s round trip (%d bytes in, %s out)', name, k, #v,
        type(got[k]) == 'string' and #got[k] .. ' bytes' or type(got[k])))
    end
    return got
  end

  T.test(backend .. ': 1.5 MB of content comes back byte for byte', function()
    local chunk = 'line with ümlaut, "quotes", \'single\', tab\t and emoji 🧪\n'
    local content = string.rep(chunk, math.ceil(1.5 * 2 ^ 20 / #chunk))
    exact_or_refused('1.5 MB', { title = 'big emoji 🧪', content = content }, true)
    local err, hits = T.await(function(cb)
      client.search_async('emoji 🧪', 'prompt', cb)
    end, 'the search')
    T.eq(nil, err, 'search error')
    T.ok(#hits >= 1, 'search finds the emoji')
  end)

  T.test(backend .. ': SQL and quotes in titles are only text', function()
    for _, title in ipairs({ "'); DROP TABLE prompts;--", 'Robert"); DELETE FROM context_blocks; --',
      "it's \"quoted\" \\ back\\slash", '%_% like wildcards %', '${jndi}`whoami`$(id)' }) do
      exact_or_refused(title, { title = title, content = title }, true)
      local bhit = create('block', { title = title, content = 'x' })
      T.eq(nil, bhit, 'a block titled ' .. title)
    end
    -- The tables are all still there and usable.
    T.ok(exact_or_refused('after', { title = 'still works', content = 'ok' }, true), 'a create after')
    T.ok(#shelf.items('block') >= 5, 'blocks still listed')
  end)

  T.test(backend .. ': newlines, emoji and control characters in titles', function()
    exact_or_refused('newlines', { title = 'two\nlines\r\nthree', content = 'x' }, false)
    exact_or_refused('emoji', { title = '📚 shelf ✨ 👩‍💻 日本語', content = '🧪🧪🧪' }, true)
    exact_or_refused('controls', { title = 'bell\7 esc\27[31m', content = 'tab\there' }, false)
  end)

  T.test(backend .. ': invalid UTF-8 is stored exactly or refused clearly', function()
    -- JSON is UTF-8: shelfd refuses other bytes on every backend, naming the field.
    for _, f in ipairs({ { title = 'bad \255\254 bytes', content = 'x' },
      { title = 'ok', content = 'half \226\130 a char' },
      { title = 'overlong \192\175', content = 'x' },
      { title = 'surrogate \237\160\128', content = 'x' },
      { title = 'ok', tags = { 'bad\255' } } }) do
      local err = create('prompt', f)
      T.ok(err and err:find('UTF-8', 1, true), 'refused: ' .. vim.inspect(f) .. ': ' .. tostring(err))
    end
    exact_or_refused('4-byte UTF-8', { title = '𝄞 clef', content = '𝄞' }, true)
    -- A NUL byte cannot be in a C string: refused or kept, never cut short.
    local err, item = create('prompt', { title = 'nul', content = 'before\0after' })
    if not err then
      local got = T.get('prompt', item.id)
      T.ok(got.content == 'before\0after', 'a NUL was cut: ' .. vim.inspect(got.content))
    else
      T.ok(#err > 10, 'a clear message: ' .. err)
    end
  end)

  T.test(backend .. ': values past the limits are refused with a message', function()
    local cases = {
      { 'a 2 KB title', { title = string.rep('t', 2048), content = 'x' }, "'title' is longer than 1 KiB" },
      { 'a 17 MB content', { title = 'huge', content = string.rep('c', 17 * 2 ^ 20) }, 'content' },
      { '100 tags', { title = 'tags', tags = vim.fn['repeat']({ 'x' }, 100) }, 'tags' },
      { 'a 300-byte tag', { title = 'tag', tags = { string.rep('g', 300) } }, 'tag' },
      { 'an empty title', { title = '   ' }, 'title' },
    }
    for _, c in ipairs(cases) do
      local err = create('prompt', c[2])
      T.ok(err and err:find(c[3], 1, true), c[1] .. ' refused naming ' .. c[3] .. ': ' .. tostring(err))
    end
    T.eq(nil, (create('prompt', { title = 'after limits' })), 'a normal create after them')
  end)
end
