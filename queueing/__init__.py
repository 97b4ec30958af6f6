"""Queueing: the skills-based ACD shared by all engine processes through one Redis.

* :mod:`queueing.rules` — routing rules as data (priority, level bands, relax steps), pure.
* :mod:`queueing.acd` — the :class:`~queueing.acd.Acd` service; decisions run as Lua in Redis.
* :mod:`queueing.events` — the event log the Lua scripts write (for statistics).
* :mod:`queueing.ownership` — several engines on one Redis: leases, forwarded decisions.
* :mod:`queueing.busy` — a seat on a call of its own (e.g. *24) is offered no caller.
* :mod:`queueing.recovery` — seats and callers checked against Asterisk's channels
  (:mod:`queueing.channels`) after a kill, a dead engine or a missed event.
* :mod:`queueing.redis_server` — the hotline's own Redis (password, AOF, loopback).

Redis keys, all under ``prefix`` (default ``hotline:acd:``; times in epoch ms):

=============================  ============================================================
``epoch``                      set by seat registration; missing = Redis lost its data
``skills`` / ``seats``         SETs of declared skills and registered seat extensions
``seat:<ext>``                 HASH: state, reason, since, idle, call, ring_until,
                               wrap_until, langs, skills ("report:1 ..."), ring_ms, wrap_ms,
                               ``w:<skill>`` wrap-up per skill, name, retired; ringing
                               with reason ``consult``: chosen for a seat's consultation
                               of ``call`` (queueing/lua/consult.lua), no RONA deadline
``chans:<ext>``                SET the seat's own live channels (unique ids); while any
                               lives the seat is in no ``avail*`` index (offered nothing)
``avail``                      ZSET available seats -> idle since (longest idle first)
``availlang:<lang>``           ZSET the same, per language
``avail:<skill>:<lang>:<lv>``  ZSET the same, per skill, language and level
``availskill:<skill>``         ZSET available seats holding the skill -> their level
``staff:<skill>``              SET logged-in seats holding the skill (estimated wait)
``ringing`` / ``wrapup``       ZSET seat -> RONA deadline / end of wrap-up
``q:<skill>``                  ZSET waiting calls -> (9 - priority) * 1e12 + arrival seq
``qt:<skill>``                 ZSET waiting calls -> enqueued at (longest wait)
``waitall``                    ZSET every waiting call -> enqueued at (oldest overall)
``queues``                     SET skills with someone waiting
``call:<id>``                  HASH: skill, lang, prio, caller, enq, seq, score, kind,
                               state (waiting|offered|connected), seat, offered_at, owner
``engine:<id>``                the lease of a live engine (expires when it dies)
``inbox:<id>``                 LIST decisions for calls another engine holds (forwarded)
``callbacks``                  SET calls converted to callbacks
``seq``                        arrival counter (FIFO across engines)
``aht``                        HASH skill -> moving average handling time (talk + wrap-up)
``events``                     STREAM of queue events (see :mod:`queueing.events`)
``seen:<number>``              last call time of a caller number (TTL: repeat window)
=============================  ============================================================
"""
