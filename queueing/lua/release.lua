-- ARGV: prefix, call_id, now_ms, aht_alpha, force, unreached
-- The caller's channel is gone (force "0": a waiting callback is kept, {'kept', '', 0}),
-- or the call is cancelled outright (force "1"). Otherwise, by the call's state:
--   waiting   -> abandoned (leaves the queue)            returns {'abandoned', '', waited_ms}
--   offered   -> abandoned, the ringing seat is free now returns {'abandoned', seat, waited_ms}
--   connected -> completed, the seat enters wrap-up      returns {'completed', seat, talk_ms}
--   connected callback whose citizen was not reached (unreached "1": the seat's channel
--             dialled, nobody answered) -> no call was handled: the seat is available at
--             once, no wrap-up, no AHT; event 'unreached'  returns {'unreached', seat, ms}
--   unknown   -> {'unknown', '', 0}
local id, now, alpha = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ck = P .. 'call:' .. id
local c = redis.call('HMGET', ck, 'state', 'seat', 'skill', 'enq', 'answered_at', 'kind')
if not c[1] then return {'unknown', '', 0} end
local state, ext, skill = c[1], c[2], c[3]
if state == 'waiting' and c[6] == 'callback' and ARGV[5] ~= '1' then return {'kept', '', 0} end
local result
if state == 'waiting' then
  queue_rem(id, skill)
  local waited = now - tonumber(c[4])
  event(now, 'abandon', id, '', skill, tostring(waited))
  result = {'abandoned', '', waited}
elseif state == 'offered' then
  local sk = P .. 'seat:' .. ext
  if redis.call('HGET', sk, 'state') == 'ringing' and redis.call('HGET', sk, 'call') == id then
    -- no call taken: the seat keeps its place among idle seats (idle unchanged)
    set_state(ext, 'available', now, '', {'call', '', 'ring_until', 0})
  end
  local waited = now - tonumber(c[4])
  event(now, 'abandon', id, ext, skill, tostring(waited))
  result = {'abandoned', ext, waited}
elseif ARGV[6] == '1' and c[6] == 'callback' then
  local sk = P .. 'seat:' .. ext
  local rang = now - tonumber(c[5] or now)
  if redis.call('HGET', sk, 'state') == 'on_call' and redis.call('HGET', sk, 'call') == id then
    end_call(ext, skill, now, 0)
  end
  event(now, 'unreached', id, ext, skill, tostring(rang))
  result = {'unreached', ext, rang}
else
  result = {'completed', ext, complete_part(id, ext, skill, c[5], now, alpha)}
end
redis.call('DEL', ck)
redis.call('SREM', P .. 'callbacks', id)
return result
