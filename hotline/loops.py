"""The engine's background loops, supervised: a loop that dies is logged and restarted.

Every long-running loop of the engine (ACD routing, the event log, the AMI connection,
retention, supervision of time limits, ...) runs under :class:`Loops`. A loop that raises,
or returns before the engine stops, is logged with its traceback and started again after a
backoff that doubles up to ``max_backoff_s`` (and starts over once a run lasted
``healthy_after_s``). ``/healthz`` asks :meth:`Loops.check` and names a loop that is
restarting, so a dead loop is never silent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass

from web.health import Check

log = logging.getLogger(__name__)

LoopFactory = Callable[[], Awaitable[None]]


@dataclass
class LoopState:
    name: str
    running: bool = True
    restarts: int = 0
    last_error: str = ""


class LoopDown(RuntimeError):
    """A supervised loop died and waits for its restart."""


class Loops:
    def __init__(
        self,
        *,
        first_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        healthy_after_s: float = 60.0,
    ) -> None:
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.healthy_after_s = healthy_after_s
        self.states: dict[str, LoopState] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    def start(self, name: str, loop: LoopFactory) -> None:
        """Run ``loop()`` until :meth:`close`, restarting it whenever it dies."""
        if name in self._tasks:
            raise ValueError(f"a loop named {name!r} is already running")
        self.states[name] = LoopState(name)
        self._tasks[name] = asyncio.create_task(self._supervise(name, loop), name=name)

    async def _supervise(self, name: str, loop: LoopFactory) -> None:
        state = self.states[name]
        backoff = self.first_backoff_s
        while True:
            started = time.monotonic()
            try:
                await loop()
            except Exception as exc:
                if self._closing:
                    return
                state.last_error = f"{type(exc).__name__}: {exc}"
                log.error("loop %s died (%s); restarting in %.1f s", name, state.last_error,
                          backoff, exc_info=exc)  # fmt: skip
            else:
                if self._closing:
                    return
                state.last_error = "ended before the engine stopped"
                log.error("loop %s ended on its own; restarting in %.1f s", name, backoff)
            if time.monotonic() - started >= self.healthy_after_s:
                backoff = self.first_backoff_s
            state.running = False
            state.restarts += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
            state.running = True
            log.info("loop %s restarted (restart %d)", name, state.restarts)

    async def check(self, name: str) -> None:
        """A health check: raises :class:`LoopDown` while ``name`` waits for its restart."""
        state = self.states[name]
        if not state.running:
            raise LoopDown(f"restarting after {state.last_error} ({state.restarts} restarts)")

    def checks(self, others: Mapping[str, Check]) -> Mapping[str, Check]:
        """``others`` and one health check per loop, named ``loop:<name>``: a live view that
        includes loops started later."""
        return _HealthChecks(self, others)

    def running(self) -> list[str]:
        """Names of the loops whose supervisor has not ended."""
        return [name for name, task in self._tasks.items() if not task.done()]

    async def close(self, grace_s: float = 2.0) -> None:
        """Let loops that watch the engine's stop event return, then cancel the rest."""
        self._closing = True
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _HealthChecks(Mapping[str, Check]):
    def __init__(self, loops: Loops, others: Mapping[str, Check]) -> None:
        self._loops, self._others = loops, others

    def __getitem__(self, key: str) -> Check:
        if key in self._others:
            return self._others[key]
        name = key.removeprefix("loop:")
        if key == name or name not in self._loops.states:
            raise KeyError(key)
        return lambda: self._loops.check(name)

    def __iter__(self) -> Iterator[str]:
        yield from self._others
        yield from (f"loop:{name}" for name in list(self._loops.states))

    def __len__(self) -> int:
        return len(self._others) + len(self._loops.states)
