"""Ringing seats: the AMI events that tell the ACD how a ring ended, and the listeners.

:class:`DialWatch` turns AMI ``DialEnd`` events into awaitable outcomes per calling
channel (the caller's own channel dials the seat, see :mod:`queueing.connector`).
:class:`Listeners` announces connected and finished calls to the engine's
:class:`~calls.lifecycle.CallListener` s; their failures are logged, the call goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from panoramisk.message import Message

from calls.lifecycle import CallListener, ConnectedCall

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DialEnd:
    uniqueid: str  # the dialling channel
    dest_channel: str  # e.g. PJSIP/8001-00000002
    dest_uniqueid: str
    status: str  # ANSWER, NOANSWER, BUSY, CHANUNAVAIL, CONGESTION, CANCEL

    @classmethod
    def from_event(cls, event: Message) -> DialEnd:
        return cls(
            uniqueid=event.get("Uniqueid", ""),
            dest_channel=event.get("DestChannel", ""),
            dest_uniqueid=event.get("DestUniqueid", ""),
            status=event.get("DialStatus", ""),
        )


class DialWatch:
    """``expect(uniqueid)`` before dialling; the future resolves on that channel's DialEnd."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[DialEnd]] = {}

    def expect(self, uniqueid: str) -> asyncio.Future[DialEnd]:
        future: asyncio.Future[DialEnd] = asyncio.get_running_loop().create_future()
        self._waiting[uniqueid] = future
        return future

    def forget(self, uniqueid: str) -> None:
        future = self._waiting.pop(uniqueid, None)
        if future is not None and not future.done():
            future.cancel()

    def on_dial_end(self, event: Message) -> None:
        self.confirm(DialEnd.from_event(event))

    def confirm(self, end: DialEnd) -> bool:
        """Resolve the ring of ``end.uniqueid`` (from an event, or from Asterisk's channel
        list when the event was missed); False if nobody waits for it."""
        future = self._waiting.pop(end.uniqueid, None)
        if future is not None and not future.done():
            future.set_result(end)
            return True
        return False


class Listeners:
    def __init__(self, listeners: Sequence[CallListener], timeout_s: float = 10.0) -> None:
        self._listeners = tuple(listeners)
        self._timeout_s = timeout_s

    async def connected(self, call: ConnectedCall) -> None:
        for listener in self._listeners:
            await self._notify(listener, "connected", call)

    async def finished(self, call: ConnectedCall) -> None:
        for listener in self._listeners:
            await self._notify(listener, "finished", call)

    async def _notify(self, listener: CallListener, what: str, call: ConnectedCall) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                await getattr(listener, what)(call)
        except Exception:
            log.exception("call %s from %s at seat %s: listener %s failed on %s", call.call_id,
                          call.caller_number, call.seat, type(listener).__name__, what)  # fmt: skip
