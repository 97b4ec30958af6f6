-- ARGV: prefix, call_id, now_ms, reason
-- RONA or a seat unregistered mid-ring: the call goes back to its place at the head of its
-- queue, the seat is paused with `reason`. With call_id "" every ring past its deadline is
-- handled (reason "no-answer"). Returns a flat list {call_id, seat, call_id, seat, ...}.
local err = require_registered()
if err then return err end
local id, now, reason = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local out = {}
if id ~= '' then
  local ext = requeue(id, now, reason)
  if ext then out = {id, ext} end
  return out
end
for _, ext in ipairs(redis.call('ZRANGEBYSCORE', P .. 'ringing', '-inf', now)) do
  local call = redis.call('HGET', P .. 'seat:' .. ext, 'call')
  local done = call and call ~= '' and requeue(call, now, reason)
  if done then
    out[#out + 1] = call
    out[#out + 1] = ext
  else
    redis.call('ZREM', P .. 'ringing', ext)
  end
end
return out
