-- Shared helpers, prepended to every ACD script. ARGV[1] is always the key prefix.
-- Key layout: see queueing/acd.py. Times are epoch milliseconds.
local P = ARGV[1]
local EVENTS_MAXLEN = 100000

local function require_registered()
  if redis.call('EXISTS', P .. 'epoch') == 0 then
    return redis.error_reply('HOTLINE_NOT_REGISTERED seats are not registered in this Redis')
  end
  return nil
end

local function event(now, kind, call, seat, skill, data)
  redis.call('XADD', P .. 'events', 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'type', kind,
    'ts', now, 'call', call or '', 'seat', seat or '', 'skill', skill or '', 'data', data or '')
end

-- Every index a seat is in while available: all, per language, per skill+language+level (the
-- keys); and per skill, availskill:<skill> scored by the seat's level (the {key, level}s).
-- (f: the seat's {langs, skills} fields when the caller has read them)
local function seat_indexes(ext, f)
  f = f or redis.call('HMGET', P .. 'seat:' .. ext, 'langs', 'skills')
  local keys = {P .. 'avail'}
  for lang in string.gmatch(f[1] or '', '%S+') do
    keys[#keys + 1] = P .. 'availlang:' .. lang
    for skill, lvl in string.gmatch(f[2] or '', '([^%s:]+):(%d+)') do
      keys[#keys + 1] = P .. 'avail:' .. skill .. ':' .. lang .. ':' .. lvl
    end
  end
  local levels = {}
  for skill, lvl in string.gmatch(f[2] or '', '([^%s:]+):(%d+)') do
    levels[#levels + 1] = {P .. 'availskill:' .. skill, lvl}
  end
  return keys, levels
end


local function seat_skills(ext)
  local skills = {}
  local s = redis.call('HGET', P .. 'seat:' .. ext, 'skills') or ''
  for skill in string.gmatch(s, '([^%s:]+):%d+') do skills[#skills + 1] = skill end
  return skills
end

-- availskill:<skill> is scored by the seat's level: "is there any seat good enough?"
-- A seat with a live channel of its own (chans:<ext>: a feature-code call, a call it dialled)
-- stays out of the indexes: it is offered nothing until that channel hangs up (channel.lua).
local function index_add(ext, idle)
  if redis.call('SCARD', P .. 'chans:' .. ext) > 0 then return end
  local keys, levels = seat_indexes(ext)
  for _, key in ipairs(keys) do redis.call('ZADD', key, idle, ext) end
  for _, kl in ipairs(levels) do redis.call('ZADD', kl[1], kl[2], ext) end
end

local function index_rem(ext, f)
  local keys, levels = seat_indexes(ext, f)
  for _, key in ipairs(keys) do redis.call('ZREM', key, ext) end
  for _, kl in ipairs(levels) do redis.call('ZREM', kl[1], ext) end
end

-- Move a seat to `state`; keeps the available indexes, the timers and the staffed sets right.
-- (f: the seat's {langs, skills} fields when the caller has read them)
local function set_state(ext, state, now, reason, fields, f)
  local sk = P .. 'seat:' .. ext
  local old = redis.call('HGET', sk, 'state')
  if old == 'available' and state ~= 'available' then index_rem(ext, f) end
  if old == 'ringing' and state ~= 'ringing' then redis.call('ZREM', P .. 'ringing', ext) end
  if old == 'wrap_up' and state ~= 'wrap_up' then redis.call('ZREM', P .. 'wrapup', ext) end
  if old == 'logged_out' and state ~= 'logged_out' then
    for _, skill in ipairs(seat_skills(ext)) do redis.call('SADD', P .. 'staff:' .. skill, ext) end
  elseif old ~= 'logged_out' and state == 'logged_out' then
    for _, skill in ipairs(seat_skills(ext)) do redis.call('SREM', P .. 'staff:' .. skill, ext) end
  end
  -- one HSET; the event names the seat's call: from `fields` when they set it
  local set, call = {'state', state, 'since', now, 'reason', reason or ''}, nil
  for i = 1, #(fields or {}), 2 do
    set[#set + 1], set[#set + 2] = fields[i], fields[i + 1]
    if fields[i] == 'call' then call = fields[i + 1] end
  end
  redis.call('HSET', sk, unpack(set))
  if state == 'available' and old ~= 'available' and redis.call('HGET', sk, 'retired') ~= '1' then
    index_add(ext, tonumber(redis.call('HGET', sk, 'idle')) or now)
  end
  if call == nil then call = redis.call('HGET', sk, 'call') or '' end
  event(now, 'seat', call, ext, '', state .. ' ' .. (reason or ''))
  return old
end

-- The seat's call of `skill` ended: its wrap-up (per skill, else the seat's; `wrap_ms` given:
-- that one), or available at once without one. Returns the wrap-up in ms (0: none).
local function end_call(ext, skill, now, wrap_ms)
  local sk = P .. 'seat:' .. ext
  local wrap = wrap_ms
    or tonumber(redis.call('HGET', sk, 'w:' .. skill) or redis.call('HGET', sk, 'wrap_ms'))
  if wrap and wrap > 0 then
    set_state(ext, 'wrap_up', now, '', {'call', '', 'wrap_until', now + wrap})
    redis.call('ZADD', P .. 'wrapup', now + wrap, ext)
    return wrap
  end
  redis.call('HSET', sk, 'idle', now)
  set_state(ext, 'available', now, '', {'call', '', 'wrap_until', 0})
  return 0
end

-- A connected call's part at seat `ext` is over (the caller left, or went on to another
-- seat): the seat enters its wrap-up if it is still on this call, the skill's handling time
-- is averaged in (weight `alpha`), and the event `complete` logged. Returns the talk ms.
local function complete_part(id, ext, skill, answered_at, now, alpha)
  local sk = P .. 'seat:' .. ext
  local talk = now - tonumber(answered_at or now)
  if redis.call('HGET', sk, 'state') == 'on_call' and redis.call('HGET', sk, 'call') == id then
    local handled = talk + end_call(ext, skill, now)
    local old = tonumber(redis.call('HGET', P .. 'aht', skill))
    if old then handled = old + alpha * (handled - old) end
    redis.call('HSET', P .. 'aht', skill, handled)
  end
  event(now, 'complete', id, ext, skill, tostring(talk))
  return talk
end

local function queue_add(id, skill, score, enq)
  redis.call('ZADD', P .. 'q:' .. skill, score, id)
  redis.call('ZADD', P .. 'qt:' .. skill, enq, id)
  redis.call('ZADD', P .. 'waitall', enq, id)
  redis.call('SADD', P .. 'queues', skill)
end

local function queue_rem(id, skill)
  redis.call('ZREM', P .. 'q:' .. skill, id)
  redis.call('ZREM', P .. 'qt:' .. skill, id)
  redis.call('ZREM', P .. 'waitall', id)
  if redis.call('ZCARD', P .. 'q:' .. skill) == 0 then redis.call('SREM', P .. 'queues', skill) end
end

-- A ringing call goes back to its own place in its queue (original score: ahead of everyone
-- who arrived after it), the seat is paused with `reason` (RONA: "no-answer").
local function requeue(id, now, reason)
  local ck = P .. 'call:' .. id
  local c = redis.call('HMGET', ck, 'state', 'seat', 'skill', 'score', 'enq')
  if c[1] ~= 'offered' then return nil end
  local ext = c[2]
  local sk = P .. 'seat:' .. ext
  if redis.call('HGET', sk, 'state') == 'ringing' and redis.call('HGET', sk, 'call') == id then
    set_state(ext, 'paused', now, reason, {'call', '', 'ring_until', 0})
  end
  redis.call('HSET', ck, 'state', 'waiting', 'seat', '')
  queue_add(id, c[3], tonumber(c[4]), tonumber(c[5]))
  event(now, 'requeue', id, ext, c[3], reason)
  return ext
end
