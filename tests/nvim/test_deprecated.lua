-- The plugin calls nothing Neovim 0.10 and 0.11 deprecate, so that
-- :checkhealth vim.deprecated lists nothing of ours, while it still runs on
-- 0.7. The Lua functions Neovim deprecates report themselves when called
-- (harness.lua fails any test file that reaches one); the API functions do
-- not, so the source is read for them here. A line may name an old function
-- as the fallback of its newer replacement ('vim.uv or vim.loop').
local root = vim.env.SHELF_ROOT

-- Old name (a Lua pattern) -> its replacement, which the line may name too.
local old = {
  ['nvim_buf_get_option'] = 'vim.bo[buf]',
  ['nvim_buf_set_option'] = 'vim.bo[buf]',
  ['nvim_win_get_option'] = 'vim.wo[win]',
  ['nvim_win_set_option'] = 'vim.wo[win]',
  ['nvim_get_option%f[^%w_]'] = 'vim.o',
  ['nvim_set_option%f[^%w_]'] = 'vim.o',
  ['nvim_get_option_info%f[^%w_]'] = 'nvim_get_option_info2',
  ['nvim_buf_add_highlight'] = 'nvim_buf_set_extmark',
  ['nvim_exec%f[^%w_]'] = 'nvim_exec2',
  ['nvim_command_output'] = 'nvim_exec2',
  ['nvim_err_write'] = 'vim.notify',
  ['nvim_out_write'] = 'vim.notify',
  ['nvim_call_atomic'] = 'separate calls',
  ['nvim_get_hl_by_name'] = 'nvim_get_hl',
  ['nvim_get_hl_by_id'] = 'nvim_get_hl',
  ['vim%.loop%f[^%w_]'] = 'vim.uv',
  ['vim%.tbl_islist'] = 'vim.islist',
  ['vim%.tbl_flatten'] = 'vim.iter',
  ['vim%.tbl_add_reverse_lookup'] = 'a loop',
  ['vim%.region%f[^%w_]'] = 'getregionpos()',
  ['vim%.highlight%f[^%w_]'] = 'vim.hl',
  ['get_active_clients'] = 'vim.lsp.get_clients',
}

-- The new name as it appears in code, for a fallback on the same line.
local fallback = {
  ['vim%.loop%f[^%w_]'] = 'vim.uv or vim.loop',
  ['vim%.tbl_islist'] = 'vim.islist or vim.tbl_islist',
  ['vim%.highlight%f[^%w_]'] = 'vim.hl or vim.highlight',
  ['nvim_exec%f[^%w_]'] = 'nvim_exec2',
}

local function sources()
  local files = vim.fn.globpath(root, 'lua/shelf/**/*.lua', false, true)
  vim.list_extend(files, vim.fn.globpath(root, 'plugin/*.lua', false, true))
  return files
end

-- Each line of `files` that calls an old function without its replacement.
local function scan(files)
  local found = {}
  for _, f in ipairs(files) do
    for n, line in ipairs(vim.fn.readfile(f)) do
      local code = line:gsub('%-%-.*$', '')
      for pat, new in pairs(old) do
        if code:find(pat) and not (fallback[pat] and code:find(fallback[pat], 1, true)) then
          table.insert(found, string.format('%s:%d: %s (use %s)', f:sub(#root + 2), n, vim.trim(line), new))
        end
      end
    end
  end
  table.sort(found)
  return found
end

T.test('lua/ and plugin/ call no API function Neovim 0.10 or 0.11 deprecates', function()
  local files = sources()
  T.ok(#files > 10, 'the sources were found: ' .. #files)
  T.eq({}, scan(files), 'deprecated calls')
end)

T.test('the scan finds an old call, and accepts it as the fallback of its replacement', function()
  local f = T.path('old.lua')
  vim.fn.writefile({
    "vim.api.nvim_buf_set_option(buf, 'modified', false)",
    'local t = vim.loop.new_timer()',
    'local t2 = (vim.uv or vim.loop).new_timer()',
    "vim.api.nvim_get_option_value('columns', {})",
    '-- vim.tbl_islist in a comment',
  }, f)
  local saved = root
  root = vim.fn.fnamemodify(f, ':h')
  local found = scan({ f })
  root = saved
  T.eq(2, #found, vim.inspect(found))
  T.ok(found[1]:find(':1: ', 1, true) and found[2]:find(':2: ', 1, true), vim.inspect(found))
end)
