"""Seats and callers kept true to Asterisk after faults: a killed engine, a dead engine on
the same Redis, a missed AMI event.

:meth:`Recovery.reconcile` (at start, then every few seconds) compares the ACD with
Asterisk's channels. Entries no live session holds — left by this engine's previous life
(enqueued before it started) or by an engine whose lease expired — are orphans:

* a waiting voice caller is removed (the FastAGI session died with its engine, so the
  caller hung up or the dialplan put it into the native queue); callbacks stay;
* a seat whose call has no channel any more is freed: available, never paused;
* a seat that Asterisk's own queue connected (:mod:`queueing.native`) is left to that
  queue's events while its channel lives;
* a call a seat answered while no engine watched (or whose engine died mid-conversation)
  is announced to the connected-call listeners (recording, drafting) with its seat: connected
  when found, finished at its Hangup;
* a seat on another box's call (several Asterisk boxes behind Kamailio: the call id starts
  with that box's system name) is left to that box's engine, which sees its channels; once
  that engine is gone (its lease expired) the seat is released, so a dead box keeps no seat;
* a seat still in the call stays ``on_call`` (a ringing one becomes ``on_call`` once
  Asterisk shows it answered) until that channel's ``Hangup`` (:meth:`on_hangup`), then
  enters its wrap-up as after any call.

:meth:`check_rings` is the only place a ring past its deadline is paused (RONA), and only
after Asterisk confirms it: the seat's channel still rings. A seat Asterisk shows talking
is taken as answered (its DialEnd was missed: the caller's session goes on to the
conversation, recording included); a seat with no channel is left to the session, which
reads DIALSTATUS from Asterisk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from panoramisk.message import Message
from redis.exceptions import RedisError

from calls.lifecycle import ConnectedCall
from pbx.ami import AmiActionError, AmiUnavailable
from queueing.acd import Acd
from queueing.channels import Channel, ListChannels, seat_channel
from queueing.dialing import DialEnd, DialWatch, Listeners
from queueing.dispatcher import Dispatcher
from queueing.models import AcdError, CallKind
from queueing.ownership import Ownership

log = logging.getLogger(__name__)

# Hangs up a channel by name (a seat still ringing after Asterisk confirmed no answer).
HangupChannel = Callable[[str], Awaitable[None]]
_FAILURES = (RedisError, OSError, TimeoutError, AcdError, AmiActionError, AmiUnavailable)


class Recovery:
    def __init__(
        self,
        acd: Acd,
        dispatcher: Dispatcher,
        ownership: Ownership,
        list_channels: ListChannels,
        dials: DialWatch,
        hangup: HangupChannel,
        *,
        ring_grace_s: float = 2.0,
        interval_s: float = 1.0,
        native: Callable[[str], bool] = lambda _call_id: False,
        listeners: Listeners | None = None,
        box: str = "",
    ) -> None:
        self.acd, self.dispatcher, self.ownership = acd, dispatcher, ownership
        self.box = box  # this Asterisk's system name: the prefix of its call ids
        self.native = native  # calls Asterisk's own queue has connected (queueing.native)
        self.list_channels, self.dials, self.hangup = list_channels, dials, hangup
        self.ring_grace_s, self.interval_s = ring_grace_s, interval_s
        self.started_at = time.time()
        self._watched: dict[str, tuple[str, str]] = {}  # seat channel -> (seat, call id)
        self.listeners = listeners
        self._announced: dict[str, ConnectedCall] = {}  # orphaned calls told to the listeners
        self._tasks: set[asyncio.Task[None]] = set()

    # -- who holds a call -------------------------------------------------------------------
    async def _orphaned(self, call_id: str, entry: dict[str, str]) -> bool:
        if self.dispatcher.holds(call_id):
            return False
        owner = entry.get("owner", "")
        if owner in ("", self.ownership.me):
            return int(entry.get("enq") or 0) / 1000 < self.started_at
        return not await self.ownership.alive(owner)

    # -- the periodic check -----------------------------------------------------------------
    async def run(self, stopping: asyncio.Event, ready: Callable[[], bool]) -> None:
        """Check rings every ``interval_s``, reconcile every fifth round, once ``ready()``
        (AMI connected)."""
        rounds = 0
        while not stopping.is_set():
            if ready():
                try:
                    if rounds % 5 == 0:
                        await self.reconcile()
                    await self.check_rings()
                except _FAILURES as exc:
                    log.warning("ACD check against Asterisk failed (%s); next round retries", exc)
                rounds += 1
            try:
                await asyncio.wait_for(stopping.wait(), self.interval_s)
            except TimeoutError:
                pass

    async def reconcile(self) -> None:
        channels = await self.list_channels()
        for call_id in await self.acd.waiting_ids():
            entry = await self.acd.entry(call_id)
            if entry is None or entry.get("kind") == CallKind.CALLBACK.value:
                continue
            if await self._orphaned(call_id, entry):
                log.warning("call %s: its engine is gone, so is its session; entry removed",
                            call_id)  # fmt: skip
                await self.acd.cancel(call_id)
        for status in await self.acd.seats_in_calls():
            await self._reconcile_seat(status.extension, status.call_id, channels)

    async def _reconcile_seat(self, ext: str, call_id: str, channels: Sequence[Channel]) -> None:
        entry = await self.acd.entry(call_id) if call_id else None
        if entry is not None and not await self._orphaned(call_id, entry):
            return
        if call_id and self.box and not call_id.startswith(f"{self.box}-"):
            if entry is None:
                return  # another box's call (its own queue's): only its engine sees it
            released = await self.acd.cancel(call_id)
            log.warning("seat %s: call %s was on another box whose engine is gone; released "
                        "(%s), the seat is not paused", ext, call_id, released.outcome)  # fmt: skip
            self.dispatcher.kick()
            return
        channel = seat_channel(channels, ext)
        if channel is None:
            if entry is None:
                log.warning("seat %s: its call %s is gone from the ACD and from Asterisk; "
                            "the seat is free", ext, call_id or "-")  # fmt: skip
                await self.acd.free_seat(ext)
                return
            released = await self.acd.cancel(call_id)
            log.warning("seat %s: call %s has no channel left in Asterisk; released (%s), the "
                        "seat is not paused", ext, call_id, released.outcome)  # fmt: skip
            self.dispatcher.kick()
            return
        if entry is None and self.native(call_id):
            return  # connected by Asterisk's queue: its AgentComplete ends the seat's call
        if entry is not None and entry.get("state") == "offered" and channel.talking:
            await self.acd.answered(call_id)
            log.warning("seat %s answered call %s while no engine watched", ext, call_id)
            await self._announce(_connected_call(call_id, entry, ext, channel, channels), True)
        elif entry is not None and entry.get("state") == "connected":
            await self._announce(_connected_call(call_id, entry, ext, channel, channels), False)
        if channel.name not in self._watched:
            log.warning("seat %s: call %s goes on in Asterisk (%s); the seat stays busy until "
                        "that channel hangs up", ext, call_id or "-", channel.name)  # fmt: skip
        self._watched[channel.name] = (ext, call_id if entry is not None else "")

    async def _announce(self, call: ConnectedCall, connected_now: bool) -> None:
        """Tell the listeners of an orphaned call (connected, unless its engine did); they
        hear that it finished at its Hangup."""
        if self.listeners is None or call.call_id in self._announced:
            return
        self._announced[call.call_id] = call
        if connected_now:
            await self.listeners.connected(call)

    def on_hangup(self, event: Message) -> None:
        """AMI Hangup: a watched seat channel ended, so did its call."""
        watched = self._watched.pop(event.get("Channel", ""), None)
        if watched is None:
            return
        task = asyncio.create_task(self._ended(*watched), name=f"ended-{watched[0]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ended(self, ext: str, call_id: str) -> None:
        try:
            if call_id:
                released = await self.acd.hangup(call_id)
                log.info("seat %s: call %s ended (%s); the seat is released", ext, call_id,
                         released.outcome)  # fmt: skip
                announced = self._announced.pop(call_id, None)
                if announced is not None and self.listeners is not None:
                    await self.listeners.finished(replace(announced, ended_at=datetime.now(UTC)))
            else:
                await self.acd.free_seat(ext)
                log.info("seat %s: its last call ended; the seat is free", ext)
        except _FAILURES:
            log.exception("seat %s: the end of call %s not applied; next reconcile retries",
                          ext, call_id)  # fmt: skip
        self.dispatcher.kick()

    # -- rings past their deadline ----------------------------------------------------------
    async def check_rings(self) -> None:
        overdue = await self.acd.overdue_rings(time.time() - self.ring_grace_s)
        if not overdue:
            return
        channels: Sequence[Channel] | None = None
        for ext, call_id in overdue:
            entry = await self.acd.entry(call_id)
            if entry is None or entry.get("state") != "offered":
                continue
            voice = entry.get("kind") != CallKind.CALLBACK.value
            if voice and not self.dispatcher.holds(call_id):
                continue  # another engine's, or an orphan (reconcile)
            if channels is None:
                channels = await self.list_channels()
            channel = seat_channel(channels, ext)
            if channel is not None and channel.talking:
                if voice and self.dials.confirm(
                    DialEnd(call_id, channel.name, channel.uniqueid, "ANSWER")
                ):
                    log.warning("call %s: no DialEnd seen, but Asterisk shows seat %s talking: "
                                "answered", call_id, ext)  # fmt: skip
                continue
            if voice and channel is None:
                continue  # the ring is over: the session reads DIALSTATUS from Asterisk
            requeued = await self.acd.requeue_head(call_id)
            if requeued is not None:
                log.warning("call %s: seat %s still rang past its deadline (Asterisk: %s): "
                            "paused, the call back at its queue head", call_id, ext,
                            channel.state if channel else "no channel")  # fmt: skip
                if channel is not None:
                    await self.hangup(channel.name)
                self.dispatcher.kick()


def _connected_call(
    call_id: str, entry: dict[str, str], ext: str, seat: Channel, channels: Sequence[Channel]
) -> ConnectedCall:
    """An orphaned ACD call as the connected-call listeners know it."""
    caller = next((c.name for c in channels if c.uniqueid == call_id), "")
    answered = int(entry.get("answered_at") or 0) / 1000
    return ConnectedCall(
        call_id=call_id, caller_channel=caller, caller_number=entry.get("caller") or None,
        seat=ext, seat_channel=seat.name, skill=entry.get("skill", ""),
        connected_at=datetime.fromtimestamp(answered, UTC) if answered else datetime.now(UTC),
    )  # fmt: skip
