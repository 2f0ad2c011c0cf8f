-- Peer of benches/programs/dict_workload.soma: 2,000 keys put in a scrambled
-- order, all looked up, the even ones removed, membership checked, then size
-- and the sum of the remaining values validated.
--
-- The dict is the SOMA stdlib's (python/soma/stdlib.soma, dict.*): a
-- persistent left-leaning red-black tree, not a Lua table used as a hash map.
-- A tree is nil (empty) or a node table {key, value, red, left, right} never
-- modified once built; put and remove copy the nodes on one root-to-leaf path
-- and share the rest. Every function below is the stdlib word of the same
-- name (dict.#fix = fix, dict.#mrl = move_red_left, ...) with the same
-- steps: the classic left-leaning insert and the top-down delete. The SOMA
-- Store cells (N, d, i, k, sum, found) are Lua globals.
local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local harness = dofile(here .. "harness.lua")

local function node(key, value, red, left, right)
  return { key = key, value = value, red = red, left = left, right = right }
end

-- dict.#red: nil counts as black.
local function is_red(h)
  return h ~= nil and h.red
end

-- dict.#lred: is h's left child red? (nil-safe)
local function left_is_red(h)
  return h ~= nil and is_red(h.left)
end

local function paint(h, red)
  return node(h.key, h.value, red, h.left, h.right)
end

local function with_left(h, left)
  return node(h.key, h.value, h.red, left, h.right)
end

local function with_right(h, right)
  return node(h.key, h.value, h.red, h.left, right)
end

-- dict.#rotl: lift the red right child x above h; x takes h's colour.
local function rotate_left(h)
  local x = h.right
  local down = node(h.key, h.value, true, h.left, x.left)
  return node(x.key, x.value, h.red, down, x.right)
end

local function rotate_right(h)
  local x = h.left
  local down = node(h.key, h.value, true, x.right, h.right)
  return node(x.key, x.value, h.red, x.left, down)
end

-- dict.#flip: invert the colours of h and of both children (both nodes).
local function flip(h)
  local left, right = h.left, h.right
  return node(h.key, h.value, not h.red, paint(left, not left.red), paint(right, not right.red))
end

-- dict.#fix: restore the left-leaning shape on the way up.
local function fix(h)
  if is_red(h.right) and not is_red(h.left) then
    h = rotate_left(h)
  end
  if is_red(h.left) and left_is_red(h.left) then
    h = rotate_right(h)
  end
  if is_red(h.left) and is_red(h.right) then
    h = flip(h)
  end
  return h
end

-- dict.#find: the node holding key, or nil.
local function find(key, h)
  while h ~= nil do
    if key < h.key then
      h = h.left
    elseif h.key < key then
      h = h.right
    else
      return h
    end
  end
  return nil
end

local function has(key, d)
  return find(key, d) ~= nil
end

local function get(key, d)
  local hit = find(key, d)
  if hit == nil then
    error("dict.get: key not found")
  end
  return hit.value
end

-- dict.#ins
local function insert(key, value, h)
  if h == nil then
    return node(key, value, true, nil, nil)
  end
  if key < h.key then
    h = with_left(h, insert(key, value, h.left))
  elseif h.key < key then
    h = with_right(h, insert(key, value, h.right))
  else
    h = node(key, value, h.red, h.left, h.right)
  end
  return fix(h)
end

local function put(key, value, d)
  return paint(insert(key, value, d), false)
end

local function move_red_left(h)
  h = flip(h)
  if left_is_red(h.right) then
    h = flip(rotate_left(with_right(h, rotate_right(h.right))))
  end
  return h
end

local function move_red_right(h)
  h = flip(h)
  if left_is_red(h.left) then
    h = flip(rotate_right(h))
  end
  return h
end

local function delete_min(h)
  if h.left == nil then
    return nil
  end
  if not is_red(h.left) and not left_is_red(h.left) then
    h = move_red_left(h)
  end
  return fix(with_left(h, delete_min(h.left)))
end

-- dict.#del: key is present below h; h or its left child is red.
local function delete(key, h)
  if key < h.key then
    if not is_red(h.left) and not left_is_red(h.left) then
      h = move_red_left(h)
    end
    return fix(with_left(h, delete(key, h.left)))
  end
  if is_red(h.left) then
    h = rotate_right(h)
  end
  local differ = key < h.key or h.key < key
  if not differ and h.right == nil then
    return nil
  end
  if not is_red(h.right) and not left_is_red(h.right) then
    h = move_red_right(h)
  end
  if key < h.key or h.key < key then
    h = with_right(h, delete(key, h.right))
  else
    local least = h.right
    while least.left ~= nil do
      least = least.left
    end
    h = node(least.key, least.value, h.red, h.left, delete_min(h.right))
  end
  return fix(h)
end

-- dict.remove: a dict that lacks key comes back as it is.
local function remove(key, d)
  if not has(key, d) then
    return d
  end
  if not is_red(d.left) and not is_red(d.right) then
    d = paint(d, true)
  end
  d = delete(key, d)
  if d == nil then
    return nil
  end
  return paint(d, false)
end

-- dict.#walk: folder(key, value, acc) over every entry, ascending (or
-- descending when down is true); recursion as deep as the tree.
local function walk(folder, acc, h, down)
  if h == nil then
    return acc
  end
  local near, far = h.left, h.right
  if down then
    near, far = h.right, h.left
  end
  acc = walk(folder, acc, near, down)
  acc = folder(h.key, h.value, acc)
  return walk(folder, acc, far, down)
end

local function size(d)
  return walk(function(_, _, n) return n + 1 end, 0, d, false)
end

-- The values as a cons list {value, next}, in ascending key order.
local function values(d)
  return walk(function(_, value, list) return { value = value, next = list } end, nil, d, true)
end

local function fold(folder, acc, list)
  while list ~= nil do
    acc = folder(acc, list.value)
    list = list.next
  end
  return acc
end

local function run()
  N = 2000
  d = nil
  i = 0
  repeat
    k = i * 7919 % N
    d = put(k, k * 2, d)
    i = i + 1
  until not (i < N)
  i = 0
  sum = 0
  repeat
    sum = get(i, d) + sum
    i = i + 1
  until not (i < N)
  if sum ~= 3998000 then
    error("dict lookups gave the wrong sum")
  end
  i = 0
  repeat
    d = remove(i, d)
    i = i + 2
  until not (i < N)
  i = 0
  found = 0
  repeat
    if has(i, d) then
      found = found + 1
    end
    i = i + 1
  until not (i < N)
  if found ~= 1000 then
    error("dict has-check found the wrong keys")
  end
  if size(d) ~= 1000 then
    error("dict has the wrong size")
  end
  if fold(function(acc, x) return acc + x end, 0, values(d)) ~= 2000000 then
    error("dict values have the wrong sum")
  end
  return "dict ok"
end

harness.main(run)
