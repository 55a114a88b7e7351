-- The tab's `/` filter on the real shelfd: typed into Neovim's input(), the
-- tab follows each key with a search answered later (never a blocking
-- request), each key cancels the search before it, only the last query's
-- hits are shown, and edits made by another program are searched again.
local U = dofile(vim.env.SHELF_ROOT .. '/tests/nvim/ui_support.lua')
local client = require('shelf.client')
local tabstate = require('shelf.tab')._state()

-- Record what the plugin asks shelfd: blocking requests, searches, cancels.
local asked
local function spy()
  asked = { requests = {}, searches = {}, cancels = 0 }
  local chan = client.start()
  local rpcrequest, search_async, cancel = vim.rpcrequest, client.search_async, client.cancel
  vim.rpcrequest = function(c, method, ...)
    if c == chan then
      table.insert(asked.requests, method)
    end
    return rpcrequest(c, method, ...)
  end
  client.search_async = function(q, ...)
    table.insert(asked.searches, q)
    return search_async(q, ...)
  end
  client.cancel = function(...)
    asked.cancels = asked.cancels + 1
    return cancel(...)
  end
  return function()
    vim.rpcrequest, client.search_async, client.cancel = rpcrequest, search_async, cancel
  end
end

local function start()
  U.clean()
  local db = T.fresh()
  local L = {}
  L.kube = U.create('prompt', { title = 'Kubernetes notes', content = 'use kubectl apply' })
  L.helm = U.create('prompt', { title = 'Helm', content = 'helm install' })
  L.other = U.create('block', { title = 'Other', content = 'nothing', tags = { 'KubeCon' } })
  vim.cmd('Shelf')
  local buf = U.tab()
  T.wait(function() return U.find('Other', buf) ~= nil end, 'the tab drawn')
  return L, buf, db
end

local function shown(buf, title)
  return U.find(title, buf) ~= nil
end

T.test('typing a filter never blocks, each key cancels the search before it, the last one shows', function()
  local _, buf = start()
  local unspy = spy()
  local ok, err = pcall(function()
    U.answer('kubectl')
    U.keys('/')
    T.wait(function()
      return not tabstate.searching and shown(buf, 'Kubernetes notes') and not shown(buf, 'Helm')
    end, 'the hits of kubectl')
    T.ok(not shown(buf, 'Other'), 'the block does not match kubectl')
    T.eq({}, asked.requests, 'no blocking request')
    if vim.fn.exists('##CmdlineChanged') == 1 then
      T.eq({ 'k', 'ku', 'kub', 'kube', 'kubec', 'kubect', 'kubectl' }, asked.searches, 'a search per key')
      T.eq(#asked.searches - 1, asked.cancels, 'each newer one cancelled the one before')
    else
      T.eq({ 'kubectl' }, asked.searches, 'one search, for the answer')
    end
    T.ok(table.concat(U.lines(buf), '\n'):find('/ kubectl  (1 item;', 1, true), 'the count: '
      .. table.concat(U.lines(buf), '\n'))
    -- A short query: titles and tags only (doc/shelf.txt).
    U.answer('ku')
    U.keys('/')
    T.wait(function()
      return not tabstate.searching and shown(buf, 'Kubernetes notes') and shown(buf, 'Other')
    end, 'the hits of ku')
    T.eq({}, asked.requests, 'still no blocking request')
    -- More hits than the tab asks for: it says so.
    local filter = require('shelf.tab.filter')
    local limit = filter.limit
    filter.limit = 1
    require('shelf.tab').set_filter('notes')
    T.wait(function() return not tabstate.searching end, 'the answer')
    filter.limit = limit
    T.ok(table.concat(U.lines(buf), '\n'):find('/ notes  (1+ items', 1, true), 'capped: '
      .. table.concat(U.lines(buf), '\n'))
  end)
  unspy()
  if not ok then
    error(err, 0)
  end
  U.answer('')
  U.keys('/')
end)

T.test('an older answer is never shown, and edits made elsewhere are searched again', function()
  local L, buf, db = start()
  local unspy = spy()
  local ok, err = pcall(function()
    -- Two filters at once: the first one's answer must not show.
    local tab = require('shelf.tab')
    tab.set_filter('helm install')
    tab.set_filter('kubectl')
    T.wait(function() return not tabstate.searching end, 'the answer')
    vim.wait(200, function() return false end)
    T.ok(shown(buf, 'Kubernetes notes') and not shown(buf, 'Helm'), 'only the last filter\'s hits: '
      .. table.concat(U.lines(buf), '\n'))
    -- Another program writes: the filter is searched again.
    vim.fn.system({ 'sqlite3', db, "UPDATE prompts SET content = 'now with kubectl' WHERE id = '"
      .. L.helm.id .. "'; DELETE FROM prompts WHERE id = '" .. L.kube.id .. "';" })
    T.eq(0, vim.v.shell_error, 'sqlite3')
    T.wait(function()
      return not tabstate.searching and shown(buf, 'Helm') and not shown(buf, 'Kubernetes notes')
    end, 'the edit elsewhere searched again')
    T.eq({}, asked.requests, 'no blocking request')
  end)
  unspy()
  if not ok then
    error(err, 0)
  end
  require('shelf.tab').set_filter(nil)
end)
