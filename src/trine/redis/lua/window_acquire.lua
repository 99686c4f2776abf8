-- A sliding log: admit `cost` now, or reserve the earliest time the window has room.
--
-- KEYS[1]  a sorted set: one member per admission, "<seq>:<cost>", scored by its
--          time (microseconds of server time; a reservation's time may be ahead)
-- KEYS[2]  a hash: `used` (the cost of every member) and `seq` (member names)
-- ARGV[1]  the window in microseconds
-- ARGV[2]  limit: the most cost in any window
-- ARGV[3]  cost (an integer, <= limit)
-- ARGV[4]  the longest wait to accept, in microseconds; negative: any
--
-- Reply: {1, wait, now, member} when admitted (after `wait` microseconds;
-- `member` gives the reservation back), or {0, wait, now} when the wait would
-- be longer than ARGV[4] (nothing taken).
--
-- An admission at time s counts in every window [a, a + window) holding s.
-- Each new admission is placed at or after every earlier one, at the first time
-- s at which the window (s - window, s] has room for it; since nothing lies after
-- s, every window holding s then holds at most `limit`: across every client.
local now = now_us()
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])

local function cost_of(member)
  return tonumber(string.match(member, ':(%d+)$'))
end

-- `used` is the cost of every member of the log, and `seq` numbers them. One
-- key can go without the other (expired a millisecond apart, evicted,
-- deleted). Without the hash, both are worked out again from the log, as
-- counting from 0 would admit past the limit and reuse member names; without
-- the log, nothing is in any window (below).
local used = tonumber(redis.call('HGET', KEYS[2], 'used'))
local last_seq = nil  -- the log's highest member number, when the hash is gone
if used == nil then
  used = 0
  last_seq = 0
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    used = used + cost_of(member)
    last_seq = math.max(last_seq, tonumber(string.match(member, '^(%d+):')))
  end
end

-- Admissions at or before now - window have left every window to come.
local horizon = fmt(now - window)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', horizon)
if #gone > 0 then
  for _, member in ipairs(gone) do
    used = used - cost_of(member)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', horizon)
end

local at = now
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if not last[2] then
  used = 0  -- no log left: nothing in any window, whatever the hash said
elseif tonumber(last[2]) > at then
  at = tonumber(last[2])
end
if used + cost > limit then
  -- Walk the log from its oldest admission: each one that leaves the window
  -- ending at `at` makes room; if that is still not enough, the next candidate
  -- is the moment the oldest one left leaves too.
  local log = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  local in_window = used
  local i = 1
  while true do
    while i <= #log and tonumber(log[i + 1]) <= at - window do
      in_window = in_window - cost_of(log[i])
      i = i + 2
    end
    if in_window + cost <= limit then
      break
    end
    at = tonumber(log[i + 1]) + window
  end
end

local wait = at - now
if max_wait >= 0 and wait > max_wait then
  return {0, fmt(wait), fmt(now)}
end
if last_seq then
  redis.call('HSET', KEYS[2], 'seq', last_seq)
end
local member = redis.call('HINCRBY', KEYS[2], 'seq', 1) .. ':' .. cost
redis.call('ZADD', KEYS[1], fmt(at), member)
redis.call('HSET', KEYS[2], 'used', used + cost)
-- Both keys live as long as the newest admission stays in a window, and are
-- given the same absolute expiry (two relative PEXPIREs each count from the
-- clock at their own call, which can tick between them).
local expire_at = expiry_ms(at + window)
redis.call('PEXPIREAT', KEYS[1], expire_at)
redis.call('PEXPIREAT', KEYS[2], expire_at)
return {1, fmt(wait), fmt(now), member}
