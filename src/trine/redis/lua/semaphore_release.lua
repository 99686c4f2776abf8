-- Give a slot back, if the lease is still the holder's.
--
-- KEYS[1], KEYS[2]  as in semaphore_acquire.lua
-- ARGV[1]           the slot
-- ARGV[2]           the lease's fencing token
--
-- Reply: 1 if released, 0 if the lease was already gone (nothing is touched:
-- the slot may be another holder's now).
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
