-- `make run`: point shelf.nvim at build/demo/library.db and, if that library
-- is empty, fill it with a few folders, prompts and context blocks through the
-- public API, so there is something to look at.
local dir = vim.g.shelf_demo_dir
local shelf = require('shelf')
shelf.setup({
  sqlite = { path = dir .. '/library.db' },
  helper = { log = dir .. '/shelfd.log' },
})

local function open_tab()
  local ok, err = pcall(shelf.open)
  if not ok then
    vim.notify('shelf demo: ' .. tostring(err), vim.log.levels.WARN)
  end
end

-- Create items in order; each step runs when the previous one is confirmed.
local function seed(steps, i, ids)
  i, ids = i or 1, ids or {}
  local step = steps[i]
  if not step then
    vim.notify('shelf demo: created a demo library in ' .. dir, vim.log.levels.INFO)
    open_tab()
    return
  end
  local fields = step.fields(ids)
  shelf.create(step.kind, fields, function(err, item)
    if err then
      vim.notify('shelf demo: ' .. err, vim.log.levels.ERROR)
      return
    end
    ids[step.name or item.id] = item.id
    seed(steps, i + 1, ids)
  end)
end

local steps = {
  { name = 'writing', kind = 'project', fields = function() return { type = 'prompts', name = 'Writing', icon = '✍' } end },
  { name = 'code', kind = 'project', fields = function() return { type = 'prompts', name = 'Code' } end },
  { name = 'review', kind = 'project', fields = function(ids) return { type = 'prompts', name = 'Review', parent_id = ids.code } end },
  { name = 'docs', kind = 'project', fields = function() return { type = 'datasets', name = 'Project docs', icon = '📚' } end },
  { kind = 'prompt', fields = function(ids) return {
    title = 'Summarise for a busy reader', project_id = ids.writing, tags = { 'summary' },
    description = 'Three bullet points and a one-line verdict',
    content = 'Summarise the text below for a busy {{audience}}.\nThree bullet points, then a one-line verdict.\n\n{{text}}' } end },
  { kind = 'prompt', fields = function(ids) return {
    title = 'Review this diff', project_id = ids.review, tags = { 'code', 'review' },
    content = 'Review the following {{language}} diff. Point out bugs first, style last.' } end },
  { kind = 'prompt', fields = function(ids) return {
    title = 'Explain like a senior engineer', project_id = ids.code, tags = { 'code' },
    content = 'Explain what this code does, why it is written this way, and what could break.' } end },
  { kind = 'prompt', fields = function() return {
    title = 'Commit message', tags = { 'git' },
    content = 'Write a commit message: a short summary line, a blank line, then why.' } end },
  { kind = 'block', fields = function(ids) return {
    title = 'Architecture overview', project_id = ids.docs, tags = { 'architecture' },
    content = 'shelfd (C) owns the state; Lua renders. One libuv loop; msgpack-RPC over stdio.' } end },
  { kind = 'block', fields = function(ids) return {
    title = 'Style guide', project_id = ids.docs, tags = { 'style' },
    content = 'Names say what. Comments say why. One module per concern.' } end },
  { kind = 'block', fields = function() return {
    title = 'Scratch notes', temporary = true,
    content = 'A temporary block: it lives only in this session.' } end },
}

local group = vim.api.nvim_create_augroup('shelf_demo', { clear = true })
vim.api.nvim_create_autocmd('User', {
  group = group,
  pattern = 'ShelfStatus',
  desc = 'shelf demo: seed an empty library once loaded',
  callback = function()
    local st = shelf.status()
    if not st.ready then
      return
    end
    vim.api.nvim_del_augroup_by_id(group)
    local counts = st.counts or {}
    if (counts.prompt or 0) + (counts.block or 0) + (counts.project or 0) == 0 then
      seed(steps)
    else
      open_tab()
    end
  end,
})
local _, err = require('shelf.client').start()
if err then
  vim.notify('shelf demo: ' .. err, vim.log.levels.ERROR)
end
