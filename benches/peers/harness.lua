-- Timing harness shared by the Lua peers (run by LuaJIT).
--
-- A peer file returns a function `run` that does the whole algorithm once and
-- returns its "... ok" line, or raises an error when the result is wrong.
-- `harness.main(run)` calls it `repeat` times (first command-line argument,
-- default 1) in this one process, timing each call alone with a monotonic
-- clock, then prints the line and the best time in seconds on the last line:
-- the protocol benches/compare.py reads. Start-up is outside the timed region;
-- LuaJIT's traces stay warm from one repeat to the next (steady state).

local harness = {}

-- A monotonic wall clock in seconds: clock_gettime through LuaJIT's FFI; plain
-- Lua has only os.clock (processor time), which is the fallback.
local function monotonic_clock()
  local ok, ffi = pcall(require, "ffi")
  if not ok then
    return os.clock
  end
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } soma_peer_timespec;
    int clock_gettime(int clock_id, soma_peer_timespec *tp);
  ]]
  local CLOCK_MONOTONIC = 1
  local ts = ffi.new("soma_peer_timespec")
  return function()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
  end
end

function harness.main(run)
  local now = monotonic_clock()
  local repeat_count = tonumber(arg and arg[1]) or 1
  local best, line
  for _ = 1, repeat_count do
    local start = now()
    line = run()
    local elapsed = now() - start
    if best == nil or elapsed < best then
      best = elapsed
    end
  end
  if type(line) ~= "string" or not line:match(" ok$") then
    error("the peer returned " .. tostring(line) .. ", not an ok line")
  end
  print(line)
  print(string.format("%.9f", best))
end

return harness
