-- shelf.commands: the :Shelf subcommands and their completion. Each entry
-- is { run = function(args, opts), complete = function(arglead, args),
-- desc = '...' } where args are the words after the subcommand.
local M = {}

local function shelf()
  return require('shelf')
end

M.subcommands = {
  status = {
    desc = 'show backend, database, counts, loading state and the last error',
    run = function()
      require('shelf.helper').start()
      require('shelf.status').show()
    end,
  },
  refresh = {
    desc = 'reload everything from the backend',
    run = function()
      shelf().refresh(function(err)
        if err then
          vim.notify('shelf: ' .. err, vim.log.levels.ERROR)
        else
          vim.notify('shelf: refreshed', vim.log.levels.INFO)
        end
      end)
    end,
  },
  restart = {
    desc = 'restart shelfd',
    run = function()
      local _, err = require('shelf.helper').restart()
      if err then
        vim.notify('shelf: ' .. err, vim.log.levels.ERROR)
      end
    end,
  },
  -- ---- UI subcommands (tab, new, insert, pickers, save, ...) ----
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
  sub.run(args, opts)
end

return M
