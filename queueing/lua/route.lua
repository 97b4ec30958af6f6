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

-- The available seats as the indexes hold them (avail:<skill>:<lang>:<level>, availlang:<lang>,
-- availskill:<skill>): the `seats` of dispatch_step with more than a few seats free, and
-- a consultation's choice (consult.lua).
local function indexed_seats()
  local seats = {}
  function seats.best(skill, lang, lo, hi)
    local best, best_idle, best_level = nil, nil, nil
    for level = lo, hi do
      local r = redis.call('ZRANGE', P .. 'avail:' .. skill .. ':' .. lang .. ':' .. level, 0, 0,
        'WITHSCORES')
      if r[1] then
        local idle = tonumber(r[2])
        if best == nil or idle < best_idle or (idle == best_idle and r[1] < best) then
          best, best_idle, best_level = r[1], idle, level
        end
      end
    end
    return best, best_level
  end
  function seats.any(lang)
    return redis.call('ZRANGE', P .. 'availlang:' .. lang, 0, 0)[1]
  end
  function seats.count(lang)
    return redis.call('ZCARD', P .. 'availlang:' .. lang)
  end
  function seats.reach(skill, max_level)
    return #redis.call('ZRANGEBYSCORE', P .. 'availskill:' .. skill, '-inf', max_level,
      'LIMIT', 0, 1) > 0
  end
  function seats.take(ext)
    return tonumber(redis.call('HGET', P .. 'seat:' .. ext, 'ring_ms'))
  end
  return seats
end

