-- ARGV: prefix, extension, uniqueid, live ("1": the seat's own channel is up, "0": it hung
-- up), now_ms
-- A seat with a live channel of its own (a feature-code call such as *24, a call it dialled,
-- a ring) is not offered a caller: it leaves the available indexes while any of its channels
-- lives (chans:<ext>) and returns to them, keeping its idle time, when the last one hangs up.
-- Returns 1 when the seat became offerable again, else 0.
local err = require_registered()
if err then return err end
local ext, uid, live, now = ARGV[2], ARGV[3], ARGV[4] == '1', tonumber(ARGV[5])
local sk = P .. 'seat:' .. ext
local state = redis.call('HGET', sk, 'state')
if not state then return 0 end
local ck = P .. 'chans:' .. ext
if live then
  if redis.call('SADD', ck, uid) == 1 and state == 'available' then index_rem(ext) end
  return 0
end
if redis.call('SREM', ck, uid) == 0 or redis.call('SCARD', ck) > 0 then return 0 end
if state == 'available' and redis.call('HGET', sk, 'retired') ~= '1' then
  index_add(ext, tonumber(redis.call('HGET', sk, 'idle')) or now)
  return 1
end
return 0
