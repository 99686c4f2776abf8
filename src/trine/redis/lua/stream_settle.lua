-- Settle entries a consumer handled: write each to a stream and acknowledge it,
-- in one step, if its delivery is still the current one.
--
-- KEYS[1]  the stream the entries came from
-- KEYS[2]  where they go: the sink's stream or the dead-letter stream (unused for 'ack')
-- ARGV[1]  group   ARGV[2] consumer
-- ARGV[3]  'write' (XADD the given fields), 'dead' (XADD them with the reason), or 'ack'
-- ARGV[4]  MAXLEN for KEYS[2] ('' for none; trimmed with ~, in whole nodes)
-- ARGV[5]  the reason, for 'dead'
-- ARGV[6...]  per entry: id, deliveries, the number of fields, then field, value, ...
--
-- Reply: per entry, the id written to KEYS[2] ('' for 'ack') if it was settled
-- here, or 0 if its delivery is no longer current (nothing was written).
local group, consumer, mode, maxlen, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local settled = {}
local i = 6
while i <= #ARGV do
  local id = ARGV[i]
  local deliveries = tonumber(ARGV[i + 1])
  local count = tonumber(ARGV[i + 2])
  local fields = {}
  for j = 1, 2 * count do
    fields[j] = ARGV[i + 2 + j]
  end
  i = i + 3 + 2 * count
  if owns(KEYS[1], group, consumer, id, deliveries) then
    local written = ''
    if mode ~= 'ack' then
      if mode == 'dead' then
        fields = dead_letter_fields(fields, KEYS[1], id, deliveries, reason)
      end
      local command = {KEYS[2]}
      if maxlen ~= '' then
        command[#command + 1] = 'MAXLEN'
        command[#command + 1] = '~'
        command[#command + 1] = maxlen
      end
      command[#command + 1] = '*'
      for _, value in ipairs(fields) do
        command[#command + 1] = value
      end
      written = redis.call('XADD', unpack(command))
    end
    redis.call('XACK', KEYS[1], group, id)
    settled[#settled + 1] = written
  else
    settled[#settled + 1] = 0
  end
end
return settled
