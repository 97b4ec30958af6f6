-- ARGV: prefix, now_ms, epoch, seats_json, skills_json
-- Idempotent: a known seat keeps its state (an available seat is re-indexed under its new
-- skills); a new seat starts logged out; a seat gone from the file is removed unless it is
-- ringing or on a call (then it is marked retired and removed by the next registration).
-- Returns {added, updated, removed}.
local now, epoch = tonumber(ARGV[2]), ARGV[3]
local seats, skills = cjson.decode(ARGV[4]), cjson.decode(ARGV[5])
redis.call('DEL', P .. 'skills')
for _, skill in ipairs(skills) do redis.call('SADD', P .. 'skills', skill) end
local wanted, added, updated, removed = {}, 0, 0, 0
for _, s in ipairs(seats) do
  wanted[s.ext] = true
  local sk = P .. 'seat:' .. s.ext
  local state = redis.call('HGET', sk, 'state')
  if state == 'available' then index_rem(s.ext) end
  if state and state ~= 'logged_out' then
    for _, skill in ipairs(seat_skills(s.ext)) do
      redis.call('SREM', P .. 'staff:' .. skill, s.ext)
    end
  end
  for _, f in ipairs(redis.call('HKEYS', sk)) do
    if string.sub(f, 1, 2) == 'w:' then redis.call('HDEL', sk, f) end
  end
  redis.call('HSET', sk, 'ext', s.ext, 'name', s.name, 'langs', s.langs, 'skills', s.skills,
    'ring_ms', s.ring_ms, 'wrap_ms', s.wrap_ms, 'retired', 0)
  for skill, ms in pairs(s.wraps) do redis.call('HSET', sk, 'w:' .. skill, ms) end
  if state then
    updated = updated + 1
    if state == 'available' then index_add(s.ext, tonumber(redis.call('HGET', sk, 'idle')) or now) end
    if state ~= 'logged_out' then
      for _, skill in ipairs(seat_skills(s.ext)) do redis.call('SADD', P .. 'staff:' .. skill, s.ext) end
    end
  else
    added = added + 1
    redis.call('HSET', sk, 'state', 'logged_out', 'since', now, 'reason', '', 'call', '',
      'idle', now, 'ring_until', 0, 'wrap_until', 0)
  end
  redis.call('SADD', P .. 'seats', s.ext)
end
for _, ext in ipairs(redis.call('SMEMBERS', P .. 'seats')) do
  if not wanted[ext] then
    local state = redis.call('HGET', P .. 'seat:' .. ext, 'state')
    if state == 'ringing' or state == 'on_call' then
      redis.call('HSET', P .. 'seat:' .. ext, 'retired', 1)
    else
      if state ~= 'logged_out' then set_state(ext, 'logged_out', now, '', {}) end
      redis.call('ZREM', P .. 'wrapup', ext)
      redis.call('DEL', P .. 'seat:' .. ext)
      redis.call('DEL', P .. 'chans:' .. ext)
      redis.call('SREM', P .. 'seats', ext)
      removed = removed + 1
    end
  end
end
redis.call('SET', P .. 'epoch', epoch)
return {added, updated, removed}
