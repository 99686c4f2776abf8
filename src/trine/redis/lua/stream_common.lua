-- Shared by the stream scripts.

-- Whether delivery number `deliveries` of entry `id` to `consumer` is still the
-- entry's current delivery: the entry is pending, owned by that consumer, and
-- has not been delivered again since (to another consumer, or to this one by a
-- reclaim). The delivery count is the fencing token of an entry's processing:
-- a late result from a delivery that was reclaimed is refused.
local function owns(stream, group, consumer, id, deliveries)
  local pending = redis.call('XPENDING', stream, group, id, id, 1)[1]
  return pending ~= nil and pending[2] == consumer and tonumber(pending[4]) == deliveries
end

-- `fields` (a flat list of field, value) followed by what says why an entry was
-- dead-lettered, for XADD.
local function dead_letter_fields(fields, stream, id, deliveries, reason)
  local out = {}
  for _, value in ipairs(fields) do
    out[#out + 1] = value
  end
  out[#out + 1] = 'dead_letter.stream'
  out[#out + 1] = stream
  out[#out + 1] = 'dead_letter.id'
  out[#out + 1] = id
  out[#out + 1] = 'dead_letter.deliveries'
  out[#out + 1] = tostring(deliveries)
  out[#out + 1] = 'dead_letter.reason'
  out[#out + 1] = reason
  return out
end
