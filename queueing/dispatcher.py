"""The routing loop: runs the ACD's atomic dispatch step and hands each decision on.

A voice caller's decision goes to the FastAGI session holding that caller (a future per
call, see :mod:`queueing.connector`); a callback's goes to the callback ringer. The step
runs when something changed (a caller entered, a seat became available: :meth:`kick`) and
on a short tick (wrap-ups ending, relax steps, ring deadlines).

One engine per ACD prefix holds the callers' sessions: a decision for a voice call no
session here holds (the engine restarted and the caller went to the dialplan's fallback)
is cancelled, which frees the seat at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from redis.exceptions import RedisError

from queueing.acd import Acd
from queueing.models import Assignment, CallKind

log = logging.getLogger(__name__)

CallbackRinger = Callable[[Assignment], Coroutine[Any, Any, None]]


class Dispatcher:
    def __init__(self, acd: Acd, *, tick_s: float = 0.25) -> None:
        self.acd = acd
        self.tick_s = tick_s
        self._waiters: dict[str, asyncio.Future[Assignment]] = {}
        self._held: set[str] = set()  # calls whose caller's session runs here
        self._early: dict[str, Assignment] = {}  # decided while the session was busy ringing
        self._kick = asyncio.Event()
        self._lock = asyncio.Lock()
        self._callback: CallbackRinger | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def on_callback(self, ringer: CallbackRinger) -> None:
        self._callback = ringer

    # -- the waiting callers' side ----------------------------------------------------------
    def hold(self, call_id: str) -> None:
        """The caller's session runs here until :meth:`forget`."""
        self._held.add(call_id)

    def wait_for_seat(self, call_id: str) -> asyncio.Future[Assignment]:
        self._held.add(call_id)
        future: asyncio.Future[Assignment] = asyncio.get_running_loop().create_future()
        early = self._early.pop(call_id, None)
        if early is not None:
            future.set_result(early)
        else:
            self._waiters[call_id] = future
        return future

    def forget(self, call_id: str) -> None:
        self._held.discard(call_id)
        self._early.pop(call_id, None)
        future = self._waiters.pop(call_id, None)
        if future is not None and not future.done():
            future.cancel()

    def kick(self) -> None:
        self._kick.set()

    # -- the loop ---------------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        failing = False
        while not stopping.is_set():
            try:
                async with asyncio.timeout(self.tick_s):
                    await self._kick.wait()
            except TimeoutError:
                pass
            self._kick.clear()
            try:
                await self.step()
                if failing:
                    log.info("ACD routing resumed")
                failing = False
            except (RedisError, OSError, TimeoutError) as exc:
                if not failing:
                    log.warning("ACD routing step failed (%s); retrying every %.2f s", exc,
                                self.tick_s)  # fmt: skip
                failing = True
                await asyncio.sleep(1.0)
        for task in list(self._tasks):
            task.cancel()

    async def step(self) -> int:
        """One routing step now: RONA for rings past their deadline, then new decisions."""
        async with self._lock:
            for requeued in await self.acd.expire_rings():
                log.warning("call %s: seat %s past its ring deadline, paused", requeued.call_id,
                            requeued.seat)  # fmt: skip
            assignments = await self.acd.dispatch_once()
        for a in assignments:
            self._deliver(a)
        return len(assignments)

    def _deliver(self, a: Assignment) -> None:
        if a.kind is CallKind.CALLBACK and self._callback is not None:
            task = asyncio.create_task(self._callback(a), name=f"callback-{a.call_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        future = self._waiters.pop(a.call_id, None)
        if future is not None and not future.done():
            future.set_result(a)
            return
        if a.call_id in self._held:
            # e.g. the seat it rang unregistered and the ACD requeued it: the session takes
            # this decision as soon as its ring ends (cut short by the registration watch)
            self._early[a.call_id] = a
            return
        log.warning("call %s from %s: no session holds it here; seat %s released",
                    a.call_id, a.caller, a.seat)  # fmt: skip
        task = asyncio.create_task(self._cancel(a), name=f"cancel-{a.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel(self, a: Assignment) -> None:
        try:
            await self.acd.cancel(a.call_id)
        except (RedisError, OSError, TimeoutError):
            log.exception("call %s: could not release seat %s", a.call_id, a.seat)
        self.kick()
