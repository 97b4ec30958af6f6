-- ARGV: prefix, now_ms, limit, scan, rules_json (see dispatch_step in route.lua)
local err = require_registered()
if err then return err end
return dispatch_step(tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),
  cjson.decode(ARGV[5]))
