-- Give back a reservation whose waiter was cancelled, if it is still the last one.
--
-- KEYS[1]  the key's TAT (see rate_acquire.lua)
-- ARGV[1]  the TAT the reservation left, exactly as rate_acquire returned it
-- ARGV[2]  its cost
-- ARGV[3]  the emission interval in microseconds
--
-- Reply: 1 if the reservation was taken back, 0 if someone reserved after it
-- (its slot then stays unused: moving the TAT back under a later reservation
-- would let two admissions share one slot).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local now = now_us()
local tat = tonumber(ARGV[1]) - tonumber(ARGV[2]) * tonumber(ARGV[3])
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], fmt(tat))
  redis.call('PEXPIREAT', KEYS[1], expiry_ms(tat))
end
return 1
