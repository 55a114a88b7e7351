-- shelf.nvim: only cheap work here. The :Shelf command and <Plug> maps load
-- their modules when used; shelfd starts on first use, not at startup.
if vim.g.loaded_shelf then
  return
end
vim.g.loaded_shelf = true

if vim.fn.has('nvim-0.7') ~= 1 then
  vim.notify('shelf.nvim needs Neovim 0.7 or newer', vim.log.levels.ERROR)
  return
end

vim.api.nvim_create_user_command('Shelf', function(opts)
  require('shelf.commands').run(opts)
end, {
  nargs = '*',
  range = true,
  desc = 'shelf.nvim: knowledge tab, pickers, insert, status',
  complete = function(arglead, cmdline)
    return require('shelf.commands').complete(arglead, cmdline)
  end,
})
