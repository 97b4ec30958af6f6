-- ARGV: prefix, op, call_id, ext, skill, now_ms, data
-- A call in Asterisk's own Queue() (the fallback), learnt from AMI: logged as the ACD's own
-- events (same stream, same statistics) and kept in the seat's state, so the ACD never
-- offers a seat the native queue connected.
--   join     -> event enter (data: caller)
--   abandon  -> event abandon (data: wait ms)
--   connect  -> event connect (data: wait ms); an available or wrapping-up seat is on_call
--               with this call. Returns the seat's state before.
--   complete -> event complete (data: talk ms); the seat on this call enters its wrap-up.
-- A seat logged out or paused keeps its state: the ACD offers it nothing anyway.
local err = require_registered()
if err then return err end
local op, id, ext, skill = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, data = tonumber(ARGV[6]), ARGV[7]
local sk = P .. 'seat:' .. ext
local old = ''
if ext ~= '' then old = redis.call('HGET', sk, 'state') or '' end
if op == 'join' then
  event(now, 'enter', id, '', skill, data)
elseif op == 'abandon' then
  event(now, 'abandon', id, '', skill, data)
elseif op == 'connect' then
  if old == 'available' or old == 'wrap_up' then
    set_state(ext, 'on_call', now, '', {'call', id, 'ring_until', 0, 'wrap_until', 0})
  end
  event(now, 'connect', id, ext, skill, data)
elseif op == 'complete' then
  if old == 'on_call' and redis.call('HGET', sk, 'call') == id then end_call(ext, skill, now) end
  event(now, 'complete', id, ext, skill, data)
else
  return redis.error_reply('HOTLINE_NATIVE_OP ' .. op)
end
return old
