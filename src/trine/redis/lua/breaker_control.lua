-- Read the breaker, or force it open, or reset it.
--
-- ARGV[14]  'read', 'force_open' or 'reset'
--
-- Reply: {state, epoch, retry_after µs, window calls, window failures, window slow
-- calls, consecutive failures, probes in flight, probe successes, opened_at µs or ''}
local op = ARGV[14]
if op == 'force_open' then
  if state ~= 'forced_open' then
    transition('forced_open')
  end
elseif op == 'reset' then
  transition('closed')
else
  refresh()
  flush()
end
local calls, failures, slow = 0, 0, 0
if state == 'closed' then
  calls, failures, slow = totals()
end
local probes = 0
if state == 'half_open' then
  redis.call('ZREMRANGEBYSCORE', PROBES, '-inf', fmt(now))
  probes = redis.call('ZCARD', PROBES)
end
local more = redis.call('HMGET', STATE, 'consecutive', 'probe_successes')
return {state, epoch, fmt(retry_after()), calls, failures, slow,
  tonumber(more[1]) or 0, probes, tonumber(more[2]) or 0, opened_at and fmt(opened_at) or ''}
