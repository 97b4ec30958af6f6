"""A seat's softphone registration, from AMI ``ContactStatus`` events, applied to the ACD.

A contact that goes away (unregistered, expired, unreachable) pauses the seat as
"unregistered" and sends a call ringing there back to its queue head; a new or reachable
contact makes a seat paused only for that available again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from panoramisk.message import Message
from redis.exceptions import RedisError

from queueing.acd import Acd
from queueing.models import AcdError

log = logging.getLogger(__name__)

# Ends the ring still going to a seat's (gone) softphone, given the extension.
EndRing = Callable[[str], Awaitable[None]]

UP = {"Created", "Reachable", "NonQualified", "Updated"}
DOWN = {"Removed", "Unreachable"}


@dataclass(frozen=True)
class ContactChange:
    seat: str  # the AOR, named after the seat's extension
    status: str
    uri: str

    @classmethod
    def from_event(cls, event: Message) -> ContactChange:
        return cls(event.get("AOR", ""), event.get("ContactStatus", ""), event.get("URI", ""))


class RegistrationWatch:
    def __init__(self, acd: Acd, end_ring: EndRing | None = None) -> None:
        self.acd = acd
        self._end_ring = end_ring
        self._tasks: set[asyncio.Task[None]] = set()
        self.registered: dict[str, bool] = {}

    def on_contact_status(self, event: Message) -> None:
        change = ContactChange.from_event(event)
        if change.seat not in {s.extension for s in self.acd.seats.seats}:
            return
        if change.status not in UP | DOWN:
            return
        task = asyncio.create_task(self._apply(change), name=f"contact-{change.seat}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply(self, change: ContactChange) -> None:
        up = change.status in UP
        self.registered[change.seat] = up
        log.info("seat %s softphone %s (%s)", change.seat, change.status, change.uri)
        try:
            if up:
                await self.acd.registered(change.seat)
            else:
                requeued = await self.acd.unregistered(change.seat)
                if requeued is not None:
                    log.warning("call %s back to its queue head: seat %s unregistered mid-ring",
                                requeued.call_id, change.seat)  # fmt: skip
                    if self._end_ring is not None:
                        await self._end_ring(change.seat)
        except (AcdError, RedisError, OSError, TimeoutError, ValueError):
            log.exception("seat %s: registration change %s not applied", change.seat,
                          change.status)  # fmt: skip
