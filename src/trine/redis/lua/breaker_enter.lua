-- Admit one call, or refuse it: the state, its transitions and the half-open
-- admission in one step, so every process sees the same breaker.
--
-- Reply: {admitted (1 or 0), state, epoch, probe id ('' unless a probe), retry_after µs}
refresh()
flush()
if state == 'closed' then
  return {1, state, epoch, '', '0'}
end
if state == 'half_open' then
  -- Probes that never reported (their process died) give their slot back.
  redis.call('ZREMRANGEBYSCORE', PROBES, '-inf', fmt(now))
  if redis.call('ZCARD', PROBES) < half_open_max_calls then
    local probe = tostring(redis.call('HINCRBY', STATE, 'probe_seq', 1))
    redis.call('ZADD', PROBES, fmt(now + probe_timeout), probe)
    return {1, state, epoch, probe, '0'}
  end
  return {0, state, epoch, '', '0'}
end
return {0, state, epoch, '', fmt(retry_after())}
