"""The FastAGI ``queue`` route: a citizen waits in the engine's ACD and reaches a seat.

The path: the dialplan's ``hotline-queue,<skill>`` runs ``AGI(agi://.../queue)`` →
:meth:`QueueRoute.run`: the caller is enqueued and a routing step runs in one Lua call
(:meth:`Acd.enter`: priority, position, a free seat chosen at once),
plays hold music, announces position and estimated wait every
``announce_interval_s``, offers the callback after ``callback_after_s`` (1 = keep the
place, hang up) → the dispatcher's decision arrives → the caller's own channel dials the
seat → DIALSTATUS tells the ACD how it went.

Why ``Dial()`` from the caller's channel (AGI ``EXEC Dial``) rather than AMI Originate +
Bridge: Asterisk then does the ringing, the ring timeout, the caller ID (the citizen's
number shows on the seat's phone), hold music while ringing and the bridge natively, in
one place; a caller hanging up while the seat rings cancels the ring at once; and if the
engine dies mid-call the conversation goes on. AMI still carries what the engine learns:
``DialEnd`` says when the seat answered (→ :meth:`Acd.answered`, listeners' ``connected``).
Callbacks, where no citizen channel exists yet, ring the seat by AMI Originate
(:mod:`queueing.callback`).

Whatever goes wrong on the engine's side (Redis down for longer than ``redis_grace_s``, an
unexpected error), the route ends without setting ``HOTLINE_QUEUE_RESULT`` and the dialplan
sends the caller to Asterisk's own ``Queue(hotline-<skill>)``: nobody is dropped. So does a
caller who waited ``max_wait_s`` (the overflow). A Redis that comes back without the
caller's entry (it lost its data) gets it again from the session, with the original
arrival time. If the engine dies while a seat talks with the caller, the dialplan sees
``DIALSTATUS`` ANSWER and hangs up instead of queueing the caller a second time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from redis.exceptions import RedisError

from calls.callerid import mask_number
from calls.lifecycle import ConnectedCall
from ivr.tree import Prompt
from pbx.agi_channel import AgiChannel, AgiCommandError, CallerHungUp
from queueing.acd import Acd
from queueing.announce import Announcer, position_sentence, sentence
from queueing.callback import may_call_back
from queueing.dialing import DialEnd, DialWatch, Listeners
from queueing.dispatcher import Dispatcher
from queueing.models import AcdError, Assignment

log = logging.getLogger(__name__)

# A waiting caller's channel runs one long WAIT FOR DIGIT (music on) until the next thing
# due: an announcement, the callback offer, the overflow, or at most this long. A seat's
# decision ends it at once: the engine queues the digit _WAKE_DIGIT on the channel as if the
# caller had pressed it (AMI PlayDTMF with Receive), so the seat rings without polling.
_LONGEST_WAIT_S = 10.0
_WAKE_DIGIT = "D"  # no citizen's keypad sends it
_ENTRY_CHECK_S = 2.0  # how often a waiting session checks that Redis still has its caller
_MAX_CALL_S = 4 * 3600.0
_DIGIT_1 = "49"
# A caller transferred into a queue again (queueing.transfer) waits this long at most for
# its earlier session (the call at the first seat) to be released before it is enqueued.
_EARLIER_SESSION_S = 15.0


# Stops the announcement playing on a channel (AMI ControlPlayback), given channel and who;
# a WakeCaller ends the channel's WAIT FOR DIGIT (AMI PlayDTMF Receive of _WAKE_DIGIT).
StopPlayback = Callable[[str, str], Awaitable[None]]
WakeCaller = Callable[[str, str, str], Awaitable[None]]  # channel, digit, who


@dataclass(frozen=True)
class QueueOptions:
    announce_interval_s: float = 45.0
    callback_after_s: float = 0.0  # 0: never offered
    musicclass: str = "default"
    # Callers whose number this matches are offered a callback (callback.may_call_back).
    callback_numbers: re.Pattern[str] | None = None
    max_wait_s: float = 0.0  # then the overflow: the native queue (0: no limit)
    redis_grace_s: float = 10.0  # Redis unreachable this long: the native queue


@dataclass
class _Entry:
    """What the session knows of its caller's ACD entry (to enqueue it again)."""

    call_id: str
    skill: str
    caller: str
    language: str
    priority: int
    enqueued_at: float
    redis_down_since: float | None = None


_T = TypeVar("_T")


