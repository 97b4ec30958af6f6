"""Calls in Asterisk's own ``Queue()`` (the dialplan's fallback when the engine, FastAGI or
Redis is unreachable, or a caller waited the ACD's longest wait), learnt from AMI.

Asterisk's queue events (read class ``agent``) become :class:`NativeQueueEvent`\\ s:
``QueueCallerJoin`` (join), ``QueueCallerAbandon`` (abandon), ``AgentConnect`` (connect),
``AgentComplete`` (complete). Each one goes two ways, each in arrival order and retried
until it lands (a Redis or database outage delays it, never drops it while the engine runs):

* into the call record (:class:`~calls.store.CallStore`): opened if the IVR never saw the
  call (FastAGI down), then a journey step per event;
* into the ACD (:meth:`queueing.acd.Acd.native`): the same ``enter``/``connect``/``abandon``/
  ``complete`` events the statistics count, and the seat's state: on_call while the native
  queue has it connected, wrap-up after, so the ACD never offers that seat meanwhile;
* to the connected-call listeners (:mod:`calls.lifecycle`: recording and work-order intake),
  as the engine's own queue announces its calls: connected, then finished, with the seat.

The caller's ``Hangup`` closes the call record after those steps, in the same order, so a
call the engine first heard of from the native queue does not keep an open record.

What a native queue did while no engine listened (a kill -9, a restart) is in Asterisk's
``queue_log``: at start the engine replays its lines from after the last native event any
engine applied (``<prefix>native:last`` in Redis) until it started (:func:`queue_log_events`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from panoramisk.message import Message
from redis.exceptions import RedisError, ResponseError
from sqlalchemy.exc import SQLAlchemyError

from agents.pjsip import QUEUE_PREFIX
from calls.callerid import mask_number, parse_caller_id
from calls.lifecycle import ConnectedCall
from calls.store import CallStore, JourneyStep
from queueing.acd import Acd
from queueing.dialing import Listeners
from queueing.models import AcdError

log = logging.getLogger(__name__)

#: AMI event -> what happened to the caller in the native queue
OPS = {
    "QueueCallerJoin": "join",
    "QueueCallerAbandon": "abandon",
    "AgentConnect": "connect",
    "AgentComplete": "complete",
}


def _seconds(value: str) -> int:
    return int(value) if value.isdigit() else 0


#: queue_log event -> op
LOGGED = {"ENTERQUEUE": "join", "CONNECT": "connect", "COMPLETECALLER": "complete",
          "COMPLETEAGENT": "complete", "ABANDON": "abandon"}  # fmt: skip


def queue_log_events(
    lines: Iterable[str], members: Mapping[str, str], after: int, until: int
) -> list[NativeQueueEvent]:
    """The hotline's native-queue events in Asterisk's queue_log lines
    (``epoch|uniqueid|queue|member name|EVENT|data...``) logged after ``after`` and up to
    ``until`` (epoch seconds); ``members`` maps a member's name to its seat."""
    events: list[NativeQueueEvent] = []
    callers: dict[str, str] = {}
    for line in lines:
        f = line.rstrip("\n").split("|")
        if len(f) < 5 or not f[0].isdigit() or not f[2].startswith(QUEUE_PREFIX):
            continue
        at, call_id, queue, member, name = int(f[0]), f[1], f[2], f[3], f[4]
        data = [*f[5:], "", "", ""]
        if name == "ENTERQUEUE":
            callers[call_id] = data[1]
        op = LOGGED.get(name)
        if op is None or not after < at <= until:
            continue
        ms = {"join": "0", "connect": data[0], "complete": data[1], "abandon": data[2]}[op]
        events.append(NativeQueueEvent(
            op=op, call_id=call_id, channel="", caller_raw=callers.get(call_id, ""),
            queue=queue, skill=queue[len(QUEUE_PREFIX):], seat=members.get(member, ""),
            at=float(at), ms=_seconds(ms) * 1000,
            reason={"COMPLETECALLER": "caller", "COMPLETEAGENT": "agent"}.get(name, ""),
        ))  # fmt: skip
    return events


def channel_created(uniqueid: str) -> datetime | None:
    """When Asterisk made the channel: its uniqueid is ``[<systemname>-]<epoch>.<n>``."""
    seconds = uniqueid.rsplit("-", 1)[-1].split(".", 1)[0]
    return datetime.fromtimestamp(int(seconds), UTC) if seconds.isdigit() else None


