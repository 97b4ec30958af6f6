"""E-mail to departments through an SMTP gateway, off the request path.

:meth:`DepartmentMail.post` queues a :class:`~workorders.notices.Notice` as an e-mail in its
outbox (:mod:`workorders.outbox`: sent by a supervised loop, retried); the blocking
``smtplib`` runs in a worker thread. Departments' addresses come from a TOML file::

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
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from workorders.notices import Notice
from workorders.outbox import NoticeOutbox, Retries

log = logging.getLogger(__name__)


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


class DepartmentMail:
    def __init__(self, settings: MailSettings, zone: ZoneInfo) -> None:
        self.settings, self.zone = settings, zone
        retries = Retries(settings.timeout_s, settings.retries, settings.retry_s)
        self.outbox = NoticeOutbox("e-mail", self._deliver, (OSError, smtplib.SMTPException),
                                   retries)  # fmt: skip

    @property
    def sent(self) -> int:
        return self.outbox.sent

    @property
    def failed(self) -> int:
        return self.outbox.failed

    def post(self, notice: Notice) -> bool:
        """Queue ``notice`` for its department's address; False if it has none or the queue
        is full (both logged)."""
        s = self.settings
        to = s.addresses.get(notice.department)
        if not to:
            log.debug("work order %s: %s has no e-mail address", notice.number, notice.department)
            return False
        return self.outbox.post(notice, notice.email(s.sender, to, self.zone, s.portal_url), to)

    async def run(self, stop: asyncio.Event) -> None:
        """Send queued e-mail until ``stop``."""
        await self.outbox.run(stop)

    async def _deliver(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        s = self.settings
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as smtp:
            smtp.send_message(message)
