-- ARGV: prefix, call_id, skill, language, caller, seen (the caller's number if it is one, else
-- ''), now_ms, owner, repeat_window_ms, repeat_priority, limit, scan, rules_json
-- A voice caller enters its queue and the routing step runs, in one call: the caller's
-- priority (a repeat caller: the same number within the repeat window, remembered as
-- seen:<number>), its place in the queue, and the step's assignments (a free seat rings for
-- it at once). Returns {priority, position, assignments}.
local err = require_registered()
if err then return err end
local now = tonumber(ARGV[7])
local prio = 0
if ARGV[6] ~= '' then
  local last = redis.call('SET', P .. 'seen:' .. ARGV[6], now, 'PX', ARGV[9], 'GET')
  if last and now - tonumber(last) >= 0 and now - tonumber(last) <= tonumber(ARGV[9]) then
    prio = tonumber(ARGV[10])
  end
end
local position = enqueue_call(ARGV[2], ARGV[3], ARGV[4], prio, ARGV[5], now, 'voice', ARGV[8])
if type(position) == 'table' then return position end
return {prio, position, dispatch_step(now, tonumber(ARGV[11]), tonumber(ARGV[12]),
  cjson.decode(ARGV[13]))}
