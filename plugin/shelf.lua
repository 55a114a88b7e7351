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

-- shelf:// buffers load and save through shelfd, also when restored from a
-- session before any shelf module has loaded.
local group = vim.api.nvim_create_augroup('shelf_buffers', { clear = true })
vim.api.nvim_create_autocmd('BufReadCmd', {
  group = group,
  pattern = 'shelf://*',
  desc = 'shelf: load a shelf:// buffer',
  callback = function(a)
    require('shelf.edit').read_cmd(a)
  end,
})
vim.api.nvim_create_autocmd('BufWriteCmd', {
  group = group,
  pattern = 'shelf://*',
  desc = 'shelf: save a shelf:// buffer',
  callback = function(a)
    require('shelf.edit').write_cmd(a)
  end,
})

vim.keymap.set('n', '<Plug>(shelf-open)', function()
  require('shelf.tab').open()
end, { desc = 'shelf: open the knowledge tab' })
vim.keymap.set('n', '<Plug>(shelf-build)', function()
  require('shelf.builder').open()
end, { desc = 'shelf: open the prompt builder' })
vim.keymap.set({ 'n', 'i' }, '<Plug>(shelf-insert)', function()
  require('shelf.insert').command({})
end, { desc = 'shelf: pick a prompt or block and insert it at the cursor' })
