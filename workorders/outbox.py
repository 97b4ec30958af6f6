"""Notices to departments sent off the request path, with retries: one outbox per channel
(e-mail: :mod:`workorders.mail`, SMS: :mod:`workorders.sms`).

:meth:`NoticeOutbox.post` only queues a message (a request that dispatches an order never
waits for a gateway); :meth:`NoticeOutbox.run`, a supervised loop of the engine, sends them
one by one under a deadline. A failed send is logged and tried again later, ``retries``
times, ``retry_s`` apart, then logged as given up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from workorders.notices import Notice

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000  # messages waiting for the gateway before new ones are dropped (logged)
T = TypeVar("T")


@dataclass(frozen=True)
class Retries:
    timeout_s: float = 10.0  # one send
    retries: int = 5
    retry_s: float = 60.0


@dataclass
class _Item(Generic[T]):
    notice: Notice
    message: T
    recipient: str  # for the logs (an SMS number masked)
    attempts: int = 0


@dataclass
class NoticeOutbox(Generic[T]):
    channel: str  # "e-mail", "SMS": in every log line
    deliver: Callable[[T], Awaitable[None]]  # raises one of ``failures`` when it fails
    failures: tuple[type[BaseException], ...]
    retries: Retries = field(default_factory=Retries)
    sent: int = 0
    failed: int = 0  # given up after every retry
    _queue: asyncio.Queue[_Item[T]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    _later: set[asyncio.TimerHandle] = field(default_factory=set)

    def post(self, notice: Notice, message: T, recipient: str) -> bool:
        """Queue ``message`` about ``notice``; False if the queue is full (logged)."""
        try:
            self._queue.put_nowait(_Item(notice, message, recipient))
        except asyncio.QueueFull:
            log.error("work order %s: %s to %s dropped (%d waiting for the gateway)",
                      notice.number, self.channel, notice.department, QUEUE_SIZE)  # fmt: skip
            return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Send queued messages until ``stop``; what is still queued then is logged."""
        try:
            while not stop.is_set():
                try:
                    item = await asyncio.wait_for(self._queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
                await self._send(item)
        finally:
            for handle in self._later:
                handle.cancel()
            if not self._queue.empty() or self._later:
                log.warning("department %s: %d not sent at shutdown", self.channel,
                            self._queue.qsize() + len(self._later))  # fmt: skip

    async def _send(self, item: _Item[T]) -> None:
        r, notice = self.retries, item.notice
        item.attempts += 1
        try:
            await asyncio.wait_for(self.deliver(item.message), r.timeout_s + 1)
        except (*self.failures, TimeoutError) as exc:  # type: ignore[misc]
            if item.attempts > r.retries:
                self.failed += 1
                log.error("work order %s: %s to %s given up after %d attempts (%s; to %s)",
                          notice.number, self.channel, notice.department, item.attempts, exc,
                          item.recipient)  # fmt: skip
                return
            log.warning("work order %s: %s to %s failed (%s; to %s); retry %d of %d in %.0f s",
                        notice.number, self.channel, notice.department, exc, item.recipient,
                        item.attempts, r.retries, r.retry_s)  # fmt: skip
            self._retry_later(item)
            return
        self.sent += 1
        log.info("work order %s: %s sent by %s to %s (%s)", notice.number, notice.news,
                 self.channel, notice.department, item.recipient)  # fmt: skip

    def _retry_later(self, item: _Item[T]) -> None:
        loop = asyncio.get_running_loop()

        def again() -> None:
            self._later.discard(handle)
            try:
                self._queue.put_nowait(item)
            except asyncio.QueueFull:
                log.error("work order %s: %s retry dropped (queue full)", item.notice.number,
                          self.channel)  # fmt: skip

        handle = loop.call_later(self.retries.retry_s, again)
        self._later.add(handle)


class DepartmentSender(Protocol):
    """A channel that tells departments of their news (e-mail, SMS)."""

    outbox: NoticeOutbox[Any]

    def post(self, notice: Notice) -> bool:
        """Queue ``notice``; False if the department cannot be reached this way."""
        ...

    async def run(self, stop: asyncio.Event) -> None: ...
