-- Peer of benches/programs/string_build.soma: one string grows by 16,384
-- appends of "ab"; another doubles "ab" 14 times; they must be equal (32,768
-- characters). The SOMA Store cells (piece, s, i, t, j) are Lua globals.
local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local harness = dofile(here .. "harness.lua")

local function run()
  piece = "ab"
  s = ""
  i = 0
  repeat
    s = s .. piece
    i = i + 1
  until not (i < 16384)
  t = piece
  j = 0
  repeat
    t = t .. t
    j = j + 1
  until not (j < 14)
  if s ~= t then
    error("strings differ")
  end
  return "strings ok"
end

harness.main(run)
