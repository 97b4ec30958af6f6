"""The ACD's event log: written by the Lua scripts in the same atomic step as each decision
(Redis stream ``<prefix>events``, capped near 100,000 entries), read here as typed events.

Types (like Asterisk's queue_log): ``enter`` (data: caller), ``offer`` (data: wait ms),
``connect`` (data: wait ms), ``requeue`` (data: reason), ``abandon`` (data: wait ms),
``complete`` (data: talk ms), ``unreached`` (a callback's citizen did not answer the seat's
call; data: the seat's ms on it), ``callback`` (data: number), ``seat`` (data: "<state> <reason>").
A statistics writer tails the stream with :func:`read_events` and stores rows in SQL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis


@dataclass(frozen=True)
class AcdEvent:
    id: str  # stream id, monotonic: resume reading after it
    type: str
    at: float  # epoch seconds (the decision's ``now``)
    call_id: str
    seat: str
    skill: str
    data: str

    @property
    def ms(self) -> int:
        """The numeric payload (wait or talk time in ms) of offer/connect/abandon/complete."""
        return int(float(self.data or 0))


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_entry(entry_id: Any, fields: dict[Any, Any]) -> AcdEvent:
    f = {_s(k): _s(v) for k, v in fields.items()}
    return AcdEvent(
        id=_s(entry_id),
        type=f.get("type", ""),
        at=float(f.get("ts") or 0) / 1000,
        call_id=f.get("call", ""),
        seat=f.get("seat", ""),
        skill=f.get("skill", ""),
        data=f.get("data", ""),
    )


async def read_events(
    redis: Redis,
    prefix: str,
    after: str = "0-0",
    *,
    count: int = 1000,
    block_ms: int | None = None,
    timeout_s: float = 5.0,
) -> list[AcdEvent]:
    """Events after stream id ``after`` (``"0-0"``: from the start of the capped log)."""
    deadline = timeout_s + (block_ms or 0) / 1000
    async with asyncio.timeout(deadline):
        reply: Any = await redis.xread({f"{prefix}events": after}, count=count, block=block_ms)
    events: list[AcdEvent] = []
    for _stream, entries in reply or []:
        events.extend(parse_entry(entry_id, fields) for entry_id, fields in entries)
    return events
