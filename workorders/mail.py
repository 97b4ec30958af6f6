"""E-mail to departments through an SMTP gateway, off the request path.

:meth:`DepartmentMail.post` only queues a :class:`~workorders.notices.Notice` (a request that
dispatches an order never waits for SMTP); :meth:`DepartmentMail.run`, a supervised loop of
the engine, sends them one by one (the blocking ``smtplib`` in a worker thread, under a
deadline). A failed send is logged and tried again later, ``retries`` times, ``retry_s``
apart, then logged as given up. Departments' addresses come from a TOML file::

    [department]
    "市水务集团" = "dispatch@water.example.org"

A department without an address gets no e-mail (logged once per notice, at debug).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from workorders.notices import Notice

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000  # notices waiting for the gateway before new ones are dropped (logged)


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    sender: str
    addresses: Mapping[str, str]  # department -> address
    timeout_s: float = 10.0
    retries: int = 5
    retry_s: float = 60.0
    portal_url: str = ""  # where the e-mail sends the department (the engine's /portal)

    @staticmethod
    def read_addresses(path: Path) -> dict[str, str]:
        """The ``[department]`` table of ``path``; no file: no addresses."""
        if not path.is_file():
            return {}
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.get("department", {}).items()}


@dataclass
class _Letter:
    notice: Notice
    message: EmailMessage
    attempts: int = 0


@dataclass
class DepartmentMail:
    settings: MailSettings
    zone: ZoneInfo
    sent: int = 0
    failed: int = 0  # given up after every retry
    _queue: asyncio.Queue[_Letter] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    _later: set[asyncio.TimerHandle] = field(default_factory=set)

    def post(self, notice: Notice) -> bool:
        """Queue ``notice`` for its department's address; False if it has none or the queue
        is full (both logged)."""
        s = self.settings
        to = s.addresses.get(notice.department)
        if not to:
            log.debug("work order %s: %s has no e-mail address", notice.number, notice.department)
            return False
        letter = _Letter(notice, notice.email(s.sender, to, self.zone, s.portal_url))
        try:
            self._queue.put_nowait(letter)
        except asyncio.QueueFull:
            log.error("work order %s: e-mail to %s dropped (%d waiting for the gateway)",
                      notice.number, notice.department, QUEUE_SIZE)  # fmt: skip
            return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Send queued e-mail until ``stop``; what is still queued then is logged."""
        try:
            while not stop.is_set():
                try:
                    letter = await asyncio.wait_for(self._queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
                await self._send(letter)
        finally:
            for handle in self._later:
                handle.cancel()
            if not self._queue.empty() or self._later:
                log.warning("department e-mail: %d not sent at shutdown",
                            self._queue.qsize() + len(self._later))  # fmt: skip

    async def _send(self, letter: _Letter) -> None:
        s, notice = self.settings, letter.notice
        letter.attempts += 1
        try:
            sending = asyncio.to_thread(self._deliver, letter.message)
            await asyncio.wait_for(sending, s.timeout_s + 1)
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            if letter.attempts > s.retries:
                self.failed += 1
                log.error("work order %s: e-mail to %s given up after %d attempts (%s)",
                          notice.number, notice.department, letter.attempts, exc)  # fmt: skip
                return
            log.warning("work order %s: e-mail to %s failed (%s); retry %d of %d in %.0f s",
                        notice.number, notice.department, exc, letter.attempts, s.retries,
                        s.retry_s)  # fmt: skip
            self._retry_later(letter)
            return
        self.sent += 1
        log.info("work order %s: %s e-mailed to %s", notice.number, notice.news, notice.department)

    def _retry_later(self, letter: _Letter) -> None:
        loop = asyncio.get_running_loop()

        def again() -> None:
            self._later.discard(handle)
            try:
                self._queue.put_nowait(letter)
            except asyncio.QueueFull:
                log.error("work order %s: e-mail retry dropped (queue full)", letter.notice.number)

        handle = loop.call_later(self.settings.retry_s, again)
        self._later.add(handle)

    def _deliver(self, message: EmailMessage) -> None:
        s = self.settings
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as smtp:
            smtp.send_message(message)
