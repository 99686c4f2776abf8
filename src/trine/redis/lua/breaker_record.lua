-- Record how an admitted call ended.
--
-- ARGV[14]  'success', 'failure', or 'release' (ignored or cancelled: counts nothing)
-- ARGV[15]  '1' if the call was slow
-- ARGV[16]  the epoch it was admitted in (a call from an older epoch counts nothing)
-- ARGV[17]  its probe id, or ''
--
-- Reply: {state, epoch, retry_after µs}
refresh()
flush()
local outcome = ARGV[14]
local slow = ARGV[15] == '1'
local admitted_in = tonumber(ARGV[16])
local probe = ARGV[17]
if probe ~= '' then
  -- A probe's slot is freed whatever happened; its outcome counts only if it
  -- still held the slot in the same half-open spell.
  local held = redis.call('ZREM', PROBES, probe) == 1
  if held and admitted_in == epoch and state == 'half_open' and outcome ~= 'release' then
    if outcome == 'failure' or slow then
      transition('open')
    elseif redis.call('HINCRBY', STATE, 'probe_successes', 1) >= success_threshold then
      transition('closed')
    end
  end
elseif outcome ~= 'release' and admitted_in == epoch and state == 'closed' then
  record_closed(outcome == 'failure', slow)
end
return {state, epoch, fmt(retry_after())}
