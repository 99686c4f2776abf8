-- Extend a lease, if it is still the holder's.
--
-- KEYS[1], KEYS[2]  as in semaphore_acquire.lua
-- ARGV[1]           the slot
-- ARGV[2]           the lease's fencing token
-- ARGV[3]           the time to live from now, in microseconds
--
-- Reply: 1 if renewed; 0 if the lease is gone: taken by another holder, swept,
-- or expired (an expired lease is not revived, even if nobody took its slot).
local now = now_us()
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
local expiry = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]))
if expiry == nil or expiry <= now then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[2], fmt(now + tonumber(ARGV[3])), ARGV[1])
return 1
