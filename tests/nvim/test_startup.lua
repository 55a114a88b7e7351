-- What the plugin costs before first use: nothing loaded, nothing started.
T.test('plugin/shelf.lua defines :Shelf and loads nothing else', function()
  T.eq(2, vim.fn.exists(':Shelf'), ':Shelf exists')
  for name in pairs(package.loaded) do
    T.ok(not name:match('^shelf'), 'module loaded at startup: ' .. name)
  end
end)

T.test(':Shelf completes subcommands', function()
  local got = vim.fn.getcompletion('Shelf re', 'cmdline')
  T.ok(vim.tbl_contains(got, 'refresh') and vim.tbl_contains(got, 'restart'), vim.inspect(got))
  T.eq(false, require('shelf.client').running(), 'completion starts no helper')
end)

T.test('an unknown subcommand says what exists', function()
  local msgs = {}
  local orig = vim.notify
  vim.notify = function(m) table.insert(msgs, m) end
  vim.cmd('Shelf frobnicate')
  vim.notify = orig
  T.ok(msgs[1] and msgs[1]:find("unknown subcommand 'frobnicate'", 1, true), vim.inspect(msgs))
end)

T.test(':Shelf status says where it looked when shelfd is missing', function()
  require('shelf').setup({ helper = { cmd = '/nonexistent/shelfd' } })
  local text = table.concat(require('shelf.status').lines(), '\n')
  local _, err = require('shelf.client').start()
  T.ok(text:find('NOT FOUND; looked at: /nonexistent/shelfd', 1, true), text)
  T.ok(err and err:find('run `make`', 1, true), tostring(err))
end)
