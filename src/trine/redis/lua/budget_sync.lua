-- Add one process's requests and retries to the shared window; return the window's totals.
--
-- KEYS[1]  hash: per bucket slot i, id<i> (which bucket of time it holds),
--          r<i> (requests) and w<i> (retries withdrawn)
-- ARGV[1]  a bucket's width in microseconds (window / buckets)
-- ARGV[2]  buckets
-- ARGV[3]  requests to add, ARGV[4] retries to add
--
-- Reply: {requests, retries} over the live buckets: the current one and the
-- buckets - 1 before it, as trine.RetryBudget counts them.
local now = now_us()
local width = tonumber(ARGV[1])
local buckets = tonumber(ARGV[2])
local bucket = math.floor(now / width)
local i = bucket % buckets
local id = string.format('%.0f', bucket)
if redis.call('HGET', KEYS[1], 'id' .. i) ~= id then
  redis.call('HSET', KEYS[1], 'id' .. i, id, 'r' .. i, 0, 'w' .. i, 0)
end
if tonumber(ARGV[3]) > 0 then
  redis.call('HINCRBY', KEYS[1], 'r' .. i, ARGV[3])
end
if tonumber(ARGV[4]) > 0 then
  redis.call('HINCRBY', KEYS[1], 'w' .. i, ARGV[4])
end
redis.call('PEXPIREAT', KEYS[1], expiry_ms(now + width * buckets))
local requests, retries = 0, 0
for j = 0, buckets - 1 do
  local values = redis.call('HMGET', KEYS[1], 'id' .. j, 'r' .. j, 'w' .. j)
  local held = tonumber(values[1])
  if held and held > bucket - buckets then
    requests = requests + (tonumber(values[2]) or 0)
    retries = retries + (tonumber(values[3]) or 0)
  end
end
return {requests, retries}
