-- ARGV: prefix, call_id, skill, language, priority, caller, now_ms, kind, owner
-- (owner: the engine holding the caller's session, see queueing/ownership.py)
-- Returns the caller's position (1 = next), or 0 if the call is already past the queue.
local err = require_registered()
if err then return err end
local id, skill, lang = ARGV[2], ARGV[3], ARGV[4]
local prio, caller, now, kind = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7]), ARGV[8]
if redis.call('SISMEMBER', P .. 'skills', skill) == 0 then
  return redis.error_reply('HOTLINE_UNKNOWN_SKILL ' .. skill)
end
local ck = P .. 'call:' .. id
if redis.call('EXISTS', ck) == 1 then
  local rank = redis.call('ZRANK', P .. 'q:' .. redis.call('HGET', ck, 'skill'), id)
  if rank then return rank + 1 end
  return 0
end
local seq = redis.call('INCR', P .. 'seq')
local score = (9 - prio) * 1000000000000 + seq
redis.call('HSET', ck, 'id', id, 'skill', skill, 'lang', lang, 'prio', prio, 'caller', caller,
  'enq', now, 'seq', seq, 'score', score, 'kind', kind, 'state', 'waiting', 'seat', '',
  'owner', ARGV[9] or '')
queue_add(id, skill, score, now)
event(now, 'enter', id, '', skill, caller)
return redis.call('ZRANK', P .. 'q:' .. skill, id) + 1
