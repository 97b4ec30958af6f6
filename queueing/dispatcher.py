"""The routing loop: runs the ACD's atomic dispatch step and hands each decision on.

A voice caller's decision goes to the FastAGI session holding that caller (a future per
call, see :mod:`queueing.connector`); a callback's goes to the callback ringer. The step
runs when something changed (a caller entered, a seat became available: :meth:`kick`) and
on a short tick (wrap-ups ending, relax steps, ring deadlines).

Several engines may share one ACD: a decision for a voice call whose session another live
engine holds goes to that engine (:mod:`queueing.ownership`); one for a call nobody holds
any more (its engine died and the caller went to the dialplan's fallback) is cancelled,
which frees the seat at once. Rings past their deadline are not paused here: Asterisk is
asked first (:mod:`queueing.recovery`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import Histogram
from redis.exceptions import RedisError

from calls.callerid import mask_number
from queueing.acd import Acd
from queueing.models import AcdError, Assignment, CallKind, Entered
from queueing.ownership import Ownership

log = logging.getLogger(__name__)

CallbackRinger = Callable[[Assignment], Coroutine[Any, Any, None]]


class Dispatcher:
    def __init__(
        self, acd: Acd, *, tick_s: float = 0.25, ownership: Ownership | None = None
    ) -> None:
        self.acd = acd
        self.tick_s = tick_s
        self.ownership = ownership
        self._waiters: dict[str, asyncio.Future[Assignment]] = {}
        self._held: set[str] = set()  # calls whose caller's session runs here
        self._early: dict[str, Assignment] = {}  # decided while the session was busy ringing
        self._kick = asyncio.Event()
        self._lock = asyncio.Lock()
        self._callback: CallbackRinger | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # one routing step's time (the dispatch Lua in Redis), exported by web.metrics
        self.decision_seconds = Histogram(
            "hotline_acd_decision_seconds", "Time of one ACD routing step (the dispatch Lua)",
            registry=None, buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
        )  # fmt: skip

    def on_callback(self, ringer: CallbackRinger) -> None:
        self._callback = ringer

    # -- the waiting callers' side ----------------------------------------------------------
    def holds(self, call_id: str) -> bool:
        """Whether the caller's session runs here."""
        return call_id in self._held

    def expect(self, call_id: str) -> None:
        """Claim the caller before it enters the ACD: a routing step that decides for it
        before its session waits keeps the decision here instead of cancelling it."""
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

    def decided(self, call_id: str) -> bool:
        """Whether a new decision already waits for the caller's session (made while its
        last ring was still ending, e.g. the ACD requeued it when the seat unregistered)."""
        return call_id in self._early

    def forget(self, call_id: str) -> None:
        self._held.discard(call_id)
        self._early.pop(call_id, None)
        future = self._waiters.pop(call_id, None)
        if future is not None and not future.done():
            future.cancel()

    async def enter(self, call_id: str, skill: str, caller: str, language: str) -> Entered:
        """A voice caller joins its queue and a routing step runs in the same Lua call
        (:meth:`Acd.enter`); its decisions are handed on as :meth:`step`'s are."""
        with self.decision_seconds.time():
            entered = await self.acd.enter(call_id, skill, caller=caller, language=language)
        for a in entered.assignments:
            self.deliver(a, forwarded=False)
        return entered

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
        """One routing step now: new decisions, each handed to whoever holds the caller."""
        async with self._lock:
            with self.decision_seconds.time():
                assignments = await self.acd.dispatch_once()
        for a in assignments:
            self.deliver(a, forwarded=False)
        return len(assignments)

    def deliver(self, a: Assignment, *, forwarded: bool = True) -> None:
        """Hand decision ``a`` to the session (or callback ringer) here; a voice call held
        elsewhere goes to its engine, one held nowhere is cancelled."""
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
        task = asyncio.create_task(self._elsewhere(a, forwarded), name=f"elsewhere-{a.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _elsewhere(self, a: Assignment, forwarded: bool) -> None:
        """A decision for a caller this engine does not hold."""
        try:
            entry = await self.acd.entry(a.call_id)
            owner = (entry or {}).get("owner", "")
            ownership = self.ownership
            if (
                not forwarded and ownership is not None and owner and owner != ownership.me
                and await ownership.alive(owner)
            ):  # fmt: skip
                await ownership.forward(owner, a)
                return
        except (RedisError, OSError, TimeoutError, AcdError):
            log.exception("call %s: owner not found; the decision is cancelled", a.call_id)
        log.warning("call %s from %s: no session holds it; seat %s released",
                    a.call_id, mask_number(a.caller), a.seat)  # fmt: skip
        await self._cancel(a)

    async def _cancel(self, a: Assignment) -> None:
        try:
            await self.acd.cancel(a.call_id)
        except (RedisError, OSError, TimeoutError):
            log.exception("call %s: could not release seat %s", a.call_id, a.seat)
        self.kick()