@dataclass(frozen=True)
class NativeQueueEvent:
    op: str  # join | abandon | connect | complete
    call_id: str  # the citizen channel's uniqueid (the call record's and the ACD's call id)
    channel: str
    caller_raw: str
    queue: str  # e.g. hotline-report
    skill: str
    seat: str  # the member's extension (connect, complete)
    at: float  # epoch seconds, when the engine heard of it
    ms: int  # wait (abandon, connect) or talk time (complete)
    reason: str = ""  # complete: who hung up (caller, agent, transfer); hangup: the cause
    seat_channel: str = ""  # connect, complete: the member's channel
    cause: int | None = None  # hangup: Asterisk's hangup cause

    @classmethod
    def from_ami(cls, event: Message, at: float) -> NativeQueueEvent | None:
        """None for events of queues that are not the hotline's, or without a caller."""
        op = OPS.get(event.get("Event", ""))
        queue = event.get("Queue", "")
        call_id = event.get("Uniqueid", "")
        if op is None or not queue.startswith(QUEUE_PREFIX) or not call_id:
            return None
        interface = event.get("Interface", "")
        seat = interface.split("/", 1)[1] if interface.upper().startswith("PJSIP/") else ""
        held = "TalkTime" if op == "complete" else "HoldTime"
        return cls(
            op=op,
            call_id=call_id,
            channel=event.get("Channel", ""),
            caller_raw=event.get("CallerIDNum", ""),
            queue=queue,
            skill=queue[len(QUEUE_PREFIX) :],
            seat=seat,
            at=at,
            ms=_seconds(event.get(held, "")) * 1000,
            reason=event.get("Reason", ""),
            seat_channel=event.get("DestChannel", ""),
        )

    @classmethod
    def hangup(cls, event: Message, at: float) -> NativeQueueEvent:
        cause = event.get("Cause", "")
        return cls(
            op="hangup", call_id=event.get("Uniqueid", ""), channel=event.get("Channel", ""),
            caller_raw=event.get("CallerIDNum", ""), queue="", skill="", seat="", at=at, ms=0,
            reason=event.get("Cause-txt", ""), cause=int(cause) if cause.isdigit() else None,
        )  # fmt: skip

    def connected_call(self) -> ConnectedCall:
        """The call as the connected-call listeners know it (``complete``: ended now)."""
        at = datetime.fromtimestamp(self.at, UTC)
        ended = self.op == "complete"
        return ConnectedCall(
            call_id=self.call_id, caller_channel=self.channel,
            caller_number=parse_caller_id(self.caller_raw).number, seat=self.seat,
            seat_channel=self.seat_channel, skill=self.skill,
            connected_at=datetime.fromtimestamp(self.at - self.ms / 1000, UTC) if ended else at,
            ended_at=at if ended else None,
        )  # fmt: skip

    def step(self) -> JourneyStep:
        """This event as a step of the call record's journey."""
        detail = {
            "join": "waits in Asterisk's queue (fallback)",
            "abandon": f"hung up after {self.ms // 1000} s in Asterisk's queue",
            "connect": f"seat {self.seat} answered after {self.ms // 1000} s",
            "complete": f"seat {self.seat}: talked {self.ms // 1000} s, ended by {self.reason}",
        }[self.op]
        return JourneyStep(self.op, self.queue, detail, datetime.fromtimestamp(self.at, UTC))


class _Ordered:
    """Events for one destination, applied in arrival order; the head is retried until it
    lands. Bounded: past ``limit`` the oldest is dropped (and logged)."""

    def __init__(self, name: str, apply: Callable[[NativeQueueEvent], Awaitable[None]],
                 limit: int, retry_s: float) -> None:  # fmt: skip
        self.name, self.apply, self.limit, self.retry_s = name, apply, limit, retry_s
        self.pending: deque[NativeQueueEvent] = deque()
        self.wake = asyncio.Event()

    def add(self, event: NativeQueueEvent) -> None:
        if len(self.pending) >= self.limit:
            lost = self.pending.popleft()
            log.error("native queue: %s of call %s not stored in the %s (backlog full)",
                      lost.op, lost.call_id, self.name)  # fmt: skip
        self.pending.append(event)
        self.wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        failing = False
        while not stopping.is_set():
            if not self.pending:
                self.wake.clear()
                waiter = asyncio.create_task(self.wake.wait())
                stop = asyncio.create_task(stopping.wait())
                await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stop.cancel()
                continue
            event = self.pending[0]
            try:
                await self.apply(event)
            except ResponseError as exc:  # refused by the script: retrying cannot help
                log.error("native queue: %s of call %s refused by the %s (%s)", event.op,
                          event.call_id, self.name, exc)  # fmt: skip
            except (RedisError, SQLAlchemyError, AcdError, OSError, TimeoutError) as exc:
                if not failing:
                    log.warning("native queue: the %s is unreachable (%s); %d events wait",
                                self.name, exc, len(self.pending))  # fmt: skip
                failing = True
                try:
                    await asyncio.wait_for(stopping.wait(), self.retry_s)
                except TimeoutError:
                    pass
                continue
            if failing:
                log.info("native queue: the %s is back; storing %d events", self.name,
                         len(self.pending))  # fmt: skip
                failing = False
            self.pending.popleft()


