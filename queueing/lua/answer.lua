-- ARGV: prefix, call_id, now_ms. The seat ringing for this call answered: both are connected.
-- Returns {seat, waited_ms}.
local err = require_registered()
if err then return err end
local id, now = ARGV[2], tonumber(ARGV[3])
local ck = P .. 'call:' .. id
local c = redis.call('HMGET', ck, 'state', 'seat', 'skill', 'enq')
if c[1] ~= 'offered' then return redis.error_reply('HOTLINE_CALL_STATE ' .. (c[1] or 'gone')) end
local ext = c[2]
local sk = P .. 'seat:' .. ext
if redis.call('HGET', sk, 'state') ~= 'ringing' or redis.call('HGET', sk, 'call') ~= id then
  return redis.error_reply('HOTLINE_SEAT_STATE ' .. (redis.call('HGET', sk, 'state') or 'gone'))
end
set_state(ext, 'on_call', now, '', {'ring_until', 0})
redis.call('HSET', ck, 'state', 'connected', 'answered_at', now)
local waited = now - tonumber(c[4])
event(now, 'connect', id, ext, c[3], tostring(waited))
return {ext, waited}
