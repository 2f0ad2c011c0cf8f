-- Peer of benches/programs/list_map_fold.soma: build 0..N-1 with cons,
-- double every element with map, sum with fold: N(N-1) for N = 20,000.
--
-- Lists are linked cons cells as in the SOMA stdlib: nil (empty) or a table
-- {value = x, next = rest} never modified once built, so lists share tails.
-- map and fold are the stdlib's algorithms: map reverses the list, then
-- conses transform(x) for each element of the reversed list (from the last
-- element back to the first, so the result keeps the order); fold is a left
-- fold from the head. The SOMA Store cells (N, xs, i, doubled, total) are
-- Lua globals.
local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local harness = dofile(here .. "harness.lua")

local function cons(value, rest)
  return { value = value, next = rest }
end

local function reverse(list)
  local acc = nil
  while list ~= nil do
    acc = { value = list.value, next = acc }
    list = list.next
  end
  return acc
end

local function map(list, transform)
  local todo = reverse(list)
  local acc = nil
  while todo ~= nil do
    acc = { value = transform(todo.value), next = acc }
    todo = todo.next
  end
  return acc
end

local function fold(folder, acc, list)
  while list ~= nil do
    acc = folder(acc, list.value)
    list = list.next
  end
  return acc
end

local function run()
  N = 20000
  xs = nil
  i = 0
  repeat
    xs = cons(i, xs)
    i = i + 1
  until not (i < N)
  doubled = map(xs, function(x) return x * 2 end)
  total = fold(function(acc, x) return acc + x end, 0, doubled)
  if total ~= 399980000 then
    error("list map/fold gave the wrong sum")
  end
  return "lists ok"
end

harness.main(run)
