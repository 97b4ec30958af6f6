"""Seats busy on a channel of their own: a seat on any call — a feature-code call such as
*24, a call it dialled, the ring of a caller — is offered no other caller until that
channel hangs up.

AMI ``Newchannel`` and ``Hangup`` of a seat's channel (``PJSIP/<ext>-...``) are applied to
the ACD (:meth:`Acd.channel_up` / :meth:`Acd.channel_down`, ``queueing/lua/channel.lua``):
while a seat has a live channel it is in no available index, so the routing step skips
it. The feature-code route marks its own channel too (:mod:`agents.feature_codes`), since
its FastAGI session may start before the engine reads the ``Newchannel`` event. A missed
``Hangup`` (AMI reconnecting) is put right against Asterisk's channel list every
``interval_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from panoramisk.message import Message
from redis.exceptions import RedisError

from pbx.ami import AmiActionError, AmiUnavailable
from queueing.acd import Acd
from queueing.channels import ListChannels, seat_of
from queueing.models import AcdError

log = logging.getLogger(__name__)
_FAILURES = (RedisError, OSError, TimeoutError, AcdError, AmiActionError, AmiUnavailable)


class BusySeats:
    def __init__(
        self,
        acd: Acd,
        kick: Callable[[], None],
        list_channels: ListChannels,
        *,
        interval_s: float = 5.0,
    ) -> None:
        self.acd, self.kick, self.list_channels = acd, kick, list_channels
        self.interval_s = interval_s
        self._lock = asyncio.Lock()  # applies the events in the order AMI sent them
        self._tasks: set[asyncio.Task[None]] = set()

    def _seat(self, event: Message) -> str:
        ext = seat_of(event.get("Channel", ""))
        return ext if any(s.extension == ext for s in self.acd.seats.seats) else ""

    def on_newchannel(self, event: Message) -> None:
        """AMI Newchannel: a channel of a seat's own is up."""
        if ext := self._seat(event):
            self._spawn(self._apply(ext, event.get("Uniqueid", ""), live=True))

    def on_hangup(self, event: Message) -> None:
        """AMI Hangup: a seat's channel ended; the seat may be offerable again."""
        if ext := self._seat(event):
            self._spawn(self._apply(ext, event.get("Uniqueid", ""), live=False))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply(self, ext: str, uniqueid: str, *, live: bool) -> None:
        async with self._lock:
            try:
                if live:
                    await self.acd.channel_up(ext, uniqueid)
                elif await self.acd.channel_down(ext, uniqueid):
                    log.info("seat %s: its channel %s hung up; offerable again", ext, uniqueid)
                    self.kick()
            except _FAILURES as exc:
                log.warning("seat %s: channel %s %s not applied (%s); the check against "
                            "Asterisk retries", ext, uniqueid, "up" if live else "down",
                            exc)  # fmt: skip

    async def check(self) -> None:
        """Channels the ACD still holds that Asterisk no longer has (a missed Hangup) go."""
        held = await self.acd.seat_channels()  # read before Asterisk's list: no false "gone"
        if not held:
            return
        alive = {channel.uniqueid for channel in await self.list_channels()}
        for ext, uniqueids in held.items():
            for uniqueid in uniqueids - alive:
                log.warning("seat %s: channel %s gone from Asterisk without a Hangup seen",
                            ext, uniqueid)  # fmt: skip
                await self._apply(ext, uniqueid, live=False)

    async def run(self, stopping: asyncio.Event, ready: Callable[[], bool]) -> None:
        """:meth:`check` every ``interval_s`` while ``ready()`` (AMI connected)."""
        while not stopping.is_set():
            if ready():
                try:
                    await self.check()
                except _FAILURES as exc:
                    log.warning("seats' channels not checked against Asterisk (%s)", exc)
            try:
                await asyncio.wait_for(stopping.wait(), self.interval_s)
            except TimeoutError:
                pass
        for task in list(self._tasks):
            task.cancel()