-- The best seat `seats` has for a caller of `skill` speaking `lang` at relax `step`: the
-- lowest level band first (`bands`, best first), then the longest idle; any seat with the
-- language if the step allows it. Returns ext, level (0: any skill), or nil.
local function find_seat(seats, skill, lang, step, bands)
  for _, band in ipairs(bands) do
    local hi = math.min(band.hi, step.max_level)
    if band.lo <= hi then
      local ext, level = seats.best(skill, lang, band.lo, hi)
      if ext then return ext, level end
    end
  end
  if step.any_skill then
    local ext = seats.any(lang)
    if ext then return ext, 0 end
  end
  return nil, nil
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
  local FEW = 16
  local first = redis.call('ZRANGE', P .. 'avail', 0, FEW, 'WITHSCORES')
  if #first == 0 then return out end
  local few = #first <= 2 * FEW
  local free = few and #first / 2 or redis.call('ZCARD', P .. 'avail')

  -- Where the step looks for seats. With few seats free (at most 16), their fields are read
  -- once (avail, then one HMGET each) and searched here, in Lua; with more, the
  -- avail:<skill>:<lang>:<level>, availlang:<lang> and availskill:<skill> indexes are asked.
  -- Both give the same answers (the indexes hold exactly the seats of `avail`, with the same
  -- idle score): `seats` answers
  --   best(skill, lang, lo, hi)  the longest idle seat with the language and the skill at a
  --                              level in lo-hi (ties: lowest extension) -> ext, level
  --   any(lang)                  the longest idle seat with the language -> ext
  --   count(lang)                how many seats have the language
  --   reach(skill, max_level)    is any seat (any language) at most max_level in the skill?
  --   take(ext)                  the seat was offered a call (the step's only way out): its
  --                              ring time (ms) and, if read, its {langs, skills}
  local seats = {}
  if few then
    local list = {}
    for i = 1, #first, 2 do
      local f = redis.call('HMGET', P .. 'seat:' .. first[i], 'langs', 'skills', 'ring_ms')
      local s = {ext = first[i], idle = tonumber(first[i + 1]), ring_ms = tonumber(f[3]),
        fields = {f[1], f[2]}, langs = {}, levels = {}}
      for lang in string.gmatch(f[1] or '', '%S+') do s.langs[lang] = true end
      for skill, lvl in string.gmatch(f[2] or '', '([^%s:]+):(%d+)') do
        s.levels[skill] = tonumber(lvl)
      end
      list[#list + 1] = s  -- in (idle, extension) order, as avail holds them
    end
    function seats.best(skill, lang, lo, hi)
      for _, s in ipairs(list) do
        local level = s.levels[skill]
        if level and level >= lo and level <= hi and s.langs[lang] then return s.ext, level end
      end
      return nil, nil
    end
    function seats.any(lang)
      for _, s in ipairs(list) do
        if s.langs[lang] then return s.ext end
      end
      return nil
    end
    function seats.count(lang)
      local n = 0
      for _, s in ipairs(list) do
        if s.langs[lang] then n = n + 1 end
      end
      return n
    end
    function seats.reach(skill, max_level)
      for _, s in ipairs(list) do
        local level = s.levels[skill]
        if level and level <= max_level then return true end
      end
      return false
    end
    function seats.take(ext)
      for i, s in ipairs(list) do
        if s.ext == ext then
          table.remove(list, i)
          return s.ring_ms, s.fields
        end
      end
    end
    function seats.skills()
      local skills, seen = {}, {}
      for _, s in ipairs(list) do
        for skill in pairs(s.levels) do
          if not seen[skill] then
            seen[skill] = true
            skills[#skills + 1] = skill
          end
        end
      end
      table.sort(skills)
      return skills
    end
  else
    seats = indexed_seats()
  end

  -- Queues worth looking at. With few seats free, only the queues of their skills can be
  -- served, unless somebody waited long enough for "any seat with the language" (any_after).
  -- Of those, a queue whose oldest caller (its most relaxed one) no available seat is good
  -- enough for has nobody to serve in this step.
  local any_after = nil
  for _, s in ipairs(rules.steps) do
    if s.any_skill and any_after == nil then any_after = s.after_ms end
  end
  local skills = nil
  local oldest_all = any_after and few and redis.call('ZRANGE', P .. 'waitall', 0, 0, 'WITHSCORES')
  if few and (any_after == nil or oldest_all[2] == nil
      or now - tonumber(oldest_all[2]) < any_after) then
    -- (a skill nobody waits for has an empty qt:<skill>: the look below drops it)
    skills = seats.skills()
  else
    skills = redis.call('SMEMBERS', P .. 'queues')
  end
  -- (a skill with a seat good enough for every step needs no look at its oldest caller: an
  -- empty queue shows at its first read)
  local every_step = 10
  for _, s in ipairs(rules.steps) do every_step = math.min(every_step, s.max_level) end
  local queues = {}
  for _, skill in ipairs(skills) do
    local reachable = seats.reach(skill, every_step)
    if not reachable then
      local oldest = redis.call('ZRANGE', P .. 'qt:' .. skill, 0, 0, 'WITHSCORES')
      if oldest[2] then
        local step = rules.steps[step_at(now - tonumber(oldest[2]))]
        reachable = step.any_skill or seats.reach(skill, step.max_level)
      end
    end
    if reachable then
      queues[#queues + 1] = {skill = skill, key = P .. 'q:' .. skill, buf = {}, pos = 1,
        offset = 0, seen = 0, reads = 0, done = false}
    end
  end

  -- A queue's callers are read a few at a time: the first read is short (one free seat
  -- mostly takes one of the first callers looked at), the next ones longer.
  local FIRST, CHUNK = 2, 8
  local function head(q)
    if q.done then return nil end
    if q.pos > #q.buf then
      if q.seen >= scan then
        q.done = true
        return nil
      end
      local n = q.reads == 0 and FIRST or CHUNK
      q.reads = q.reads + 1
      local r = redis.call('ZRANGE', q.key, q.offset, q.offset + n - 1, 'WITHSCORES')
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
      lang_free[lang] = seats.count(lang)
    end
    if lang_free[lang] > 0 then
      local wait = now - tonumber(c[2])
      local si = step_at(wait)
      local memo = skill .. '|' .. lang .. '|' .. si
      if not exhausted[memo] then
        local ext, level = find_seat(seats, skill, lang, rules.steps[si], rules.bands)
        if ext then
          local ring_ms, seat_fields = seats.take(ext)
          local ring_until = now + ring_ms
          set_state(ext, 'ringing', now, '', {'call', id, 'ring_until', ring_until}, seat_fields)
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
