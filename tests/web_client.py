"""The web service's own application (``web.app.make_app``: its error middleware, the
accounts' middleware, the work orders mounted as the engine mounts them) on a test database,
for the API tests. The staff below are real accounts with these bearer tokens."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts.http import AccountsWeb, actor_of
from accounts.service import AccountService
from accounts.users import AccountRole, UnknownUser
from calls.store import CallStore
from db.base import Base
from hotline.database import import_models, make_sessions
from web.app import WebDeps, make_app
from workorders.dispatch import DispatchRules
from workorders.http import add_routes
from workorders.orders import Actor, Role
from workorders.service import WorkOrderService
from workorders.sms import sign
from workorders.timelimits import TimeLimits

KEY = "test-api-key"
SMS_SECRET = "sms-secret"
STAFF = {
    "op-token": Actor("王敏", Role.OPERATOR),
    "lead-token": Actor("李强", Role.SUPERVISOR),
    "yanta-token": Actor("雁塔区值班员", Role.DEPARTMENT, "雁塔区人民政府"),
}
OPERATOR = {"Authorization": "Bearer op-token"}
LEAD = {"Authorization": "Bearer lead-token"}
YANTA = {"Authorization": "Bearer yanta-token"}
# Monday 23 November 2026, 10:00 in Beijing.
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the service (time limits, the SMS follow-up window)."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def work_order_service(
    engine: AsyncEngine, clock: Callable[[], datetime] | None = None
) -> WorkOrderService:
    """The service on ``engine``, its tables created (its clock fixed at :data:`NOW`)."""
    import_models()
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    limits = TimeLimits.load()
    return WorkOrderService(
        make_sessions(engine), DispatchRules.load(), limits, clock=clock or Clock()
    )


async def staff_accounts(
    service: WorkOrderService, clock: Callable[[], datetime] | None = None
) -> AccountService:
    """The accounts on the service's database, :data:`STAFF` among them with their tokens."""
    accounts = AccountService(
        service.sessions,
        session_secret="test-session-secret",
        departments=DispatchRules.load().departments,
        extensions=("8001", "8002", "8005"),
        **({"clock": clock} if clock else {}),
    )
    for token, actor in STAFF.items():
        try:
            await accounts.user(actor.name)
        except UnknownUser:
            role = AccountRole(actor.role.value)
            await accounts.add_user(actor.name, role, department=actor.department, checked=False)
            await accounts.issue_token(actor.name, actor="test", token=token)
    return accounts


@asynccontextmanager
async def web_client(
    service: WorkOrderService,
    sms_window: timedelta = timedelta(hours=72),
    accounts: AccountService | None = None,
) -> AsyncIterator[TestClient]:
    accounts = accounts or await staff_accounts(service)
    deps = WebDeps(CallStore(service.sessions), {}, AccountsWeb(accounts))

    def mount(app: web.Application) -> None:
        add_routes(app, service, api_keys=[KEY], staff=actor_of, sms_secret=SMS_SECRET,
                   sms_followup_window=sms_window, jurisdiction_id="xian.gov.cn")  # fmt: skip

    async with TestClient(TestServer(make_app(deps, [mount]))) as client:
        yield client


def signed(body: bytes, at: float | None = None) -> dict[str, str]:
    """The SMS gateway's headers for ``body``."""
    timestamp = str(int(time.time() if at is None else at))
    return {"X-Hotline-Timestamp": timestamp,
            "X-Hotline-Signature": sign(SMS_SECRET, timestamp, body)}  # fmt: skip


async def send_sms(client: TestClient, sender: str, text: str) -> tuple[int, dict[str, object]]:
    body = urlencode({"from": sender, "text": text}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **signed(body)}
    resp = await client.post("/sms/inbound", data=body, headers=headers)
    return resp.status, await resp.json()


def xml(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(text.split("\n", 1)[1])


async def next_event(
    stream: aiohttp.ClientResponse, topic: str, timeout_s: float = 10
) -> dict[str, Any]:
    """The data of the next server-sent event named ``topic`` on ``stream`` (a live page's
    event stream), skipping others; TimeoutError after ``timeout_s``."""
    name = ""
    async with asyncio.timeout(timeout_s):
        while True:
            line = (await stream.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == topic:
                data: dict[str, Any] = json.loads(line[6:])
                return data
