"""The skills-based ACD, shared by every engine process through one Redis.

Every decision that two engines could race on — which caller, which seat, a seat's state
change — runs as one Lua script (``queueing/lua/*.lua``, loaded with ``register_script`` and
called by EVALSHA), so one seat never gets two calls and one call never goes to two seats.

The Redis key layout is described in :mod:`queueing` (``queueing/__init__.py``).

The hotline's own Redis keeps its data in an append-only file, so a Redis restart keeps
logins, waiting callers and callbacks. A Redis that lost its data (no ``epoch``) fails the
next script call with ``HOTLINE_NOT_REGISTERED``: the Acd re-registers its seats (logged
out) and retries once, and each caller's session re-enqueues its caller when the entry is
gone (:meth:`entry`; ``enqueue`` is idempotent; see :mod:`queueing.connector`).

Every call entry names its ``owner``, the engine whose FastAGI session holds the caller
(:mod:`queueing.ownership`); only that engine, or one that finds its owner dead, acts on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from agents.seats import SeatsFile
from agents.states import (
    NO_ANSWER_REASON,
    UNREGISTERED_REASON,
    SeatEvent,
    SeatState,
    SeatStateError,
    SeatStatus,
    allowed_from,
    check_reason,
    target,
)
from calls.callerid import mask_number
from queueing.models import (
    AcdError,
    AcdSnapshot,
    Assignment,
    CallKind,
    CallStateError,
    Entered,
    LoginRefused,
    Released,
    Requeued,
    UnknownSeat,
    UnknownSkill,
    WaitingCall,
)
from queueing.rules import PRIORITY_MAX, RoutingRules, estimated_wait_s
from queueing.snapshot import read_snapshot, seat_status

log = logging.getLogger(__name__)
_ROUTING = {"enqueue", "dispatch", "enter", "consult"}  # the scripts built on lua/route.lua
LUA_DIR = Path(__file__).resolve().parent / "lua"
_SCRIPTS = (
    "enqueue", "dispatch", "enter", "seat", "answer", "release", "requeue", "callback", "register",
    "channel", "native", "consult",
)  # fmt: skip


def _lua(name: str) -> str:
    return (LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class Acd:
    def __init__(
        self,
        redis: Redis,
        seats: SeatsFile,
        *,
        prefix: str = "hotline:acd:",
        rules: RoutingRules | None = None,
        timeout_s: float = 5.0,
        scan: int = 32,
        aht_alpha: float = 0.1,
        owner: str = "",
    ) -> None:
        self.redis, self.seats, self.prefix = redis, seats, prefix
        self.owner = owner  # this engine's id, written into the entries of its callers
        self.rules = rules or RoutingRules()
        self.timeout_s, self.scan, self.aht_alpha = timeout_s, scan, aht_alpha
        self._rules_json = self.rules.to_json()
        common, route = _lua("common"), _lua("route")
        self._scripts = {
            name: redis.register_script(
                "\n".join((common, route if name in _ROUTING else "", _lua(name)))
            )
            for name in _SCRIPTS
        }

    # -- plumbing -----------------------------------------------------------------------
    async def _run(self, name: str, *args: Any) -> Any:
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await self._scripts[name](args=[self.prefix, *args])
            except ResponseError as exc:
                text = str(exc)
                if "HOTLINE_NOT_REGISTERED" in text and attempt == 1:
                    log.warning("ACD state missing in Redis (restart?): re-registering seats")
                    await self.register_seats()
                    continue
                raise
        raise AssertionError("unreachable")

    @staticmethod
    def _now(now: float | None) -> float:
        return time.time() if now is None else now

    # -- seats --------------------------------------------------------------------------
    async def register_seats(
        self, seats: SeatsFile | None = None, now: float | None = None
    ) -> tuple[int, int, int]:
        """(Re-)declare skills and seats; idempotent. Returns (added, updated, removed)."""
        if seats is not None:
            self.seats = seats
        payload = [
            {
                "ext": seat.extension,
                "name": seat.name,
                "langs": " ".join(seat.languages),
                "skills": " ".join(f"{skill}:{level}" for skill, level in seat.skills),
                "ring_ms": _ms(self.seats.ring_timeout_for(seat)),
                "wrap_ms": _ms(self.seats.wrap_up_for(seat, None)),
                "wraps": {
                    skill: _ms(self.seats.wrap_up_for(seat, skill)) for skill, _ in seat.skills
                },
            }
            for seat in self.seats.seats
        ]
        skills = [skill.name for skill in self.seats.skills]
        async with asyncio.timeout(self.timeout_s):
            added, updated, removed = await self._scripts["register"](
                args=[
                    self.prefix,
                    _ms(self._now(now)),
                    str(time.time_ns()),
                    json.dumps(payload),
                    json.dumps(skills),
                ]
            )
        log.info("seats registered: %s added, %s updated, %s removed", added, updated, removed)
        return int(added), int(updated), int(removed)

    async def _transition(
        self, extension: str, event: SeatEvent, now: float | None, reason: str = ""
    ) -> SeatState:
        try:
            old = await self._run(
                "seat",
                extension,
                event.value,
                " ".join(sorted(allowed_from(event))),
                target(event).value,
                _ms(self._now(now)),
                reason,
            )
        except ResponseError as exc:
            text = str(exc)
            if "HOTLINE_SEAT_STATE" in text:
                raise SeatStateError(extension, text.split()[-1], event) from exc
            if "HOTLINE_NO_SEAT" in text:
                raise UnknownSeat(f"no seat {extension}") from exc
            raise
        log.info("seat %s: %s (%s -> %s) %s", extension, event, _s(old), target(event), reason)
        return SeatState(_s(old))

    async def login(self, extension: str, pin: str, now: float | None = None) -> None:
        """Log a seat in with its PIN; a wrong PIN is refused and logged."""
        try:
            seat = self.seats.seat(extension)
        except KeyError:
            raise UnknownSeat(f"no seat {extension}") from None
        if not await asyncio.to_thread(seat.check_pin, pin):
            log.warning("seat %s: login refused (wrong PIN)", extension)
            raise LoginRefused(f"seat {extension}: wrong PIN")
        await self._transition(extension, SeatEvent.LOGIN, now)

    async def logout(self, extension: str, now: float | None = None) -> None:
        await self._transition(extension, SeatEvent.LOGOUT, now)

    async def pause(self, extension: str, reason: str, now: float | None = None) -> None:
        await self._transition(extension, SeatEvent.PAUSE, now, check_reason(reason))

    async def resume(self, extension: str, now: float | None = None) -> None:
        await self._transition(extension, SeatEvent.RESUME, now)

    async def end_wrap_up(self, extension: str, now: float | None = None) -> None:
        """The operator finished the after-call work before the timer ran out."""
        await self._transition(extension, SeatEvent.WRAP_UP_DONE, now)

    async def unregistered(self, extension: str, now: float | None = None) -> Requeued | None:
        """The softphone's contact went away (AMI ContactStatus): pause the seat; a call
        ringing there goes back to the head of its queue. Logged-out or on-call: no change."""
        status = await self.seat(extension)
        if status.state is SeatState.RINGING:
            requeued = await self.requeue_head(status.call_id, now, reason=UNREGISTERED_REASON)
            if requeued is not None:
                return requeued
        if status.state in allowed_from(SeatEvent.UNREGISTERED) - {SeatState.RINGING}:
            await self._transition(extension, SeatEvent.UNREGISTERED, now, UNREGISTERED_REASON)
        return None

    async def registered(self, extension: str, now: float | None = None) -> None:
        """The softphone registered again: a seat paused only for that becomes available."""
        status = await self.seat(extension)
        if status.state is SeatState.PAUSED and status.reason == UNREGISTERED_REASON:
            await self._transition(extension, SeatEvent.RESUME, now)

    async def channel_up(self, extension: str, uniqueid: str, now: float | None = None) -> None:
        """A channel of the seat's own is up (a feature-code call such as *24, a call it
        dialled, a ring): no caller is offered to the seat until it hangs up."""
        await self._run("channel", extension, uniqueid, "1", _ms(self._now(now)))

    async def channel_down(self, extension: str, uniqueid: str, now: float | None = None) -> bool:
        """That channel hung up; True if the seat is offerable again (routing should run)."""
        return bool(await self._run("channel", extension, uniqueid, "0", _ms(self._now(now))))

    async def seat_channels(self) -> dict[str, set[str]]:
        """The seats' own live channels (unique ids) as the ACD holds them, per seat."""
        exts = [seat.extension for seat in self.seats.seats]
        async with asyncio.timeout(self.timeout_s):
            pipe = self.redis.pipeline(transaction=False)
            for ext in exts:
                pipe.smembers(f"{self.prefix}chans:{ext}")
            found = await pipe.execute()
        return {ext: {_s(u) for u in uids} for ext, uids in zip(exts, found, strict=True) if uids}

    async def seat(self, extension: str) -> SeatStatus:
        async with asyncio.timeout(self.timeout_s):
            raw = await self.redis.hgetall(f"{self.prefix}seat:{extension}")
        if not raw:
            raise UnknownSeat(f"no seat {extension}")
        return seat_status(extension, {_s(k): _s(v) for k, v in raw.items()})

    # -- calls ---------------------------------------------------------------------------
    async def caller_priority(
        self, number: str, *, elderly_line: bool = False, now: float | None = None
    ) -> int:
        """Priority for a new call: a repeat caller (same number within the repeat window,
        remembered in Redis as ``seen:<number>``) and the elderly-care line rank higher."""
        now_s = self._now(now)
        last = None
        if number and number.isdigit():
            window = int(self.rules.priority.repeat_window_s)
            async with asyncio.timeout(self.timeout_s):
                previous = await self.redis.set(
                    f"{self.prefix}seen:{number}", _ms(now_s), ex=window, get=True
                )
            last = int(_s(previous)) / 1000 if previous else None
        repeat = self.rules.priority.is_repeat(last, now_s)
        return self.rules.priority.priority(repeat_caller=repeat, elderly_line=elderly_line)

    async def enqueue(
        self,
        call_id: str,
        skill: str,
        *,
        caller: str = "",
        language: str = "zh",
        priority: int = 0,
        now: float | None = None,
    ) -> int:
        """Put a caller in the skill's queue (idempotent); returns the position, 1 = next."""
        if not 0 <= priority <= PRIORITY_MAX:
            raise ValueError(f"priority {priority} outside 0-{PRIORITY_MAX}")
        try:
            position = await self._run(
                "enqueue",
                call_id,
                skill,
                language,
                priority,
                caller,
                _ms(self._now(now)),
                CallKind.VOICE.value,
                self.owner,
            )
        except ResponseError as exc:
            if "HOTLINE_UNKNOWN_SKILL" in str(exc):
                raise UnknownSkill(f"no skill {skill}") from exc
            raise
        log.info(
            "call %s from %s queued for %s at %s", call_id, mask_number(caller), skill, position
        )
        return int(position)

    async def waiting_call(self, call_id: str) -> WaitingCall | None:
        async with asyncio.timeout(self.timeout_s):
            raw = await self.redis.hgetall(f"{self.prefix}call:{call_id}")
            if not raw:
                return None
            c = {_s(k): _s(v) for k, v in raw.items()}
            if c["state"] != "waiting":
                return None
            rank: Any = await self.redis.zrank(f"{self.prefix}q:{c['skill']}", call_id)
        if rank is None:
            return None
        return WaitingCall(
            call_id=call_id,
            skill=c["skill"],
            caller=c["caller"],
            language=c["lang"],
            priority=int(c["prio"]),
            enqueued_at=int(c["enq"]) / 1000,
            kind=CallKind(c["kind"]),
            position=rank + 1,
        )

    async def entry(self, call_id: str) -> dict[str, str] | None:
        """The call's raw entry (state, owner, kind, seat, ...); None if Redis has none."""
        async with asyncio.timeout(self.timeout_s):
            raw = await self.redis.hgetall(f"{self.prefix}call:{call_id}")
        return {_s(k): _s(v) for k, v in raw.items()} if raw else None

    async def seats_in_calls(self) -> list[SeatStatus]:
        """Seats ringing or on a call now (for the check against Asterisk)."""
        exts = [seat.extension for seat in self.seats.seats]
        async with asyncio.timeout(self.timeout_s):  # one round trip, not one per seat
            pipe = self.redis.pipeline(transaction=False)
            for ext in exts:
                pipe.hgetall(f"{self.prefix}seat:{ext}")
            found = await pipe.execute()
        statuses = (
            seat_status(ext, {_s(k): _s(v) for k, v in raw.items()})
            for ext, raw in zip(exts, found, strict=True)
            if raw  # an unknown seat
        )
        return [s for s in statuses if s.state in (SeatState.RINGING, SeatState.ON_CALL)]

    async def waiting_ids(self) -> list[str]:
        """Every waiting call (voice and callbacks), oldest first."""
        async with asyncio.timeout(self.timeout_s):
            return [_s(m) for m in await self.redis.zrange(f"{self.prefix}waitall", 0, -1)]

    async def overdue_rings(self, before: float) -> list[tuple[str, str]]:
        """(seat, call) of every ring whose deadline passed before ``before``."""
        async with asyncio.timeout(self.timeout_s):
            seats = await self.redis.zrangebyscore(f"{self.prefix}ringing", "-inf", _ms(before))
            out = []
            for seat in seats:
                call = await self.redis.hget(f"{self.prefix}seat:{_s(seat)}", "call")
                if call:
                    out.append((_s(seat), _s(call)))
        return out

    async def free_seat(self, extension: str, now: float | None = None) -> None:
        """A seat ringing or on a call that Asterisk shows no channel for, and whose call the
        ACD no longer holds: available again (on a call: through a zero wrap-up)."""
        status = await self.seat(extension)
        if status.state is SeatState.RINGING:
            await self._transition(extension, SeatEvent.RING_CANCEL, now)
        elif status.state is SeatState.ON_CALL:
            await self._transition(extension, SeatEvent.HANGUP, now)
            await self._transition(extension, SeatEvent.WRAP_UP_DONE, now)

    async def position(self, call_id: str) -> int | None:
        """1 = next; None if the call is not waiting (offered, connected, gone, or lost)."""
        call = await self.waiting_call(call_id)
        return call.position if call else None

    async def estimated_wait(self, call_id: str) -> float | None:
        """Seconds the caller may still wait (``inf`` if nobody holding the skill is in)."""
        call = await self.waiting_call(call_id)
        if call is None:
            return None
        async with asyncio.timeout(self.timeout_s):
            staffed = await self.redis.scard(f"{self.prefix}staff:{call.skill}")
            aht = await self.redis.hget(f"{self.prefix}aht", call.skill)
        aht_s = int(float(_s(aht))) / 1000 if aht else self.rules.default_aht_s
        return estimated_wait_s(call.position, staffed, aht_s)

    async def to_callback(self, call_id: str, number: str, now: float | None = None) -> int:
        """The caller pressed 1 for a callback: keep the place, ring a seat first later.
        Returns the kept position; raises CallStateError if the call is not waiting."""
        position = int(await self._run("callback", call_id, number, _ms(self._now(now))))
        if not position:
            raise CallStateError(f"call {call_id} is not waiting")
        log.info(
            "call %s converted to callback to %s at %s", call_id, mask_number(number), position
        )
        return position

    async def dispatch_once(self, now: float | None = None, limit: int = 1000) -> list[Assignment]:
        """One atomic routing step: match as many waiting callers to seats as possible.
        Each assigned seat is ringing; the engine rings it and calls :meth:`answered`."""
        rows = await self._run("dispatch", *self._dispatch_args(now, limit))
        return self._assignments(rows)

    def _dispatch_args(self, now: float | None, limit: int) -> list[Any]:
        return [_ms(self._now(now)), limit, self.scan, self._rules_json]

    def dispatch_command(self, now: float | None = None, limit: int = 1000) -> list[Any]:
        """The EVALSHA command of :meth:`dispatch_once`'s routing step, for a client other
        than this Acd's (``bench.acd_routing`` times it through a plain connection; the
        script must be loaded, e.g. by one :meth:`dispatch_once`)."""
        script = self._scripts["dispatch"]
        return ["EVALSHA", script.sha, 0, self.prefix, *self._dispatch_args(now, limit)]

    async def enter(
        self, call_id: str, skill: str, *, caller: str = "", language: str = "zh",
        now: float | None = None, limit: int = 1000,
    ) -> Entered:  # fmt: skip
        """A voice caller joins its queue and a routing step runs, in one Lua call: its
        priority (:meth:`caller_priority`'s rule), its position, and the step's decisions
        (one for this caller when a seat is free for it)."""
        priority = self.rules.priority
        try:
            prio, position, rows = await self._run(
                "enter", call_id, skill, language, caller,
                caller if caller and caller.isdigit() else "", _ms(self._now(now)), self.owner,
                int(priority.repeat_window_s * 1000), priority.priority(repeat_caller=True),
                limit, self.scan, self._rules_json,
            )  # fmt: skip
        except ResponseError as exc:
            if "HOTLINE_UNKNOWN_SKILL" in str(exc):
                raise UnknownSkill(f"no skill {skill}") from exc
            raise
        log.info("call %s from %s queued for %s at %s (priority %s)", call_id,
                 mask_number(caller), skill, position, prio)  # fmt: skip
        return Entered(int(prio), int(position), self._assignments(rows))

    def _assignments(self, rows: list[Any]) -> list[Assignment]:
        out = [
            Assignment(
                call_id=_s(r[0]),
                seat=_s(r[1]),
                skill=_s(r[2]),
                language=_s(r[3]),
                caller=_s(r[4]),
                priority=int(r[5]),
                kind=CallKind(_s(r[6])),
                waited_s=int(r[7]) / 1000,
                relax_step=int(r[8]),
                level=int(r[9]),
                ring_until=int(r[10]) / 1000,
            )
            for r in rows
        ]
        for a in out:
            log.info("call %s from %s -> seat %s (%s, waited %.1fs, relax step %s)",
                     a.call_id, mask_number(a.caller), a.seat, a.skill, a.waited_s,
                     a.relax_step)  # fmt: skip
        return out

    async def answered(self, call_id: str, now: float | None = None) -> str:
        """The ringing seat answered; returns the seat. CallStateError if no longer offered."""
        try:
            seat, _waited = await self._run("answer", call_id, _ms(self._now(now)))
        except ResponseError as exc:
            if "HOTLINE_CALL_STATE" in str(exc) or "HOTLINE_SEAT_STATE" in str(exc):
                raise CallStateError(f"call {call_id}: {exc}") from exc
            raise
        return _s(seat)

    async def native(
        self, op: str, call_id: str, *, seat: str = "", skill: str = "", at: float, data: str = ""
    ) -> str:
        """A call in Asterisk's own Queue() (``op``: join, abandon, connect, complete), logged
        as the ACD's events and kept in the seat's state (queueing/lua/native.lua); returns
        the seat's state before."""
        return _s(await self._run("native", op, call_id, seat, skill, _ms(at), data))

    async def hangup(self, call_id: str, now: float | None = None) -> Released:
        """The caller's channel is gone, or the conversation ended: abandoned while waiting
        or ringing (the ringing seat is released at once), completed once connected (the
        seat enters its wrap-up). A waiting callback is kept (outcome ``kept``): the caller
        hung up on purpose."""
        return await self._release(call_id, now, force=False)

    async def cancel(self, call_id: str, now: float | None = None) -> Released:
        """Like :meth:`hangup`, but a waiting callback is dropped too (abandoned)."""
        return await self._release(call_id, now, force=True)

    async def not_reached(self, call_id: str, now: float | None = None) -> Released:
        """A callback's seat answered and dialled the citizen, who did not answer: no call
        was handled. The seat is available at once (no wrap-up), the attempt counts neither
        as answered nor in AHT but as a callback not reached (outcome ``unreached``). Any
        other call is released as by :meth:`hangup`."""
        return await self._release(call_id, now, force=False, unreached=True)

    async def _release(
        self, call_id: str, now: float | None, *, force: bool, unreached: bool = False
    ) -> Released:
        outcome, seat, duration = await self._run(
            "release", call_id, _ms(self._now(now)), str(self.aht_alpha), "1" if force else "0",
            "1" if unreached else "0",
        )  # fmt: skip
        released = Released(call_id, _s(outcome), _s(seat), int(duration) / 1000)
        log.info("call %s %s (seat %s, %.1fs)", call_id, released.outcome, released.seat,
                 released.duration_s)  # fmt: skip
        return released

    async def requeue_head(
        self, call_id: str, now: float | None = None, reason: str = NO_ANSWER_REASON
    ) -> Requeued | None:
        """RONA, a refused or failed ring, or the seat unregistered mid-ring: the call goes
        back to its place at the head of its queue; the seat is paused with ``reason``."""
        rows = await self._run("requeue", call_id, _ms(self._now(now)), check_reason(reason))
        if not rows:
            return None
        log.warning("call %s back to queue head; seat %s paused %s", call_id, _s(rows[1]), reason)
        return Requeued(call_id, _s(rows[1]))

    async def expire_rings(self, now: float | None = None) -> list[Requeued]:
        """Apply RONA to every seat ringing past its ring timeout."""
        rows = await self._run("requeue", "", _ms(self._now(now)), NO_ANSWER_REASON)
        out = [Requeued(_s(rows[i]), _s(rows[i + 1])) for i in range(0, len(rows), 2)]
        for r in out:
            log.warning("call %s: seat %s did not answer (RONA), paused", r.call_id, r.seat)
        return out

    # -- consultations (queueing/lua/consult.lua) ----------------------------------------
    async def consult_seat(
        self, call_id: str, seat: str, skill: str, now: float | None = None
    ) -> str | None:
        """The seat ``skill``'s queue would give the connected call ``call_id`` now, rung
        for ``seat``'s consultation (offered no caller meanwhile); None if none is free."""
        try:
            row = await self._run("consult", "reserve", call_id, seat, _ms(self._now(now)),
                                  skill, self._rules_json)  # fmt: skip
        except ResponseError as exc:
            if "HOTLINE_UNKNOWN_SKILL" in str(exc):
                raise UnknownSkill(f"no skill {skill}") from exc
            if "HOTLINE_CALL_STATE" in str(exc):
                raise CallStateError(f"call {call_id}: {exc}") from exc
            raise
        if not row:
            log.info("call %s: no seat of %s free for seat %s's consultation", call_id, skill,
                     seat)  # fmt: skip
            return None
        log.info("call %s: seat %s chosen in %s for seat %s's consultation (level %s)",
                 call_id, _s(row[0]), skill, seat, row[1])  # fmt: skip
        return _s(row[0])

    async def consult_handover(self, call_id: str, seat: str, now: float | None = None) -> str:
        """The consultation was put through: the consulted ``seat`` is on the call, the seat
        it leaves (returned) enters its wrap-up. CallStateError if ``seat`` no longer rings
        for this call's consultation."""
        try:
            left = await self._run("consult", "handover", call_id, seat, _ms(self._now(now)),
                                   str(self.aht_alpha))  # fmt: skip
        except ResponseError as exc:
            if "HOTLINE_CALL_STATE" in str(exc) or "HOTLINE_SEAT_STATE" in str(exc):
                raise CallStateError(f"call {call_id}: {exc}") from exc
            raise
        log.info("call %s handed over from seat %s to seat %s", call_id, _s(left), seat)
        return _s(left)

    async def consult_free(self, call_id: str, seat: str, now: float | None = None) -> bool:
        """The consultation ended without a handover: ``seat`` is available again (True), if
        it still rang for it."""
        return bool(await self._run("consult", "free", call_id, seat, _ms(self._now(now))))

    # -- statistics ---------------------------------------------------------------------
    async def snapshot(self, now: float | None = None) -> AcdSnapshot:
        """Waiting per queue, longest wait, staffing and seats by state, for supervisors."""
        async with asyncio.timeout(self.timeout_s):
            return await read_snapshot(
                self.redis,
                self.prefix,
                [s.name for s in self.seats.skills],
                self._now(now),
                self.rules.default_aht_s,
            )


__all__ = ["Acd", "AcdError"]
