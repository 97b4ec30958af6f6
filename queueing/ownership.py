"""Several engines on one Redis: each owns the callers whose FastAGI sessions it holds.

An engine's id is stable for its data folder (a restarted engine recognises its own
entries as left behind by its previous life). While it runs it renews a lease
(``engine:<id>``, expiring after ``lease_s``); an entry whose owner has no lease belongs
to a dead engine. The routing step is global (any engine's Lua step may pick any caller):
a decision for a caller another live engine holds is forwarded to that engine's inbox
(``inbox:<id>``), never cancelled; one for a dead engine's caller is cancelled (its
caller went to the dialplan's fallback queue when the FastAGI session died).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from queueing.models import Assignment, CallKind

log = logging.getLogger(__name__)


def engine_id(data_dir: Path) -> str:
    """This engine's id: the host and its data folder (one engine per folder: its lock)."""
    folder = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    return f"{socket.gethostname()}-{folder}"


class Ownership:
    def __init__(
        self, redis: Redis, prefix: str, me: str, *, lease_s: float = 6.0, timeout_s: float = 5.0
    ) -> None:
        self.redis, self.prefix, self.me = redis, prefix, me
        self.lease_s, self.timeout_s = lease_s, timeout_s

    def _lease(self, engine: str) -> str:
        return f"{self.prefix}engine:{engine}"

    def _inbox(self, engine: str) -> str:
        return f"{self.prefix}inbox:{engine}"

    async def renew(self) -> None:
        async with asyncio.timeout(self.timeout_s):
            await self.redis.set(self._lease(self.me), "1", px=int(self.lease_s * 1000))

    async def alive(self, engine: str) -> bool:
        """Whether ``engine`` holds a lease (this engine always counts as alive)."""
        if engine == self.me:
            return True
        async with asyncio.timeout(self.timeout_s):
            return bool(await self.redis.exists(self._lease(engine)))

    async def forward(self, owner: str, a: Assignment) -> None:
        """Hand a decision to the engine holding the caller."""
        key = self._inbox(owner)
        async with asyncio.timeout(self.timeout_s):
            await self.redis.rpush(key, json.dumps(asdict(a)))
            await self.redis.pexpire(key, int(self.lease_s * 1000))
        log.info("call %s: decision (seat %s) forwarded to engine %s", a.call_id, a.seat, owner)

    async def run(self, stopping: asyncio.Event, deliver: Callable[[Assignment], None]) -> None:
        """Renew the lease and take decisions forwarded here, until ``stopping``."""
        renew_every = self.lease_s / 3
        loop = asyncio.get_running_loop()
        next_renew = 0.0
        while not stopping.is_set():
            if loop.time() >= next_renew:
                try:
                    await self.renew()
                    next_renew = loop.time() + renew_every
                except (RedisError, OSError, TimeoutError) as exc:
                    log.warning("engine %s: lease not renewed (%s)", self.me, exc)
                    await asyncio.sleep(1)
                    continue
            try:
                async with asyncio.timeout(self.timeout_s):
                    item = await self.redis.blpop([self._inbox(self.me)], timeout=1)
            except (RedisError, OSError, TimeoutError) as exc:
                log.debug("engine %s: inbox not read (%s)", self.me, exc)
                await asyncio.sleep(1)
                continue
            if item is not None:
                raw = json.loads(item[1])
                deliver(Assignment(**{**raw, "kind": CallKind(raw["kind"])}))
