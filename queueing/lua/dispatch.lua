-- ARGV: prefix, now_ms, limit, scan, rules_json
-- One atomic routing step: ends due wrap-ups, then walks the heads of every skill queue in
-- (priority, arrival) order and offers each caller the best available seat its relax step
-- allows: lowest level band first, then longest idle. Returns the assignments.
local err = require_registered()
if err then return err end
local now, limit, scan = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local rules = cjson.decode(ARGV[5])

local due = redis.call('ZRANGEBYSCORE', P .. 'wrapup', '-inf', now)
for _, ext in ipairs(due) do
  local sk = P .. 'seat:' .. ext
  redis.call('HSET', sk, 'idle', redis.call('HGET', sk, 'wrap_until'))
  set_state(ext, 'available', now, '', {'wrap_until', 0, 'call', ''})
end

local out = {}
if redis.call('ZCARD', P .. 'avail') == 0 then return out end

local cands = {}
for _, skill in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
  local r = redis.call('ZRANGE', P .. 'q:' .. skill, 0, scan - 1, 'WITHSCORES')
  for i = 1, #r, 2 do cands[#cands + 1] = {r[i], tonumber(r[i + 1]), skill} end
end
table.sort(cands, function(a, b)
  if a[2] == b[2] then return a[1] < b[1] end
  return a[2] < b[2]
end)

local function find_seat(skill, lang, step)
  for _, band in ipairs(rules.bands) do
    local best, best_idle, best_level = nil, nil, nil
    for level = band[1], math.min(band[2], step[2]) do
      local r = redis.call('ZRANGE', P .. 'avail:' .. skill .. ':' .. lang .. ':' .. level,
        0, 0, 'WITHSCORES')
      if r[1] then
        local idle = tonumber(r[2])
        if best == nil or idle < best_idle or (idle == best_idle and r[1] < best) then
          best, best_idle, best_level = r[1], idle, level
        end
      end
    end
    if best then return best, best_level end
  end
  if step[3] == 1 then
    local r = redis.call('ZRANGE', P .. 'availlang:' .. lang, 0, 0)
    if r[1] then return r[1], 0 end
  end
  return nil, nil
end

local exhausted = {}  -- seats only leave the indexes during this step: "none" stays true
for _, cand in ipairs(cands) do
  if #out >= limit or redis.call('ZCARD', P .. 'avail') == 0 then break end
  local id, skill = cand[1], cand[3]
  local ck = P .. 'call:' .. id
  local c = redis.call('HMGET', ck, 'lang', 'enq', 'caller', 'prio', 'kind')
  local lang = c[1]
  if redis.call('ZCARD', P .. 'availlang:' .. lang) > 0 then
    local wait = now - tonumber(c[2])
    local si = 1
    for i, step in ipairs(rules.steps) do
      if wait >= step[1] then si = i end
    end
    local memo = skill .. '|' .. lang .. '|' .. si
    if not exhausted[memo] then
      local ext, level = find_seat(skill, lang, rules.steps[si])
      if ext then
        local sk = P .. 'seat:' .. ext
        local ring_until = now + tonumber(redis.call('HGET', sk, 'ring_ms'))
        redis.call('HSET', sk, 'call', id)
        set_state(ext, 'ringing', now, '', {'ring_until', ring_until})
        redis.call('ZADD', P .. 'ringing', ring_until, ext)
        queue_rem(id, skill)
        redis.call('HSET', ck, 'state', 'offered', 'seat', ext, 'offered_at', now)
        event(now, 'offer', id, ext, skill, tostring(wait))
        out[#out + 1] = {id, ext, skill, lang, c[3], tonumber(c[4]), c[5], wait, si - 1, level,
          ring_until}
      else
        exhausted[memo] = true
      end
    end
  end
end
return out
