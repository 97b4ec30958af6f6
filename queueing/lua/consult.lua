-- ARGV: prefix, op, call_id, seat, now_ms, then by op:
--   reserve  skill, rules_json -> {seat, level}, or {} if no seat of the queue is free
--   handover aht_alpha         -> the seat the call leaves
--   free                       -> 1 if the seat was freed, else 0
-- A seat consulting about its connected call (queueing/consult.py) asks for a seat of a
-- queue: the ACD chooses it as it would for a caller of that queue who arrives now (the
-- call's language, the first relax step: find_seat in route.lua). The chosen seat rings for
-- the consultation (state ringing, reason "consult", its call the citizen's), outside the RONA
-- deadlines: it is offered no caller until the consultation ends.
--   handover: the consultation was put through: the seat that consulted completes its part
--             (wrap-up), the chosen seat is on the call (event connect, with the call's own
--             queue and wait, so that queue's figures count the call once).
--   free:     cancelled or ended unanswered: the chosen seat is available again at once,
--             keeping its place among idle seats.
local err = require_registered()
if err then return err end
local op, id, ext, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local ck = P .. 'call:' .. id
local c = redis.call('HMGET', ck, 'state', 'seat', 'skill', 'lang', 'enq', 'answered_at')
local function consulting(seat)
  local s = redis.call('HMGET', P .. 'seat:' .. seat, 'state', 'call', 'reason')
  return s[1] == 'ringing' and s[2] == id and s[3] == 'consult'
end
if op == 'free' then
  if not consulting(ext) then return 0 end
  set_state(ext, 'available', now, '', {'call', ''})
  return 1
end
if c[1] ~= 'connected' then return redis.error_reply('HOTLINE_CALL_STATE ' .. (c[1] or 'gone')) end
if op == 'reserve' then
  local skill = ARGV[6]
  if redis.call('SISMEMBER', P .. 'skills', skill) == 0 then
    return redis.error_reply('HOTLINE_UNKNOWN_SKILL ' .. skill)
  end
  local rules = cjson.decode(ARGV[7])
  local chosen, level = find_seat(indexed_seats(), skill, c[4], rules.steps[1], rules.bands)
  if not chosen then return {} end
  redis.call('HSET', P .. 'seat:' .. chosen, 'call', id)
  set_state(chosen, 'ringing', now, 'consult', {'ring_until', 0})
  return {chosen, level}
elseif op == 'handover' then
  local from = c[2]
  if not consulting(ext) then
    return redis.error_reply('HOTLINE_SEAT_STATE ' .. (redis.call('HGET', P .. 'seat:' .. ext,
      'state') or 'gone'))
  end
  complete_part(id, from, c[3], c[6], now, tonumber(ARGV[6]))
  redis.call('HSET', ck, 'seat', ext, 'answered_at', now)
  set_state(ext, 'on_call', now, '', {})
  event(now, 'connect', id, ext, c[3], tostring(tonumber(c[6] or now) - tonumber(c[5])))
  return from
end
return redis.error_reply('HOTLINE_CONSULT_OP ' .. op)
