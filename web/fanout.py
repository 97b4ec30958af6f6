"""Live events for every engine on one Redis: the stream ``<prefix>live`` beside the ACD's log.

What an engine publishes (a caller put through at one of its sessions, an order drafted or
dispatched through its API, a revisit, a department's news) goes to
:meth:`RedisFanout.send`; a sender loop appends it to the stream (capped near
:data:`MAXLEN`). One follower loop per engine reads that stream and the ACD's event log
(``<prefix>events``, written by the Lua) in one blocking ``XREAD`` and delivers every entry
to its own hub's subscribers, this engine's own events included: one path for all engines,
so a wallboard, desk or portal served by any engine changes when any engine acts. When the
stream cannot be written the event is delivered on this engine only (logged), so its own
pages still see it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from accounts.users import AccountRole
from queueing.events import parse_entry
from web.live import LiveEvent, LiveHub

log = logging.getLogger(__name__)

MAXLEN = 10_000  # entries kept (approximately): enough for a follower's reconnect
OUTBOX = 1024  # events waiting for the sender; more: delivered here only
BATCH = 100  # events appended in one round trip
BLOCK_MS = 1000  # how long one XREAD waits for news before it is asked again


def encode(event: LiveEvent) -> dict[str, str]:
    """``event`` as stream fields (``data`` as JSON; roles by name)."""
    return {
        "topic": event.topic,
        "data": json.dumps(event.data, ensure_ascii=False, default=str),
        "seat": event.seat,
        "roles": ",".join(sorted(role.value for role in event.roles)),
        "department": event.department,
    }


def decode(fields: dict[Any, Any]) -> LiveEvent:
    """The event of stream ``fields`` (:class:`ValueError` if it is not one)."""
    f = {_s(k): _s(v) for k, v in fields.items()}
    data = json.loads(f["data"])
    if not isinstance(data, dict):
        raise ValueError("data is not an object")
    roles = frozenset(AccountRole(name) for name in f.get("roles", "").split(",") if name)
    return LiveEvent(f["topic"], data, seat=f.get("seat", ""), roles=roles,
                     department=f.get("department", ""))  # fmt: skip


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisFanout:
    def __init__(self, hub: LiveHub, redis: Redis, prefix: str, *, timeout_s: float = 5.0) -> None:
        self.hub, self.redis, self.timeout_s = hub, redis, timeout_s
        self.live_key, self.acd_key = f"{prefix}live", f"{prefix}events"
        self._outbox: asyncio.Queue[LiveEvent] = asyncio.Queue(OUTBOX)

    def send(self, event: LiveEvent) -> None:
        """Queue ``event`` for every engine (the sender loop appends it to the stream)."""
        try:
            self._outbox.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("live events: %d waiting for Redis; %s shown on this engine only",
                        OUTBOX, event.topic)  # fmt: skip
            self.hub.deliver(event)

    async def run_sender(self, stop: asyncio.Event) -> None:
        """Append queued events to the stream until ``stop``."""
        while not stop.is_set():
            try:
                first = await asyncio.wait_for(self._outbox.get(), 1.0)
            except TimeoutError:
                continue
            batch = [first]
            while len(batch) < BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            await self._append(batch)

    async def _append(self, batch: list[LiveEvent]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for event in batch:
                    pipe.xadd(self.live_key, encode(event),  # type: ignore[arg-type]
                              maxlen=MAXLEN, approximate=True)  # fmt: skip
                await asyncio.wait_for(pipe.execute(), self.timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("live events: %d not written to Redis (%r); shown on this engine only",
                        len(batch), exc)  # fmt: skip
            for event in batch:
                self.hub.deliver(event)

    async def follow(self, stop: asyncio.Event) -> None:
        """Deliver every engine's live events and the ACD's log (from now on) until ``stop``."""
        last: dict[str, str] = {}
        failing = False
        while not stop.is_set():
            try:
                if not last:
                    last = {key: await self._newest(key) for key in (self.live_key, self.acd_key)}
                async with asyncio.timeout(self.timeout_s + BLOCK_MS / 1000):
                    reply: Any = await self.redis.xread(last, count=500, block=BLOCK_MS)  # type: ignore[arg-type]
                for stream, entries in reply or []:
                    key = _s(stream)
                    for entry_id, fields in entries:
                        last[key] = _s(entry_id)
                        self._deliver(key, entry_id, fields)
                failing = False
            except (RedisError, OSError, TimeoutError) as exc:
                if not failing:
                    log.warning("live events: Redis streams not read (%r); retrying", exc)
                failing = True
                await asyncio.sleep(1.0)

    async def _newest(self, key: str) -> str:
        newest: Any = await asyncio.wait_for(self.redis.xrevrange(key, count=1), self.timeout_s)
        return _s(newest[0][0]) if newest else "0-0"

    def _deliver(self, key: str, entry_id: Any, fields: dict[Any, Any]) -> None:
        if key == self.acd_key:
            self.hub.acd_event(parse_entry(entry_id, fields))
            return
        try:
            event = decode(fields)
        except (KeyError, ValueError) as exc:
            log.warning("live events: entry %s unreadable (%s): skipped", _s(entry_id), exc)
            return
        self.hub.deliver(event)
