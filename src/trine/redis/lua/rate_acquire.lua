-- GCRA with reservations: admit `cost` now, or reserve the earliest time it may go.
--
-- KEYS[1]  the key's theoretical arrival time (TAT): microseconds of server time
-- ARGV[1]  the emission interval: microseconds per unit of cost (per / rate)
-- ARGV[2]  burst: the most cost admitted at one instant (>= cost)
-- ARGV[3]  cost
-- ARGV[4]  the longest wait to accept, in microseconds; negative: any
--
-- Reply: {1, wait, now, tat} when admitted (the caller goes after `wait`
-- microseconds; `tat` is what it must show to give the slot back), or
-- {0, wait, now} when the wait would be longer than ARGV[4] (nothing taken).
--
-- The admission time is the earliest `at >= now` with
-- tat - (burst - cost) * interval <= at, exactly the local RateLimiter's rule;
-- the TAT then moves on by cost * interval. Since every admission, immediate or
-- reserved, is placed this way, the cost placed in any window [a, a + t] of
-- server time is at most burst + t / interval: across every client.
local now = now_us()
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])

-- A missing key is a full bucket: its TAT has passed (the key expires then).
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local at = tat - (burst - cost) * interval
if at < now then
  at = now
end
local wait = at - now
if max_wait >= 0 and wait > max_wait then
  return {0, fmt(wait), fmt(now)}
end
local new_tat = tat + cost * interval
local stored = fmt(new_tat)
-- Gone in the first millisecond after its TAT (a missing key is a full bucket).
redis.call('SET', KEYS[1], stored)
redis.call('PEXPIREAT', KEYS[1], expiry_ms(new_tat))
return {1, fmt(wait), fmt(now), stored}
