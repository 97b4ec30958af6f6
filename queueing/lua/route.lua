-- The two steps a caller meets, shared by enqueue.lua, dispatch.lua and enter.lua (prepended
-- after common.lua).

-- Put a caller in the skill's queue (idempotent). Returns its position (1 = next), 0 if the
-- call is already past the queue, or an error reply for an unknown skill.
-- (owner: the engine holding the caller's session, see queueing/ownership.py)
local function enqueue_call(id, skill, lang, prio, caller, now, kind, owner)
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
    'owner', owner or '')
  queue_add(id, skill, score, now)
  event(now, 'enter', id, '', skill, caller)
  return redis.call('ZRANK', P .. 'q:' .. skill, id) + 1
end

-- One atomic routing step: ends due wrap-ups, then walks the heads of the skill queues in
-- (priority, arrival) order (at most `scan` callers deep per queue) and offers each caller the
-- best available seat its relax step allows: lowest level band first, then longest idle.
-- rules (queueing/rules.py RoutingRules.to_json): bands = [{lo, hi}], best first;
-- steps = [{after_ms, max_level, any_skill}], by increasing after_ms, the first at 0.
-- Returns the assignments.
local function dispatch_step(now, limit, scan, rules)
  -- The relax step a caller who waited `wait` ms is at: the last one it has reached.
  local function step_at(wait)
    local index = 1
    for i, step in ipairs(rules.steps) do
      if wait >= step.after_ms then index = i end
    end
    return index
  end

  local due = redis.call('ZRANGEBYSCORE', P .. 'wrapup', '-inf', now)
  for _, ext in ipairs(due) do
    local sk = P .. 'seat:' .. ext
    redis.call('HSET', sk, 'idle', redis.call('HGET', sk, 'wrap_until'))
    set_state(ext, 'available', now, '', {'wrap_until', 0, 'call', ''})
  end

  local out = {}
  -- seats leave `avail` only by this step's own offers below: counted here, not asked again
  local free = redis.call('ZCARD', P .. 'avail')
  if free == 0 then return out end

  -- Queues worth looking at. With few seats free, only the queues of their skills can be
  -- served, unless somebody waited long enough for "any seat with the language" (any_after).
  -- Of those, a queue whose oldest caller (its most relaxed one) no available seat is good
  -- enough for has nobody to serve in this step.
  local any_after = nil
  for _, s in ipairs(rules.steps) do
    if s.any_skill and any_after == nil then any_after = s.after_ms end
  end
  local skills = nil
  local few = free <= 16
  local oldest_all = redis.call('ZRANGE', P .. 'waitall', 0, 0, 'WITHSCORES')
  if few and (any_after == nil or oldest_all[2] == nil
      or now - tonumber(oldest_all[2]) < any_after) then
    -- (a skill nobody waits for has an empty qt:<skill>: the look below drops it)
    skills = {}
    local seen = {}
    for _, ext in ipairs(redis.call('ZRANGE', P .. 'avail', 0, -1)) do
      for _, skill in ipairs(seat_skills(ext)) do
        if not seen[skill] then
          seen[skill] = true
          skills[#skills + 1] = skill
        end
      end
    end
    table.sort(skills)
  else
    skills = redis.call('SMEMBERS', P .. 'queues')
  end
  local queues = {}
  for _, skill in ipairs(skills) do
    local oldest = redis.call('ZRANGE', P .. 'qt:' .. skill, 0, 0, 'WITHSCORES')
    local reachable = false
    if oldest[2] then
      local step = rules.steps[step_at(now - tonumber(oldest[2]))]
      reachable = step.any_skill or #redis.call('ZRANGEBYSCORE', P .. 'availskill:' .. skill,
        '-inf', step.max_level, 'LIMIT', 0, 1) > 0
    end
    if reachable then
      queues[#queues + 1] = {skill = skill, key = P .. 'q:' .. skill, buf = {}, pos = 1,
        offset = 0, seen = 0, done = false}
    end
  end

  local CHUNK = 8
  local function head(q)
    if q.done then return nil end
    if q.pos > #q.buf then
      if q.seen >= scan then
        q.done = true
        return nil
      end
      local r = redis.call('ZRANGE', q.key, q.offset, q.offset + CHUNK - 1, 'WITHSCORES')
      q.buf, q.pos = {}, 1
      for i = 1, #r, 2 do q.buf[#q.buf + 1] = {r[i], tonumber(r[i + 1])} end
      q.offset = q.offset + #q.buf
      if #q.buf == 0 then
        q.done = true
        return nil
      end
    end
    return q.buf[q.pos]
  end

  -- With few seats free, availskill:<skill> (all of them, any language) says which levels
  -- have a seat at all: only those levels' indexes are read.
  local function levels_in(skill, lo, hi)
    local present = {}
    if few then
      local r = redis.call('ZRANGEBYSCORE', P .. 'availskill:' .. skill, lo, hi, 'WITHSCORES')
      for i = 2, #r, 2 do present[tonumber(r[i])] = true end
    else
      for level = lo, hi do present[level] = true end
    end
    return present
  end

  local function find_seat(skill, lang, step)
    for _, band in ipairs(rules.bands) do
      local best, best_idle, best_level = nil, nil, nil
      local hi = math.min(band.hi, step.max_level)
      local present = band.lo <= hi and levels_in(skill, band.lo, hi) or {}
      for level = band.lo, hi do
        local key = P .. 'avail:' .. skill .. ':' .. lang .. ':' .. level
        local r = present[level] and redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
        if r and r[1] then
          local idle = tonumber(r[2])
          if best == nil or idle < best_idle or (idle == best_idle and r[1] < best) then
            best, best_idle, best_level = r[1], idle, level
          end
        end
      end
      if best then return best, best_level end
    end
    if step.any_skill then
      local r = redis.call('ZRANGE', P .. 'availlang:' .. lang, 0, 0)
      if r[1] then return r[1], 0 end
    end
    return nil, nil
  end

  -- Lazy merge of the queues in (priority, arrival) order: callers are looked at one by one.
  -- `order` holds the queues sorted by their head caller (binary insertion keeps it sorted).
  local function before(a, b)
    return a.h[2] < b.h[2] or (a.h[2] == b.h[2] and a.h[1] < b.h[1])
  end
  local order = {}
  local function push(q)
    q.h = head(q)
    if not q.h then return end
    local lo, hi = 1, #order + 1
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if before(order[mid], q) then lo = mid + 1 else hi = mid end
    end
    table.insert(order, lo, q)
  end
  for _, q in ipairs(queues) do push(q) end

  local exhausted = {}  -- seats only leave the indexes during this step: "none" stays true
  local lang_free = {}  -- available seats per language, read once between offers
  while #out < limit and #order > 0 and free > 0 do
    local best_q = table.remove(order, 1)
    local best = best_q.h
    best_q.pos = best_q.pos + 1
    best_q.seen = best_q.seen + 1
    local id, skill = best[1], best_q.skill
    local ck = P .. 'call:' .. id
    local c = redis.call('HMGET', ck, 'lang', 'enq', 'caller', 'prio', 'kind')
    local lang = c[1]
    if lang_free[lang] == nil then
      lang_free[lang] = redis.call('ZCARD', P .. 'availlang:' .. lang)
    end
    if lang_free[lang] > 0 then
      local wait = now - tonumber(c[2])
      local si = step_at(wait)
      local memo = skill .. '|' .. lang .. '|' .. si
      if not exhausted[memo] then
        local ext, level = find_seat(skill, lang, rules.steps[si])
        if ext then
          local sk = P .. 'seat:' .. ext
          local ring_until = now + tonumber(redis.call('HGET', sk, 'ring_ms'))
          redis.call('HSET', sk, 'call', id)
          set_state(ext, 'ringing', now, '', {'ring_until', ring_until})
          free, lang_free = free - 1, {}
          redis.call('ZADD', P .. 'ringing', ring_until, ext)
          queue_rem(id, skill)
          best_q.offset = best_q.offset - 1  -- it left the part of the queue already read
          redis.call('HSET', ck, 'state', 'offered', 'seat', ext, 'offered_at', now)
          event(now, 'offer', id, ext, skill, tostring(wait))
          out[#out + 1] = {id, ext, skill, lang, c[3], tonumber(c[4]), c[5], wait, si - 1, level,
            ring_until}
        else
          exhausted[memo] = true
        end
      end
    end
    push(best_q)
  end
  return out
end
