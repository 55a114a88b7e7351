-- The telescope extension of shelf.nvim: `:Telescope shelf` (prompts and
-- context blocks), `:Telescope shelf prompts|blocks|projects`, or
-- require('telescope').extensions.shelf.prompts(opts). Telescope loads it on
-- first use; it opens telescope whatever picker.ui says.
local function picker_of(kinds, title)
  return function(opts)
    local ui = require('shelf.ui')
    if not ui.ensure_helper() then
      return
    end
    if not require('shelf.picker.native').open(kinds, nil, title, { ui = 'telescope', telescope = opts }) then
      -- Nothing to show: vim.ui.select's path says so.
      require('shelf.picker').choose(kinds, title, function() end)
    end
  end
end

return require('telescope').register_extension({
  exports = {
    shelf = picker_of({ 'prompt', 'block' }, 'Prompts and context blocks'),
    prompts = picker_of({ 'prompt' }, 'Prompts'),
    blocks = picker_of({ 'block' }, 'Context blocks'),
    projects = picker_of({ 'project' }, 'Folders'),
  },
})
