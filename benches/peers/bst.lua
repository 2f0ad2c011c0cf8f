-- Peer of benches/programs/bst.soma: a persistent (path-copying) unbalanced
-- binary search tree. The keys 0..7999 go in, in the order of the
-- full-period sequence x' = (3821x + 7919) mod 8000 from x = 4321, each with
-- the value 3*key; the tree after the first 4,000 inserts must still hold
-- 4,000 entries at the end; then 16,000 lookups (i*7919 mod 16000) find
-- 8,000 keys whose values sum to 95988000.
--
-- A tree is nil or a node table {key, value, left, right} never modified
-- once built; insert copies the nodes on its path and shares the rest.
-- insert, get and size recurse, as the SOMA blocks do. The SOMA Store cells
-- (tree, half, x, i, limit, found, sum, v) are Lua globals.
local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local harness = dofile(here .. "harness.lua")

local function node(key, value, left, right)
  return { key = key, value = value, left = left, right = right }
end

local function insert(key, value, t)
  if t == nil then
    return node(key, value, nil, nil)
  end
  if key < t.key then
    return node(t.key, t.value, insert(key, value, t.left), t.right)
  end
  if t.key < key then
    return node(t.key, t.value, t.left, insert(key, value, t.right))
  end
  return node(key, value, t.left, t.right)
end

-- The value of key, or nil when it is absent.
local function get(key, t)
  if t == nil then
    return nil
  end
  if key < t.key then
    return get(key, t.left)
  end
  if t.key < key then
    return get(key, t.right)
  end
  return t.value
end

local function size(t)
  if t == nil then
    return 0
  end
  return size(t.left) + size(t.right) + 1
end

-- The SOMA program's insert.round loop.
local function insert_until_limit()
  repeat
    tree = insert(x, x * 3, tree)
    x = (x * 3821 + 7919) % 8000
    i = i + 1
  until not (i < limit)
end

local function run()
  tree = nil
  x = 4321
  i = 0
  limit = 4000
  insert_until_limit()
  half = tree
  limit = 8000
  insert_until_limit()
  i = 0
  found = 0
  sum = 0
  repeat
    v = get(i * 7919 % 16000, tree)
    if v ~= nil then
      found = found + 1
      sum = v + sum
    end
    i = i + 1
  until not (i < 16000)
  if found ~= 8000 then
    error("bst lookups found the wrong keys")
  end
  if sum ~= 95988000 then
    error("bst lookups gave the wrong sum")
  end
  if size(tree) ~= 8000 then
    error("bst has the wrong size")
  end
  if size(half) ~= 4000 then
    error("bst: an older tree changed")
  end
  return "bst ok"
end

harness.main(run)
