-- A waiter gives up its place in the queue (it timed out or was cancelled).
--
-- KEYS[3], KEYS[4]  as in semaphore_acquire.lua (all five keys are passed)
-- ARGV[1]           the waiter's id
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
