"""A caller's ACD entry started from the dialplan's first line of ``hotline-queue``.

The first line of ``hotline-queue,<skill>`` raises the AMI ``UserEvent`` ``HotlineQueue``;
the engine runs the caller's entry Lua (:meth:`Dispatcher.enter`: queue entry and routing
step, a free seat chosen at once) while Asterisk still starts the recording and opens the
FastAGI ``queue`` connection. The ``queue`` route then claims the entry already under way
instead of starting it only then, so the Redis round trip overlaps Asterisk's own steps and a
free seat's phone rings sooner.

Only the engine the dialplan's FastAGI URL names acts on the event (several engines may share
one Asterisk, see :mod:`queueing.ownership`). An entry nobody claims (the caller hung up
before the FastAGI connection, or the engine's FastAGI is gone) is released when its channel
hangs up or after ``claim_within_s``, whichever comes first: a seat chosen for it is free again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from panoramisk.message import Message
from redis.exceptions import RedisError

from pbx.agi_channel import AgiCall
from queueing.dispatcher import Dispatcher
from queueing.models import AcdError, Entered

log = logging.getLogger(__name__)

#: the UserEvent the dialplan's first line of hotline-queue raises
QUEUE_EVENT = "HotlineQueue"


@dataclass(frozen=True)
class QueueEvent:
    """What the ``HotlineQueue`` event says: the call as its FastAGI headers will, the
    caller's language and the FastAGI address the dialplan will connect to."""

    call: AgiCall
    language: str
    agi: str  # host:port

    @classmethod
    def from_event(cls, event: Message) -> QueueEvent:
        number = event.get("CallerIDNum", "")
        call = AgiCall.from_headers({  # the same parsing as the FastAGI headers'
            "agi_uniqueid": event.get("Uniqueid", ""),
            "agi_channel": event.get("Channel", ""),
            "agi_callerid": "unknown" if number in {"", "<unknown>"} else number,
            "agi_calleridname": event.get("CallerIDName", "").replace("<unknown>", ""),
            "agi_extension": event.get("Exten", ""),
        })  # fmt: skip
        return cls(call, event.get("HotlineLanguage", ""), event.get("FastAgi", ""))


class EarlyEntries:
    """Entries started on the ``HotlineQueue`` event, until the ``queue`` route claims them."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        release: Callable[[str, str], Awaitable[None]],
        agi_address: str,
        *,
        claim_within_s: float = 10.0,
    ) -> None:
        self.dispatcher = dispatcher
        self._release = release  # (call id, who): the ACD lets the call go, seat freed
        self.agi_address = agi_address
        self.claim_within_s = claim_within_s
        self._pending: dict[str, tuple[asyncio.Task[Entered], asyncio.TimerHandle]] = {}
        self._cleanups: set[asyncio.Task[None]] = set()

    def start(self, event: QueueEvent) -> bool:
        """Start the entry of the event's caller; False when it is not this engine's."""
        call = event.call
        if event.agi != self.agi_address or not call.uniqueid or call.uniqueid in self._pending:
            return False
        language = event.language or "zh"  # as the route: the AGI argument, else "zh"
        self.dispatcher.expect(call.uniqueid)
        task = asyncio.ensure_future(
            self.dispatcher.enter(call.uniqueid, call.dialed, call.caller.number or "", language)
        )
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.claim_within_s, self.drop, call.uniqueid)
        self._pending[call.uniqueid] = (task, timer)
        return True

    def claim(self, call_id: str) -> asyncio.Task[Entered] | None:
        """The entry under way for ``call_id`` (the route awaits it), or None."""
        found = self._pending.pop(call_id, None)
        if found is None:
            return None
        task, timer = found
        timer.cancel()
        return task

    def on_hangup(self, event: Message) -> None:
        """AMI Hangup: an entry its caller never reached the route for is released."""
        self.drop(event.get("Uniqueid", ""))

    def drop(self, call_id: str) -> None:
        found = self._pending.pop(call_id, None)
        if found is None:
            return
        task, timer = found
        timer.cancel()
        cleanup = asyncio.ensure_future(self._drop(call_id, task))
        self._cleanups.add(cleanup)
        cleanup.add_done_callback(self._cleanups.discard)

    async def _drop(self, call_id: str, task: asyncio.Task[Entered]) -> None:
        who = f"call {call_id}"
        try:
            await task
        except (AcdError, RedisError, OSError, TimeoutError):
            log.warning("%s: its early queue entry failed and nobody claimed it", who)
            self.dispatcher.forget(call_id)
            return
        log.warning("%s: queued but it never reached the queue route; released", who)
        self.dispatcher.forget(call_id)
        await self._release(call_id, who)