class QueueRoute:
    def __init__(
        self,
        acd: Acd,
        dispatcher: Dispatcher,
        dials: DialWatch,
        announcer: Announcer,
        listeners: Listeners,
        options: QueueOptions,
        stop_playback: StopPlayback,
        wake: WakeCaller,
    ) -> None:
        self.acd, self.dispatcher, self.dials = acd, dispatcher, dials
        self.announcer, self.listeners, self.options = announcer, listeners, options
        self.stop_playback, self.wake = stop_playback, wake
        self.detached = False  # set when the engine lets callers go to the fallback
        self._background: set[asyncio.Future[str | None]] = set()
        self._sessions: dict[str, asyncio.Event] = {}  # by call id: set when it has ended

    async def run(self, agi: AgiChannel) -> None:
        """One session per call at a time: a caller transferred to another queue comes back
        with the same call id while its first session still releases the first seat."""
        call_id = agi.call.uniqueid
        earlier = self._sessions.get(call_id)
        ended = self._sessions[call_id] = asyncio.Event()
        try:
            if earlier is not None:
                await agi.command(f"SET MUSIC ON {self.options.musicclass}", deadline_s=10)
                try:
                    await asyncio.wait_for(earlier.wait(), _EARLIER_SESSION_S)
                except TimeoutError:
                    log.warning("call %s: its earlier queue session has not ended; queued anyway",
                                 call_id)  # fmt: skip
            await self._run(agi)
        except CallerHungUp:
            log.info("call %s hung up before joining its queue again", call_id)
        finally:
            ended.set()
            if self._sessions.get(call_id) is ended:
                del self._sessions[call_id]

    async def _run(self, agi: AgiChannel) -> None:
        call = agi.call
        number = call.caller.number or ""
        who = f"call {call.uniqueid} from {mask_number(number or 'unknown')}"
        skill = call.dialed
        try:
            # the dialplan passes the caller's language as the AGI's argument (no AGI turn)
            args = agi.call.args
            language = (args[0] if args else await agi.get_variable("HOTLINE_LANGUAGE")) or "zh"
            self.dispatcher.expect(call.uniqueid)
            # one Lua call: priority, queue entry and the routing step (a free seat rings now)
            entered = await self.dispatcher.enter(call.uniqueid, skill, number, language)
            priority, position = entered.priority, entered.position
        except CallerHungUp:
            self.dispatcher.forget(call.uniqueid)
            log.info("%s hung up before joining queue %s", who, skill)
            return
        except (AcdError, RedisError, OSError, TimeoutError, AgiCommandError):
            self.dispatcher.forget(call.uniqueid)
            log.exception("%s: the ACD cannot take the call; native queue fallback", who)
            return
        log.info("%s waits in queue %s at %s (priority %s, language %s)", who, skill, position,
                 priority, language)  # fmt: skip
        result = "abandoned"
        try:
            entry = _Entry(call.uniqueid, skill, number, language, priority, time.time())
            result = await self._wait_and_connect(agi, who, language, entry)
            if result == "overflow":
                log.warning("%s waited %.0f s, the longest allowed: overflow to the native queue",
                            who, self.options.max_wait_s)  # fmt: skip
                await self._release(call.uniqueid, who)
            else:
                try:
                    await agi.set_variable("HOTLINE_QUEUE_RESULT", result)
                except CallerHungUp:
                    log.debug("%s already gone after %s", who, result)
        except CallerHungUp:
            if self.detached:
                log.warning("%s: engine detached; the dialplan's fallback queue takes the call",
                            who)  # fmt: skip
                result = "fallback"
            await self._release(call.uniqueid, who)
        except (RedisError, OSError, TimeoutError, AgiCommandError, AcdError):
            log.exception("%s: ACD failed while waiting; native queue fallback", who)
            await self._release(call.uniqueid, who)
        finally:
            self.dispatcher.forget(call.uniqueid)
            self.dials.forget(call.uniqueid)
        log.info("%s leaves queue %s: %s", who, skill, result)

    async def _release(self, call_id: str, who: str) -> str:
        """End the call in the ACD; returns the seat that served it last ("" if unknown)."""
        seat = ""
        try:
            released = await self.acd.hangup(call_id)
            seat = released.seat
            log.info("%s released: %s after %.1f s (seat %s)", who, released.outcome,
                     released.duration_s, released.seat or "-")  # fmt: skip
        except (RedisError, OSError, TimeoutError, AcdError):
            log.exception("%s: could not release the call in the ACD", who)
        self.dispatcher.kick()
        return seat

    async def _wait_and_connect(
        self, agi: AgiChannel, who: str, language: str, entry: _Entry
    ) -> str:
        call_id = agi.call.uniqueid
        loop = asyncio.get_running_loop()
        entered = loop.time()
        next_announce = entered + self.options.announce_interval_s
        offered = False
        assignment = self.dispatcher.wait_for_seat(call_id)  # a free seat: decided at entry
        music = not assignment.done()  # a seat free at entry rings without a turn for music
        if music:
            await agi.command(f"SET MUSIC ON {self.options.musicclass}", deadline_s=10)
        while True:
            if assignment.done():
                outcome = await self._ring(agi, who, assignment.result(), music=music)
                if outcome != "requeued":
                    return outcome
                assignment = self.dispatcher.wait_for_seat(call_id)
                self.dispatcher.kick()
                await agi.command(f"SET MUSIC ON {self.options.musicclass}", deadline_s=10)
                music = True
                continue
            now = loop.time()
            if self.options.max_wait_s and now - entered >= self.options.max_wait_s:
                return "overflow"
            after = self.options.callback_after_s if self._may_call_back(agi) else 0
            if after > 0 and not offered and now - entered >= after:
                offered = True
                offer = sentence("callback-offer", language)
                if await self._say(agi, who, offer, assignment) == _DIGIT_1:
                    return await self._book_callback(agi, who, language, entry)
                continue
            if now >= next_announce:
                next_announce = now + self.options.announce_interval_s
                position = await self._tolerant(self.acd.position(call_id), entry, who)
                if position is not None:
                    wait = await self.acd.estimated_wait(call_id)
                    said = position_sentence(language, position, wait)
                    heard = await self._say(agi, who, said, assignment)
                    if heard == _DIGIT_1 and offered:
                        return await self._book_callback(agi, who, language, entry)
                continue
            due = [next_announce, now + _LONGEST_WAIT_S]
            if self.options.max_wait_s:
                due.append(entered + self.options.max_wait_s)
            if after > 0 and not offered:
                due.append(entered + after)
            code = await self._listen(agi, who, entry, assignment, min(due) - now)
            if code == _DIGIT_1 and offered:
                return await self._book_callback(agi, who, language, entry)

    async def _listen(
        self,
        agi: AgiChannel,
        who: str,
        entry: _Entry,
        assignment: asyncio.Future[Assignment],
        wait_s: float,
    ) -> str:
        """Music and one WAIT FOR DIGIT of ``wait_s``; returns the key pressed ("" for none).
        A seat's decision ends it at once; Redis is checked for the caller's entry meanwhile
        (every ``_ENTRY_CHECK_S``, without a turn on the channel)."""
        ms = max(1, int(wait_s * 1000))
        waiting = asyncio.ensure_future(agi.command(f"WAIT FOR DIGIT {ms}", deadline_s=wait_s + 10))
        try:
            while not waiting.done():
                pending: list[asyncio.Future[Any]] = [waiting, assignment]
                await asyncio.wait(pending, timeout=_ENTRY_CHECK_S,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                if waiting.done():
                    break
                if assignment.done():
                    await self.wake(agi.call.channel, _WAKE_DIGIT, who)
                    break
                await self._check_entry(entry, who, assignment)
            code, _ = await waiting
        finally:
            if not waiting.done():
                waiting.cancel()  # the session ends (an error): its channel goes too
        return "" if code in {"", "0", str(ord(_WAKE_DIGIT))} else code

    async def _check_entry(
        self, entry: _Entry, who: str, assignment: asyncio.Future[Assignment]
    ) -> None:
        """Redis still holds the caller's entry; if it lost it, enqueue the caller again."""
        found = await self._tolerant(self.acd.entry(entry.call_id), entry, who, missing=False)
        if found is not None or assignment.done():
            return
        position = await self._tolerant(
            self.acd.enqueue(entry.call_id, entry.skill, caller=entry.caller,
                             language=entry.language, priority=entry.priority,
                             now=entry.enqueued_at),
            entry, who,
        )  # fmt: skip
        log.warning("%s: Redis had lost the caller's entry; queued again at %s", who, position)
        self.dispatcher.kick()

    async def _tolerant(
        self, op: Awaitable[_T], entry: _Entry, who: str, *, missing: _T | None = None
    ) -> _T | None:
        """Run a Redis operation; while Redis is unreachable the caller keeps waiting (and
        ``missing`` is returned) until ``redis_grace_s`` has passed, then the error goes up
        (the caller goes to the native queue)."""
        try:
            result = await op
        except (RedisError, OSError, TimeoutError) as exc:
            now = time.monotonic()
            if entry.redis_down_since is None:
                entry.redis_down_since = now
                log.warning("%s: Redis unreachable (%s); the caller keeps waiting up to %.0f s",
                            who, exc, self.options.redis_grace_s)  # fmt: skip
            if now - entry.redis_down_since > self.options.redis_grace_s:
                raise
            return missing
        if entry.redis_down_since is not None:
            log.info("%s: Redis reachable again", who)
            entry.redis_down_since = None
        return result

    async def _say(
        self, agi: AgiChannel, who: str, prompt: Prompt, seat: asyncio.Future[Assignment]
    ) -> str:
        """Play one sentence (interruptible by 1), then the music again; returns the key.
        A seat chosen meanwhile cuts it short (AMI ControlPlayback): the seat rings at once."""
        making = asyncio.ensure_future(self.announcer.file(prompt, who))
        self._background.add(making)
        making.add_done_callback(self._background.discard)
        first: list[asyncio.Future[Any]] = [making, seat]
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if seat.done() or making.result() is None:
            return ""
        await agi.command("SET MUSIC OFF", deadline_s=10)
        play = asyncio.ensure_future(
            agi.command(f'CONTROL STREAM FILE "{making.result()}" "1"', deadline_s=60)
        )
        pending: list[asyncio.Future[Any]] = [play, seat]
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if not play.done():
            await self.stop_playback(agi.call.channel, who)
        code, _ = await play
        await agi.command(f"SET MUSIC ON {self.options.musicclass}", deadline_s=10)
        return code

    def _may_call_back(self, agi: AgiChannel) -> bool:
        rule = self.options.callback_numbers
        return rule is not None and may_call_back(agi.call.caller.number, rule)

    async def _book_callback(self, agi: AgiChannel, who: str, language: str, entry: _Entry) -> str:
        number = agi.call.caller.number or ""
        if not self._may_call_back(agi):
            log.info("%s pressed 1 for a callback but has no number we call back; keeps waiting",
                     who)  # fmt: skip
            return await self._wait_and_connect(agi, who, language, entry)
        position = await self.acd.to_callback(agi.call.uniqueid, number)
        log.info("%s booked a callback at position %s", who, position)
        await agi.command("SET MUSIC OFF", deadline_s=10)
        file = await self.announcer.file(sentence("callback-booked", language), who)
        if file is not None:
            await agi.command(f'STREAM FILE "{file}" ""', deadline_s=60)
        return "callback"

    async def _ring(self, agi: AgiChannel, who: str, a: Assignment, *, music: bool) -> str:
        """Dial the chosen seat from the caller's channel (the hold music stopped first, if
        it plays); 'connected', or 'requeued'."""
        call = agi.call
        ring_s = max(2, int(a.ring_until - time.time()))
        log.info("%s rings seat %s for %s s (%s, waited %.1f s)", who, a.seat, ring_s, a.skill,
                 a.waited_s)  # fmt: skip
        if music:
            await agi.command("SET MUSIC OFF", deadline_s=10)
        ended = self.dials.expect(call.uniqueid)
        dial = asyncio.ensure_future(
            agi.command(f"EXEC Dial PJSIP/{a.seat},{ring_s},mt", deadline_s=_MAX_CALL_S)
        )
        connected: ConnectedCall | None = None
        try:
            pending: list[asyncio.Future[Any]] = [dial, ended]
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            end = ended.result() if ended.done() and not ended.cancelled() else None
            if end is not None and end.status == "ANSWER":
                connected = await self._connected(a, call.channel, end, who)
            await dial  # the conversation (or the ring) is over
        except CallerHungUp:
            if connected is None:
                raise
        if connected is not None:
            await self._finished(connected, who)
            return "completed"
        status = await agi.get_variable("DIALSTATUS")
        if status == "ANSWER":  # DialEnd not seen in time: the conversation happened anyway
            await self._release(call.uniqueid, who)
            return "completed"
        log.warning("%s: seat %s did not take the call (%s)", who, a.seat, status or "?")
        if not self.dispatcher.decided(call.uniqueid):  # else already requeued and re-offered
            await self.acd.requeue_head(call.uniqueid)
        return "requeued"

    async def _connected(
        self, a: Assignment, channel: str, end: DialEnd, who: str
    ) -> ConnectedCall:
        try:
            await self.acd.answered(a.call_id)
        except AcdError:
            log.exception("%s: seat %s answered but the ACD no longer offered the call", who,
                          a.seat)  # fmt: skip
        except (RedisError, OSError, TimeoutError) as exc:
            # The conversation goes on regardless (and is recorded); the seat's state is put
            # right when the call ends (release) or by the check against Asterisk.
            log.warning("%s: seat %s answered; the ACD not told (Redis: %s)", who, a.seat, exc)
        log.info("%s connected to seat %s (%s)", who, a.seat, end.dest_channel)
        connected = ConnectedCall(
            call_id=a.call_id,
            caller_channel=channel,
            caller_number=a.caller or None,
            seat=a.seat,
            seat_channel=end.dest_channel,
            skill=a.skill,
            connected_at=datetime.now(UTC),
        )
        await self.listeners.connected(connected)
        return connected

    async def _finished(self, connected: ConnectedCall, who: str) -> None:
        """The conversation is over: the listeners hear of it with the seat that held the
        call last (a consultation may have put the caller through to another seat)."""
        seat = await self._release(connected.call_id, who)
        ended = replace(connected, ended_at=datetime.now(UTC))
        if seat and seat != connected.seat:
            ended = replace(ended, seat=seat, seat_channel="")
        await self.listeners.finished(ended)
