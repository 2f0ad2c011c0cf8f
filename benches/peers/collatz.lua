-- Peer of benches/programs/collatz.soma: total Collatz steps of every start
-- value 1..3000 (= 215063). The SOMA program keeps its state in Store cells
-- (c.n, c.steps, total, i); here they are Lua globals, and the step count
-- of one start value is a function call, as >collatz is a block call.
local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local harness = dofile(here .. "harness.lua")

function collatz(n)
  c_n = n
  c_steps = 0
  if c_n > 1 then
    repeat
      if c_n % 2 == 0 then
        c_n = c_n / 2 -- exact: c_n is even
      else
        c_n = c_n * 3 + 1
      end
      c_steps = c_steps + 1
    until not (c_n > 1)
  end
  return c_steps
end

local function run()
  total = 0
  i = 1
  repeat
    total = collatz(i) + total
    i = i + 1
  until not (i <= 3000)
  if total ~= 215063 then
    error("collatz gave the wrong total")
  end
  return "collatz ok"
end

harness.main(run)
