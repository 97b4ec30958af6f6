-- ARGV: prefix, call_id, skill, language, priority, caller, now_ms, kind, owner
-- Returns the caller's position (1 = next), or 0 if the call is already past the queue.
local err = require_registered()
if err then return err end
return enqueue_call(ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7]),
  ARGV[8], ARGV[9])
