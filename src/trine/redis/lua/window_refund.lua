-- Give back a reservation whose waiter was cancelled before its time.
--
-- KEYS[1], KEYS[2]  as in window_acquire.lua
-- ARGV[1]           the member window_acquire returned
--
-- Any reservation may go: taking an admission out of the log only lowers the
-- count of every window (the later reservations stay where they are).
-- Reply: 1 if it was taken back, 0 if it was already gone.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
-- Without the hash, the next acquire works `used` out from the log: a hash made
-- here would hold a negative cost.
if redis.call('HEXISTS', KEYS[2], 'used') == 1 then
  local cost = tonumber(string.match(ARGV[1], ':(%d+)$'))
  redis.call('HINCRBY', KEYS[2], 'used', -cost)
end
return 1
