-- Take a slot of a semaphore as a lease, in the order the waiters came.
--
-- KEYS[1]  hash: slot number -> the fencing token of the lease holding it
-- KEYS[2]  sorted set: slot number, scored by its lease's expiry (server µs)
-- KEYS[3]  sorted set: waiter id, scored by its ticket (order of arrival)
-- KEYS[4]  sorted set: waiter id, scored by the time it must poll again by
-- KEYS[5]  hash: `fence` (the last token handed out) and `ticket`
-- ARGV[1]  limit: how many slots
-- ARGV[2]  the lease's time to live, in microseconds
-- ARGV[3]  the waiter's id
-- ARGV[4]  how long the waiter keeps its place without polling, in microseconds
-- ARGV[5]  "1" to queue if no slot is free now, "0" to only try
--
-- Reply: {1, slot, token, now} when the lease is granted, or
-- {0, holders, place} when it is not (place: waiters ahead of this one).
local now = now_us()
local limit = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local waiter = ARGV[3]
local patience = tonumber(ARGV[4])
local queue = ARGV[5] == '1'

-- A lease that was not renewed in time has lost its slot.
local stamp = fmt(now)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', stamp)
if #expired > 0 then
  redis.call('HDEL', KEYS[1], unpack(expired))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', stamp)
end
-- A waiter that stopped polling (its process died) has lost its place.
local left = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', stamp)
if #left > 0 then
  redis.call('ZREM', KEYS[3], unpack(left))
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', stamp)
end

local holders = redis.call('HLEN', KEYS[1])
local place = redis.call('ZRANK', KEYS[3], waiter)
if not place then
  place = redis.call('ZCARD', KEYS[3])  -- a newcomer stands behind every waiter
end
if holders + place < limit then
  -- Enough free slots for every waiter ahead and this one: take the lowest free.
  local slot = 0
  while redis.call('HEXISTS', KEYS[1], slot) == 1 do
    slot = slot + 1
  end
  -- The fencing token grows with every lease, and starts above the server's
  -- clock, so it keeps growing even if the server lost the last one.
  local last = tonumber(redis.call('HGET', KEYS[5], 'fence')) or 0
  local token = string.format('%.0f', math.max(last + 1, now))
  redis.call('HSET', KEYS[5], 'fence', token)
  redis.call('HSET', KEYS[1], slot, token)
  redis.call('ZADD', KEYS[2], fmt(now + ttl), slot)
  redis.call('ZREM', KEYS[3], waiter)
  redis.call('ZREM', KEYS[4], waiter)
  return {1, slot, token, stamp}
end
if queue then
  if redis.call('ZSCORE', KEYS[3], waiter) == false then
    redis.call('ZADD', KEYS[3], redis.call('HINCRBY', KEYS[5], 'ticket', 1), waiter)
  end
  redis.call('ZADD', KEYS[4], fmt(now + patience), waiter)
end
return {0, holders, place}
