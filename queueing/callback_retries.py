"""Callbacks the citizen did not answer: tried again later, then listed for supervisors.

When the seat's channel dials the citizen for a callback and the citizen does not answer
(busy, no answer, failed), the callback route releases the seat at once and hands the
callback here. It is booked again ``interval_s`` later (default 10 minutes), as a new
callback in its skill's queue (``<call id>-r<n>``), up to ``retries`` times (default 2);
then it is kept on the failed-callbacks list (``GET /api/callbacks/failed``). The schedule is
a sorted set in the ACD's Redis: every engine on it may book a due retry, and ``ZREM``
decides which one does, so a retry is booked once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from calls.callerid import mask_number
from queueing.acd import Acd
from queueing.models import AcdError

log = logging.getLogger(__name__)

_RETRY = re.compile(r"^(?P<base>.+)-r(?P<n>\d+)$")


@dataclass(frozen=True)
class CallbackRetryOptions:
    retries: int = 2
    interval_s: float = 600.0
    tick_s: float = 5.0


def retry_of(call_id: str) -> tuple[str, int]:
    """The first callback's id and how many retries ``call_id`` is (0: the first call)."""
    match = _RETRY.match(call_id)
    return (match["base"], int(match["n"])) if match else (call_id, 0)


class CallbackRetries:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        acd: Acd,
        kick: Callable[[], None],
        options: CallbackRetryOptions,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis, self.acd, self.kick, self.options, self.clock = redis, acd, kick, options, clock
        self.due_key = f"{prefix}callbacks:retry"
        self.failed_key = f"{prefix}callbacks:failed"

    async def not_answered(self, call_id: str, number: str, skill: str, status: str) -> None:
        """The citizen did not answer callback ``call_id``: again later, or listed."""
        try:
            await self._not_answered(call_id, number, skill, status)
        except (RedisError, OSError, TimeoutError) as exc:
            log.error("callback %s: not answered, and no retry recorded (%s)", call_id, exc)

    async def _not_answered(self, call_id: str, number: str, skill: str, status: str) -> None:
        base, tries = retry_of(call_id)
        who = f"callback {base} to {mask_number(number)}"
        now = self.clock()
        if tries >= self.options.retries:
            record = {"call_id": base, "number": number, "skill": skill, "attempts": tries + 1,
                      "last_status": status, "at": now}  # fmt: skip
            await self.redis.hset(self.failed_key, base, json.dumps(record))
            log.warning("%s: not answered %d times (%s); listed as a failed callback", who,
                        tries + 1, status)  # fmt: skip
            return
        retry = {"call_id": f"{base}-r{tries + 1}", "number": number, "skill": skill}
        await self.redis.zadd(self.due_key, {json.dumps(retry): now + self.options.interval_s})
        log.info("%s: not answered (%s); tried again in %.0f s (retry %d of %d)", who, status,
                 self.options.interval_s, tries + 1, self.options.retries)  # fmt: skip

    async def book_due(self, now: float | None = None) -> list[str]:
        """Book every retry that is due as a callback in its queue; returns their ids."""
        now = self.clock() if now is None else now
        booked = []
        due = cast(
            list[bytes],
            await self.redis.zrangebyscore(self.due_key, "-inf", now, start=0, num=50),
        )
        for member in due:
            if not await self.redis.zrem(self.due_key, member):
                continue  # another engine booked it
            retry = json.loads(member)
            try:
                await self.acd.enqueue(retry["call_id"], retry["skill"], caller=retry["number"])
                await self.acd.to_callback(retry["call_id"], retry["number"])
            except AcdError as exc:
                log.error("callback retry %s not booked: %s", retry["call_id"], exc)
                continue
            booked.append(retry["call_id"])
        if booked:
            self.kick()
        return booked

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.book_due()
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("callback retries not checked (%s); again in %.0f s", exc,
                            self.options.tick_s)  # fmt: skip
            try:
                await asyncio.wait_for(stopping.wait(), self.options.tick_s)
            except TimeoutError:
                pass

    async def failed(self) -> list[dict[str, Any]]:
        """The failed callbacks, masked numbers, newest first."""
        rows = [json.loads(v) for v in (await self.redis.hgetall(self.failed_key)).values()]
        for row in rows:
            row["number"] = mask_number(row["number"])
        return sorted(rows, key=lambda r: r["at"], reverse=True)


RETRIES: web.AppKey[CallbackRetries] = web.AppKey("callback_retries")


async def get_failed(request: web.Request) -> web.Response:
    return web.json_response({"failed": await request.app[RETRIES].failed()})


def add_routes(app: web.Application, retries: CallbackRetries) -> None:
    app[RETRIES] = retries
    app.router.add_get("/api/callbacks/failed", get_failed)
