-- Shared by the circuit breaker's scripts: the state machine of trine.CircuitBreaker,
-- kept in Redis and timed by the server's clock.
--
-- KEYS[1]  hash: state, epoch, opened_at, consecutive, probe_successes, probe_seq,
--          and for a count window pos, w_calls, w_failures, w_slow
-- KEYS[2]  sorted set: the probes in flight, scored by when their slot frees
--          if they never report (their process died): probe_timeout after admission
-- KEYS[3]  the window: a string of one byte per call (count window: s, f, S, F for
--          success, failure, slow success, slow failure), or a hash of 20 buckets
--          (time window: id<i>, c<i>, f<i>, s<i>)
-- ARGV[1..10]  the settings, which every process must give alike:
--   1 reset_timeout (µs)   2 half_open_max_calls   3 success_threshold
--   4 failure_threshold    5 failure_rate (negative: consecutive failures decide)
--   6 minimum_calls        7 window (calls, or µs)  8 'count' or 'time'
--   9 slow_call_rate (negative: slow calls not tracked)   10 probe_timeout (µs)
-- ARGV[11..13] successes a process counted without a round trip (its cached
--   mode), slow ones among them, and the epoch they were admitted in
local STATE, PROBES, WINDOW = KEYS[1], KEYS[2], KEYS[3]
local reset_timeout = tonumber(ARGV[1])
local half_open_max_calls = tonumber(ARGV[2])
local success_threshold = tonumber(ARGV[3])
local failure_threshold = tonumber(ARGV[4])
local failure_rate = tonumber(ARGV[5])
local minimum_calls = tonumber(ARGV[6])
local window = tonumber(ARGV[7])
local counted = ARGV[8] == 'count'
local slow_call_rate = tonumber(ARGV[9])
local probe_timeout = tonumber(ARGV[10])
local BUCKETS = 20

local now = now_us()
local stored = redis.call('HMGET', STATE, 'state', 'epoch', 'opened_at')
local state = stored[1] or 'closed'
local epoch = tonumber(stored[2]) or 0
local opened_at = tonumber(stored[3])

-- Enter `new`: a new epoch and a clean slate (outcomes of calls admitted
-- before it no longer count).
local function transition(new)
  state = new
  epoch = epoch + 1
  redis.call('DEL', PROBES, WINDOW)
  redis.call('HSET', STATE, 'state', new, 'epoch', epoch, 'consecutive', 0,
    'probe_successes', 0, 'pos', 0, 'w_calls', 0, 'w_failures', 0, 'w_slow', 0)
  if new == 'open' or new == 'forced_open' then
    opened_at = now
    redis.call('HSET', STATE, 'opened_at', fmt(now))
  elseif new == 'closed' then
    opened_at = nil
    redis.call('HDEL', STATE, 'opened_at')
  end
end

-- The move from open to half-open, read lazily from the clock.
local function refresh()
  if state == 'open' and now >= opened_at + reset_timeout then
    transition('half_open')
  end
end

-- Microseconds until a probe would be admitted; negative while forced open.
local function retry_after()
  if state == 'open' then
    return math.max(0, opened_at + reset_timeout - now)
  elseif state == 'forced_open' then
    return -1
  end
  return 0
end

-- The time window's bucket now, and the sums over its live buckets.
local function bucket_now()
  return math.floor(now / (window / BUCKETS))
end

local function time_totals(bucket)
  local fields = {}
  for i = 0, BUCKETS - 1 do
    fields[#fields + 1] = 'id' .. i
    fields[#fields + 1] = 'c' .. i
    fields[#fields + 1] = 'f' .. i
    fields[#fields + 1] = 's' .. i
  end
  local values = redis.call('HMGET', WINDOW, unpack(fields))
  local calls, failures, slow = 0, 0, 0
  for i = 0, BUCKETS - 1 do
    local id = tonumber(values[4 * i + 1])
    if id and id > bucket - BUCKETS then
      calls = calls + (tonumber(values[4 * i + 2]) or 0)
      failures = failures + (tonumber(values[4 * i + 3]) or 0)
      slow = slow + (tonumber(values[4 * i + 4]) or 0)
    end
  end
  return calls, failures, slow
end

-- The window's sums now: calls, failures, slow calls.
local function totals()
  if counted then
    local sums = redis.call('HMGET', STATE, 'w_calls', 'w_failures', 'w_slow')
    return tonumber(sums[1]) or 0, tonumber(sums[2]) or 0, tonumber(sums[3]) or 0
  end
  return time_totals(bucket_now())
end

-- Add one outcome to the window; return the window's sums after it.
local function add_outcome(failed, slow)
  local code = failed and (slow and 'F' or 'f') or (slow and 'S' or 's')
  if counted then
    local calls, failures, slows = totals()
    local pos = tonumber(redis.call('HGET', STATE, 'pos')) or 0
    local old = redis.call('GETRANGE', WINDOW, pos, pos)
    if old ~= '' and old ~= '\0' then  -- the outcome this one pushes out
      calls = calls - 1
      if old == 'f' or old == 'F' then failures = failures - 1 end
      if old == 'S' or old == 'F' then slows = slows - 1 end
    end
    redis.call('SETRANGE', WINDOW, pos, code)
    calls = calls + 1
    if failed then failures = failures + 1 end
    if slow then slows = slows + 1 end
    redis.call('HSET', STATE, 'pos', (pos + 1) % window, 'w_calls', calls,
      'w_failures', failures, 'w_slow', slows)
    return calls, failures, slows
  end
  local bucket = bucket_now()
  local i = bucket % BUCKETS
  local id = string.format('%.0f', bucket)
  if redis.call('HGET', WINDOW, 'id' .. i) ~= id then
    redis.call('HSET', WINDOW, 'id' .. i, id, 'c' .. i, 0, 'f' .. i, 0, 's' .. i, 0)
  end
  redis.call('HINCRBY', WINDOW, 'c' .. i, 1)
  if failed then redis.call('HINCRBY', WINDOW, 'f' .. i, 1) end
  if slow then redis.call('HINCRBY', WINDOW, 's' .. i, 1) end
  redis.call('PEXPIREAT', WINDOW, expiry_ms(now + window))
  return time_totals(bucket)
end

-- A call admitted while closed finished (failed or not, slow or not): count it,
-- and open the breaker if the thresholds say so.
local function record_closed(failed, slow)
  local calls, failures, slows = add_outcome(failed, slow)
  local consecutive = 0
  if failed then
    consecutive = redis.call('HINCRBY', STATE, 'consecutive', 1)
  else
    redis.call('HSET', STATE, 'consecutive', 0)
  end
  local trip
  if failure_rate < 0 then
    trip = consecutive >= failure_threshold
  else
    -- The quotient, as the local breaker compares it (0.3 * 10 > 3.0 in doubles).
    trip = calls >= minimum_calls and failures / calls >= failure_rate
  end
  if not trip and slow_call_rate >= 0 then
    trip = calls >= minimum_calls and slows / calls >= slow_call_rate
  end
  if trip then
    transition('open')
  end
end

-- Count the successes a process counted without a round trip, if their epoch is still on.
local function flush()
  local successes = tonumber(ARGV[11])
  local slow = tonumber(ARGV[12])
  if successes > 0 and tonumber(ARGV[13]) == epoch then
    for i = 1, successes do
      if state ~= 'closed' then
        break
      end
      record_closed(false, i <= slow)
    end
  end
end
