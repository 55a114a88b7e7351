-- shelf.picker.telescope: a shelf picker (picker/native.lua's spec) in
-- telescope.nvim: its fuzzy sorter on the shown line (folder, title, tags),
-- the item in the preview, <CR> and the action keys in both modes.
local M = {}

-- A finder like telescope's own for a table (finders.new_table), except that
-- each line is made when telescope first asks for it, in telescope's
-- coroutine, which gives way every 1000: the picker opens at once and the
-- editor goes on while 100k lines are made, instead of making them all first.
local function lazy_finder(s)
  local scheduler = require('plenary.async').util.scheduler
  local made = {}
  local function make(i)
    local e = made[i]
    if not e then
      local line = s.display(s.entries[i])
      e = { value = s.entries[i], display = line, ordinal = line, index = i }
      made[i] = e
    end
    return e
  end
  return setmetatable({ results = made, close = function() end }, {
    __call = function(_, _, process_result, process_complete)
      for i = 1, #s.entries do
        if process_result(make(i)) then
          break
        end
        if i % 1000 == 0 then
          scheduler()
        end
      end
      process_complete()
    end,
  })
end

--- Open the picker described by `s` (see picker/native.lua).
function M.open(s)
  local pickers = require('telescope.pickers')
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
    finder = lazy_finder(s),
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