class NativeQueue:
    """Follows the hotline's native queues from AMI (subscribe :meth:`on_event` to the
    events in :data:`OPS`; run :meth:`run` as a supervised loop)."""

    def __init__(
        self,
        acd: Acd,
        calls: CallStore,
        listeners: Listeners,
        kick: Callable[[], None],
        *,
        clock: Callable[[], float],
        queue_log: Path | None = None,
        members: Mapping[str, str] | None = None,
        limit: int = 10_000,
        retry_s: float = 1.0,
    ) -> None:
        self.acd, self.calls, self.listeners = acd, calls, listeners
        self.kick, self.clock, self.limit = kick, clock, limit
        self._records = _Ordered("call records", self._store_record, limit, retry_s)
        self._acd = _Ordered("ACD", self._store_acd, limit, retry_s)
        self._intake = _Ordered("intake", self._announce, limit, retry_s)
        self._connected: dict[str, str] = {}  # call id -> seat, while connected natively
        self._known: dict[str, None] = {}  # calls seen in a native queue, until their hangup
        self.queue_log, self.members = queue_log, dict(members or {})
        self.started = int(clock())  # AMI connects later: its events come after this second
        self._marker = f"{acd.prefix}native:last"
        self._replayed = False

    def on_event(self, message: Message) -> None:
        event = NativeQueueEvent.from_ami(message, self.clock())
        if event is None:
            return
        log.info("call %s from %s: %s in %s%s", event.call_id, mask_number(event.caller_raw),
                 event.op, event.queue, f" (seat {event.seat})" if event.seat else "")  # fmt: skip
        if event.op == "connect":
            self._connected[event.call_id] = event.seat
        elif event.op in ("complete", "abandon"):
            self._connected.pop(event.call_id, None)
        self._add(event)

    def _add(self, event: NativeQueueEvent) -> None:
        self._known[event.call_id] = None
        while len(self._known) > self.limit:
            del self._known[next(iter(self._known))]
        self._records.add(event)
        self._acd.add(event)
        if event.op in ("connect", "complete"):
            self._intake.add(event)

    def on_hangup(self, message: Message) -> None:
        """AMI Hangup: the caller of a native-queue call hung up; its record is closed after
        the queue's steps (the engine's own Hangup handler may have found no record yet)."""
        call_id = message.get("Uniqueid", "")
        if call_id in self._known and call_id == message.get("Linkedid", call_id):
            del self._known[call_id]
            self._records.add(NativeQueueEvent.hangup(message, self.clock()))

    def follows(self, call_id: str) -> bool:
        """The native queue has this call connected now (its AgentComplete ends the seat's
        call; :mod:`queueing.recovery` leaves it alone)."""
        return call_id in self._connected

    @property
    def backlog(self) -> int:
        return sum(len(sink.pending) for sink in (self._records, self._acd, self._intake))

    async def replay(self) -> int:
        """Apply the queue_log lines no engine heard as events; returns how many."""
        if self._replayed or self.queue_log is None or not self.queue_log.exists():
            return 0
        self._replayed = True  # once per engine: a restarted loop must not apply them twice
        last = await self.acd.redis.get(self._marker)
        if last is None:  # the first engine to follow these queues: nothing to catch up on
            await self.acd.redis.set(self._marker, self.started)
            return 0
        after = int(last)
        text = await asyncio.to_thread(self.queue_log.read_text, errors="replace")
        events = queue_log_events(text.splitlines(), self.members, after, self.started)
        for event in events:
            self._add(event)
        if events:
            log.warning("native queue: %d events Asterisk logged while no engine listened "
                        "(since %s), applied from its queue_log", len(events), after)  # fmt: skip
        return len(events)

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            await self.replay()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("native queue: queue_log not replayed (%s)", exc)
        await asyncio.gather(
            self._records.run(stopping), self._acd.run(stopping), self._intake.run(stopping)
        )

    async def _announce(self, event: NativeQueueEvent) -> None:
        call = event.connected_call()
        if event.op == "connect":
            await self.listeners.connected(call)
        else:
            await self.listeners.finished(call)

    async def _store_record(self, event: NativeQueueEvent) -> None:
        if event.op == "hangup":
            ended = datetime.fromtimestamp(event.at, UTC)
            await self.calls.close(
                event.call_id, cause=event.cause, cause_text=event.reason or None, at=ended
            )
            return
        record = await self.calls.open(
            event.call_id, event.channel, parse_caller_id(event.caller_raw),
            started_at=channel_created(event.call_id),
        )  # fmt: skip
        await self.calls.add_steps(record, [event.step()])

    async def _store_acd(self, event: NativeQueueEvent) -> None:
        data = event.caller_raw if event.op == "join" else str(event.ms)
        before = await self.acd.native(
            event.op, event.call_id, seat=event.seat, skill=event.skill, at=event.at, data=data
        )
        async with asyncio.timeout(self.acd.timeout_s):  # what the next start replays after
            last = await self.acd.redis.get(self._marker)
            if int(last or 0) < int(event.at):
                await self.acd.redis.set(self._marker, int(event.at))
        if event.op == "connect" and before not in ("available", "wrap_up"):
            log.info("call %s: seat %s answered in Asterisk's queue while %s in the ACD",
                     event.call_id, event.seat, before or "unknown")  # fmt: skip
        if event.op == "complete":
            self.kick()  # the seat's wrap-up is timed; a seat without one is free now
