-- ARGV: prefix, call_id, number, now_ms. A waiting caller chose to be called back: the entry
-- keeps its score (its place) and becomes a callback. Returns the position, 0 if not waiting.
local err = require_registered()
if err then return err end
local id, number, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local ck = P .. 'call:' .. id
local c = redis.call('HMGET', ck, 'state', 'skill')
if c[1] ~= 'waiting' then return 0 end
redis.call('HSET', ck, 'kind', 'callback', 'caller', number, 'callback_at', now)
redis.call('SADD', P .. 'callbacks', id)
event(now, 'callback', id, '', c[2], number)
return redis.call('ZRANK', P .. 'q:' .. c[2], id) + 1
