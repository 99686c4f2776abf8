-- Shared by every trine script (prepended when the script is loaded).
--
-- Time is the server's: microseconds since the epoch from TIME, exact in a
-- Lua number (a double holds integers up to 2^53, about 285 years of them).
-- Numbers go back to the client as strings: Redis turns a Lua number in a
-- reply into an integer, truncating it, and stores one with only 14 digits.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- A number as a string that reads back (tonumber, float()) to the same double.
local function fmt(x)
  return string.format('%.17g', x)
end

-- The first whole millisecond after `us` microseconds (since the epoch), for
-- PEXPIREAT: Redis keeps a key while its millisecond clock is at or before
-- that one, so the key lives through `us`, and goes 1 to 2 ms after it.
local function expiry_ms(us)
  return math.floor(us / 1000) + 1
end
