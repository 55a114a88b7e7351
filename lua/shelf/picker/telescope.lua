-- shelf.picker.telescope: a shelf picker (picker/native.lua's spec) in
-- telescope.nvim: its fuzzy sorter on the shown line (folder, title, tags),
-- the item in the preview, <CR> and the action keys in both modes.
local M = {}

--- Open the picker described by `s` (see picker/native.lua).
function M.open(s)
  local pickers = require('telescope.pickers')
  local finders = require('telescope.finders')
  local previewers = require('telescope.previewers')
  local conf = require('telescope.config').values
  local actions = require('telescope.actions')
  local action_state = require('telescope.actions.state')
  local opts = s.telescope or {}

  -- Close the picker and do `name` with the entry under the cursor.
  local function act(name)
    return function(prompt_bufnr)
      local selected = action_state.get_selected_entry()
      actions.close(prompt_bufnr)
      if selected then
        s.run(name, selected.value)
      end
    end
  end

  pickers.new(opts, {
    prompt_title = s.title,
    finder = finders.new_table({
      results = s.entries,
      entry_maker = function(e)
        local line = s.display(e)
        return { value = e, display = line, ordinal = line }
      end,
    }),
    sorter = conf.generic_sorter(opts),
    previewer = previewers.new_buffer_previewer({
      title = 'Preview',
      define_preview = function(self, entry)
        s.preview(self.state.bufnr, entry.value)
      end,
    }),
    attach_mappings = function(_, map)
      actions.select_default:replace(act(s.default))
      -- The split and tab keys open files in telescope; here they open the
      -- item as edit.open says.
      actions.select_horizontal:replace(act('open'))
      actions.select_vertical:replace(act('open'))
      actions.select_tab:replace(act('open'))
      for name, key in pairs(s.keys) do
        map({ 'i', 'n' }, key, act(name), { desc = 'shelf: ' .. name })
      end
      return true
    end,
  }):find()
end

return M
