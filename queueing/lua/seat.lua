-- ARGV: prefix, extension, event, allowed_from (space separated), to_state, now_ms, reason
-- The state rules come from agents/states.py; this checks and applies them atomically.
local err = require_registered()
if err then return err end
local ext, ev, allowed, to = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, reason = tonumber(ARGV[6]), ARGV[7]
local sk = P .. 'seat:' .. ext
local old = redis.call('HGET', sk, 'state')
if not old then return redis.error_reply('HOTLINE_NO_SEAT ' .. ext) end
local ok = false
for s in string.gmatch(allowed, '%S+') do
  if s == old then ok = true end
end
if not ok then return redis.error_reply('HOTLINE_SEAT_STATE ' .. old) end
local fields = {}
if to == 'available' then
  local idle = now
  if ev == 'wrap_up_done' then
    idle = math.min(now, tonumber(redis.call('HGET', sk, 'wrap_until')) or now)
  end
  fields = {'idle', idle, 'call', '', 'wrap_until', 0}
elseif to == 'logged_out' or to == 'paused' then
  fields = {'call', '', 'wrap_until', 0, 'ring_until', 0}
end
if to ~= 'paused' then reason = '' end
set_state(ext, to, now, reason, fields)
return old
