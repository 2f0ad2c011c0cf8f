-- Peer of benches/programs/fib.soma: doubly recursive Fibonacci, fib(24) =
-- 46368 (about 150,000 calls). fib is a global, looked up on every call as
-- the SOMA program reads the Store cell fib; n is a local, as SOMA's
-- Register cell _.n.
local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local harness = dofile(here .. "harness.lua")

function fib(n)
  if n < 2 then
    return n
  end
  return fib(n - 1) + fib(n - 2)
end

local function run()
  local result = fib(24)
  if result ~= 46368 then
    error("fib gave the wrong answer")
  end
  return "fib ok"
end

harness.main(run)
