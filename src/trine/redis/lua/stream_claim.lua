-- Reclaim entries idle too long in any consumer's pending list (a consumer that
-- died holding them), dead-lettering those delivered more than max_deliveries times.
--
-- KEYS[1]  the stream
-- KEYS[2]  the dead-letter stream
-- ARGV[1]  group   ARGV[2] this consumer   ARGV[3] min idle time in ms
-- ARGV[4]  the cursor to scan from ('0-0' to start)   ARGV[5] count
-- ARGV[6]  max_deliveries
--
-- Reply: {next cursor, entries dead-lettered, {id, deliveries, {field, value, ...}}, ...}
-- Every entry returned is now this consumer's, its delivery count raised by one.
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  'COUNT', ARGV[5])
local max_deliveries = tonumber(ARGV[6])
local reply = {claimed[1], 0}
for _, entry in ipairs(claimed[2]) do
  local id, fields = entry[1], entry[2]
  local deliveries = tonumber(redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1][4])
  if deliveries > max_deliveries then
    redis.call('XADD', KEYS[2], '*', unpack(dead_letter_fields(fields, KEYS[1], id,
      deliveries - 1, 'delivered ' .. (deliveries - 1) .. ' times, more would exceed max_deliveries')))
    redis.call('XACK', KEYS[1], ARGV[1], id)
    reply[2] = reply[2] + 1
  else
    reply[#reply + 1] = {id, deliveries, fields}
  end
end
return reply
