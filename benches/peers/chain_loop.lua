-- Peer of benches/programs/chain_loop.soma: a counting loop of 1,000,000
-- rounds on a Store cell. SOMA's Store is global state, so the cell n is a
-- Lua global here (read and written in the globals table every round).
local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local harness = dofile(here .. "harness.lua")

local function run()
  n = 0
  repeat
    n = n + 1
  until not (n < 1000000)
  if n ~= 1000000 then
    error("loop gave the wrong count")
  end
  return "loop ok"
end

harness.main(run)
