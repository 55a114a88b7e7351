-- shelf.commands: the :Shelf subcommands and their completion. Each entry
-- is { run = function(args, opts), complete = function(arglead, args),
-- desc = '...', range = true when it reads a range } where args are the words
-- after the subcommand.
local M = {}

local function shelf()
  return require('shelf')
end

-- :Shelf prompts|blocks|projects [insert|open|delete|ask]
-- A callback that tells the user how a request ended: its error, or `done`.
local function report(done)
  return function(err)
    if err then
      vim.notify('shelf: ' .. err, vim.log.levels.ERROR)
    else
      vim.notify('shelf: ' .. done, vim.log.levels.INFO)
    end
  end
end

local function picker_command(kind, what)
  return {
    desc = 'pick one of ' .. what .. ': [insert|open|delete|ask]',
    run = function(args)
      require('shelf.picker').pick(kind, args[1])
    end,
    complete = function(arglead, args)
      return require('shelf.picker').complete_actions(arglead, args)
    end,
  }
end

M.subcommands = {
  status = {
    desc = 'show backend, database, counts, loading state and the last error',
    run = function()
      require('shelf.client').start()
      require('shelf.status').show()
    end,
  },
  refresh = {
    desc = 'reload everything from the backend',
    run = function()
      shelf().refresh(report('refreshed'))
    end,
  },
  restart = {
    desc = 'restart shelfd',
    run = function()
      local _, err = require('shelf.client').restart()
      if err then
        vim.notify('shelf: ' .. err, vim.log.levels.ERROR)
      end
    end,
  },
  login = {
    desc = 'sign in to Supabase: :Shelf login [google|github|...|email|password|paste|cancel]',
    run = function(args)
      require('shelf.login').command(args)
    end,
    complete = function(arglead, args)
      return require('shelf.login').complete(arglead, args)
    end,
  },
  logout = {
    desc = 'sign out of Supabase and delete the saved session',
    run = function()
      shelf().logout(report('signed out'))
    end,
  },
  -- ---- UI subcommands (tab, new, insert, pickers, save, ...) ----
  tab = {
    desc = 'open or close the knowledge tab',
    run = function()
      require('shelf.tab').toggle()
    end,
  },
  new = {
    desc = 'new prompt, block, temporary block or folder: :Shelf new prompt|block|temp|folder',
    run = function(args)
      local what = args[1]
      local function go(w)
        if w == 'folder' then
          require('shelf.client').start()
          require('shelf.tab').new_folder(nil, nil)
        elseif w == 'temp' then
          require('shelf.edit').new('block', { temporary = true })
        elseif w == 'prompt' or w == 'block' then
          require('shelf.edit').new(w)
        else
          vim.notify(string.format("shelf: cannot make a new '%s'; use :Shelf new prompt, block, temp or folder",
            tostring(w)), vim.log.levels.ERROR)
        end
      end
      if what then
        return go(what)
      end
      vim.ui.select({ 'prompt', 'block', 'temp', 'folder' }, { prompt = 'New:' }, function(w)
        if w then
          go(w)
        end
      end)
    end,
    complete = function(arglead, args)
      if #args > 1 then
        return {}
      end
      return vim.tbl_filter(function(w)
        return w:sub(1, #arglead) == arglead
      end, { 'prompt', 'block', 'temp', 'folder' })
    end,
  },
  insert = {
    desc = 'insert a prompt or context block at the cursor: :Shelf insert [title]',
    run = function(args)
      require('shelf.insert').command(args)
    end,
    complete = function(arglead, args)
      return require('shelf.picker').complete_titles(arglead, args, { 'prompt', 'block' })
    end,
  },
  edit = {
    desc = 'open a prompt or context block in an edit buffer: :Shelf edit [title]',
    run = function(args)
      if not require('shelf.ui').ensure_helper() then
        return
      end
      local picker = require('shelf.picker')
      local function go(e)
        require('shelf.edit').open(e.kind, e.id)
      end
      if #args == 0 then
        return picker.choose({ 'prompt', 'block' }, 'Edit:', go)
      end
      picker.find(table.concat(args, ' '), { 'prompt', 'block' }, 'Edit:', go)
    end,
    complete = function(arglead, args)
      return require('shelf.picker').complete_titles(arglead, args, { 'prompt', 'block' })
    end,
  },
  save = {
    desc = "store the selected lines as a new item: :'<,'>Shelf save prompt|block|temp",
    range = true,
    run = function(args, opts)
      require('shelf.insert').save_selection(args[1], opts)
    end,
    complete = function(arglead, args)
      if #args > 1 then
        return {}
      end
      return vim.tbl_filter(function(w)
        return w:sub(1, #arglead) == arglead
      end, { 'prompt', 'block', 'temp' })
    end,
  },
  build = {
    desc = "the prompt builder: :Shelf build [add|remove|insert|yank|save|clear], :'<,'>Shelf build add",
    range = true,
    run = function(args, opts)
      require('shelf.builder.command').run(args, opts)
    end,
    complete = function(arglead, args)
      return require('shelf.builder.command').complete(arglead, args)
    end,
  },
  prompts = picker_command('prompt', 'the saved prompts'),
  blocks = picker_command('block', 'the context blocks'),
  projects = picker_command('project', 'the folders'),
  -- ---- end of UI ----
}

local function names()
  local out = vim.tbl_keys(M.subcommands)
  table.sort(out)
  return out
end

--- Completion for :Shelf.
function M.complete(arglead, cmdline)
  local words = vim.split(cmdline, '%s+', { trimempty = false })
  -- words[1] is the command itself (maybe with a range).
  if #words <= 2 then
    return vim.tbl_filter(function(n)
      return n:sub(1, #arglead) == arglead
    end, names())
  end
  local sub = M.subcommands[words[2]]
  if sub and sub.complete then
    return sub.complete(arglead, vim.list_slice(words, 3))
  end
  return {}
end

--- Run :Shelf with the user command's opts.
function M.run(opts)
  local args = vim.deepcopy(opts.fargs)
  local name = table.remove(args, 1) or 'tab'
  local sub = M.subcommands[name]
  if not sub then
    vim.notify(string.format("shelf: unknown subcommand '%s'; try one of: %s", name,
      table.concat(names(), ', ')), vim.log.levels.ERROR)
    return
  end
  if (opts.range or 0) > 0 and not sub.range and opts.fargs[1] then
    -- (:'<,'> comes by itself after a visual selection: it would go unheeded.)
    vim.notify(string.format(":Shelf %s takes no range: nothing was done; :'<,'>Shelf save stores a "
      .. 'selection, and `c` removes it before an insert', name), vim.log.levels.ERROR)
    return
  end
  sub.run(args, opts)
end

return M
