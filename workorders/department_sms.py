"""SMS to departments through the carrier's HTTP gateway, off the request path (beside the
e-mail).

:meth:`DepartmentSms.post` queues a :class:`~workorders.notices.Notice` as a short text for
each of its department's mobile numbers in an outbox (:mod:`workorders.outbox`: sent by a
supervised loop, retried). Each message is one ``POST`` of ``{"to": "<number>", "text":
"<text>"}`` as JSON to the gateway's URL, signed as the gateway signs inbound SMS
(:func:`workorders.sms.sign`: ``X-Hotline-Timestamp`` and ``X-Hotline-Signature`` with the
shared ``sms_gateway_secret``); any 2xx answer is delivered, anything else is retried.
Numbers come from a TOML file (one or a list per department) and appear masked in the logs::

    [department]
    "市水务集团" = ["13800000001", "13800000002"]
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp

from calls.callerid import mask_number
from workorders.notices import Notice
from workorders.outbox import NoticeOutbox, Retries
from workorders.sms import sign

log = logging.getLogger(__name__)


class GatewayRefused(Exception):
    """The gateway answered, but not with 2xx."""


@dataclass(frozen=True)
class SmsSettings:
    url: str  # the gateway's endpoint
    secret: str  # shared with the gateway: signs each request
    numbers: Mapping[str, Sequence[str]]  # department -> mobile numbers
    retries: Retries = Retries()

    @staticmethod
    def read_numbers(path: Path) -> dict[str, tuple[str, ...]]:
        """The ``[department]`` table of ``path`` (a number or a list each); no file: none."""
        if not path.is_file():
            return {}
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        out: dict[str, tuple[str, ...]] = {}
        for department, value in data.get("department", {}).items():
            numbers = value if isinstance(value, list) else [value]
            out[str(department)] = tuple(str(n).strip() for n in numbers if str(n).strip())
        return out


@dataclass(frozen=True)
class Sms:
    to: str
    text: str


class DepartmentSms:
    def __init__(
        self, settings: SmsSettings, zone: ZoneInfo, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings, self.zone, self.clock = settings, zone, clock
        self.outbox = NoticeOutbox("SMS", self._deliver, (aiohttp.ClientError, GatewayRefused),
                                   settings.retries)  # fmt: skip
        self._http: aiohttp.ClientSession | None = None

    def post(self, notice: Notice) -> bool:
        """Queue ``notice`` for each of its department's numbers; False if it has none (logged
        at debug) or none could be queued."""
        numbers = self.settings.numbers.get(notice.department, ())
        if not numbers:
            log.debug("work order %s: %s has no SMS number", notice.number, notice.department)
            return False
        text = notice.sms_text(self.zone)
        queued = [self.outbox.post(notice, Sms(n, text), mask_number(n)) for n in numbers]
        return any(queued)

    async def run(self, stop: asyncio.Event) -> None:
        """Send queued messages until ``stop`` (one HTTP session for all of them)."""
        timeout = aiohttp.ClientTimeout(total=self.settings.retries.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            self._http = http
            try:
                await self.outbox.run(stop)
            finally:
                self._http = None

    async def _deliver(self, sms: Sms) -> None:
        assert self._http is not None, "run() sends"
        s = self.settings
        body = json.dumps({"to": sms.to, "text": sms.text}, ensure_ascii=False).encode()
        timestamp = str(int(self.clock()))
        headers = {"Content-Type": "application/json", "X-Hotline-Timestamp": timestamp,
                   "X-Hotline-Signature": sign(s.secret, timestamp, body)}  # fmt: skip
        async with self._http.post(s.url, data=body, headers=headers) as answer:
            if not 200 <= answer.status < 300:
                raise GatewayRefused(f"HTTP {answer.status}")
