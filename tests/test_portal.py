"""The department portal (web/portal.py) in real headless Chromium against the engine's own
web service (no Asterisk; real Redis and SQLite), with a test SMTP server (aiosmtpd) as the
e-mail gateway. A department user logs in, sees the orders dispatched to the department
(the overdue one in red, a confidential reporter not shown), signs one and replies to it from
the page (checked in SQL and in the order's history: who and when); an order dispatched while
the page is open appears without a reload, and so does supervision's escalation of the
overdue one. The department's e-mail carries the order's number and time limit and no phone
number, and reaches the gateway after it was down (retried). The same news reaches each of
the department's mobile numbers by SMS through a test HTTP gateway (an aiohttp server of the
test that checks the hotline's signature and refuses the first request: retried), with the
numbers masked in the logs.
Another department's user sees none of it (API 403, page). A screenshot goes to
docs/portal.png with HOTLINE_SCREENSHOTS=docs (the README shows it)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiosmtpd.controller import Controller
from browser import browser, new_context, screenshot  # noqa: F401
from conftest import PORT_OFFSET, eventually, running, web_engine_settings
from playwright.async_api import Browser, Page, expect
from sqlalchemy import text
from staff import staff_token

from accounts.users import AccountRole
from hotline.engine import Hotline
from hotline.secrets import stored_secret
from sipsim.ports import SHIFTS
from workorders.orders import Actor, NewWorkOrder, Role, WorkOrder
from workorders.sms import sign
from workorders.supervision import supervise

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PORTAL_PORT_SHIFT = SHIFTS["portal"]
WATER, GAS = "市水务集团", "市燃气集团"
PASSWORD = "portal clerk password"
PHONE = "13912345678"
WATER_PHONES = ("13800000001", "13800000002")  # the water group's duty phones
OPERATOR = Actor("portal-op", Role.OPERATOR)


class Mailbox:
    """The test SMTP server's handler: every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 OK"

    def about(self, number: str) -> list[EmailMessage]:
        return [m for m in self.messages if number in str(m["Subject"])]


@dataclass
class Portal:
    hotline: Hotline
    url: str
    smtp: Controller
    mailbox: Mailbox
    sms: SmsGateway
    tokens: dict[str, str] = field(default_factory=dict)


class SmsGateway:
    """The test's SMS gateway: refuses each message once (503), then takes it if its
    signature (the hotline's sms_gateway_secret) is right."""

    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []
        self.refused: list[dict[str, str]] = []
        self.secret = ""  # the engine's, once it has started

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Hotline-Timestamp", "")
        if request.headers.get("X-Hotline-Signature") != sign(self.secret, timestamp, body):
            return web.json_response({"error": "bad signature"}, status=403)
        message = json.loads(body)
        if message not in self.refused:
            self.refused.append(message)
            return web.json_response({"error": "busy"}, status=503)
        self.messages.append(message)
        return web.json_response({"queued": True})

    def about(self, number: str, news: str) -> list[dict[str, str]]:
        return [m for m in self.messages if number in m["text"] and news in m["text"]]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def portal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Portal]:
    base = tmp_path_factory.mktemp("portal")
    addresses = base / "department-mail.toml"
    addresses.write_text(f'[department]\n"{WATER}" = "water@example.org"\n'
                         f'"{GAS}" = "gas@example.org"\n', encoding="utf-8")  # fmt: skip
    numbers = base / "department-sms.toml"
    numbers.write_text(f'[department]\n"{WATER}" = {json.dumps(list(WATER_PHONES))}\n',
                       encoding="utf-8")  # fmt: skip
    sms_port = 2600 + PORT_OFFSET + PORTAL_PORT_SHIFT
    s = web_engine_settings(base, "portal", PORTAL_PORT_SHIFT).replace(
        smtp_host="127.0.0.1", smtp_port=2525 + PORT_OFFSET + PORTAL_PORT_SHIFT,
        smtp_from="12345@example.org", department_mail_file=str(addresses),
        mail_retry_interval_s=0.5, department_sms_url=f"http://127.0.0.1:{sms_port}/sms",
        department_sms_file=str(numbers),
    )  # fmt: skip
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=s.smtp_port)  # started by the tests
    gateway = SmsGateway()
    app = web.Application()
    app.router.add_post("/sms", gateway.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", sms_port).start()
    async with running(s) as hotline:
        gateway.secret = stored_secret(s.data_dir, "sms_gateway_secret")
        accounts = hotline.accounts.accounts
        engine = Portal(hotline, f"http://{s.web_host}:{s.web_port}", smtp, mailbox, gateway)
        for name, department in (("water-clerk", WATER), ("gas-clerk", GAS)):
            engine.tokens[name] = await staff_token(
                accounts, name, AccountRole.DEPARTMENT, password=PASSWORD, department=department
            )
        engine.tokens["op"] = await staff_token(accounts, "portal-op", AccountRole.OPERATOR,
                                                extension="8001")  # fmt: skip
        try:
            yield engine
        finally:
            if smtp.server is not None:
                smtp.stop()
            await runner.cleanup()


async def dispatched(hotline: Hotline, description: str, **fields: Any) -> WorkOrder:
    orders = hotline.work_orders
    new = NewWorkOrder(channel="phone", description=description, caller_phone=PHONE, **fields)
    order = await orders.create(new, OPERATOR)
    return await orders.dispatch(order.number, OPERATOR, lead_department=WATER, assisting=[])


async def call(
    portal: Portal, who: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {portal.tokens[who]}"}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, portal.url + path, headers=headers, json=body) as response,
    ):
        return response.status, await response.json()


async def test_email_retried_and_other_departments_kept_out(
    portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    # the gateway is down when the order is dispatched: the dispatch does not wait for it
    caplog.set_level(logging.INFO, "workorders.mail")
    order = await dispatched(portal.hotline, "和平路12号自来水管爆裂，水漫到马路上",
                             caller_name="王五")  # fmt: skip
    assert order.due_at is not None

    async def failed() -> bool:
        return f"work order {order.number}: e-mail to {WATER} failed" in caplog.text

    await eventually(failed, 10, "the failed first attempt to be logged")
    portal.smtp.start()  # up again: the retry delivers
    mails = await eventually(lambda: _about(portal, order.number), 15, "the department's e-mail")
    assert len(mails) == 1 and mails[0]["To"] == "water@example.org"
    due = order.due_at.astimezone(portal.hotline.work_orders.limits.timezone)
    due_text = due.strftime("%Y-%m-%d %H:%M")
    body = mails[0].get_content()
    assert due_text in str(mails[0]["Subject"]) and due_text in body
    assert order.number in body and "新派工单" in body
    whole = mails[0].as_string() + body
    for secret in (PHONE, PHONE[-4:], "王五", "水漫到马路上"):
        assert secret not in whole

    number = order.number
    assert (await call(portal, "gas-clerk", "GET", f"/api/workorders/{number}"))[0] == 403
    assert (await call(portal, "gas-clerk", "POST", f"/api/workorders/{number}/sign", {}))[0] == 403
    status, listed = await call(portal, "gas-clerk", "GET", "/api/workorders")
    assert status == 200 and number not in [o["number"] for o in listed]
    status, own = await call(portal, "gas-clerk", "GET", "/api/portal")
    assert status == 200 and own["department"] == GAS and own["orders"] == []
    assert (await call(portal, "op", "GET", "/api/portal"))[0] == 403
    status, water = await call(portal, "water-clerk", "GET", "/api/portal")
    seen = {o["number"]: o for o in water["orders"]}
    assert seen[number]["caller_phone"] != PHONE and seen[number]["part"] == "lead"
    assert not portal.mailbox.about(number)[0]["To"] == "gas@example.org"


async def test_sms_reaches_the_department_numbers(
    portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    """A new order and its urging reach each of the lead department's numbers by SMS (the
    gateway's refusals retried); no citizen's data in the text; numbers masked in logs."""
    caplog.set_level(logging.DEBUG, "workorders")
    order = await dispatched(portal.hotline, "解放路3号停水两天了", caller_name="赵六")

    async def told(news: str) -> list[dict[str, str]]:
        return portal.sms.about(order.number, news)

    await eventually(lambda: _all_numbers(portal, order.number), 15, "an SMS to each number")
    new = await told("新派工单")
    assert sorted(m["to"] for m in new) == sorted(WATER_PHONES)
    assert all(m in portal.sms.refused for m in new)  # each refused once, then retried
    assert order.due_at is not None
    due = order.due_at.astimezone(portal.hotline.work_orders.limits.timezone)
    assert due.strftime("%Y-%m-%d %H:%M") in new[0]["text"] and "主办" in new[0]["text"]
    for secret in (PHONE, PHONE[-4:], "赵六", "停水两天"):
        assert secret not in new[0]["text"]

    lead = Actor("portal-lead", Role.SUPERVISOR)
    await portal.hotline.work_orders.supervise_one(order.number, lead, 1, "请尽快处理")
    urged = await eventually(lambda: told("工单催办"), 15, "the urging's SMS")
    assert {m["to"] for m in urged} <= set(WATER_PHONES)
    for phone in WATER_PHONES:
        assert phone not in caplog.text  # masked: 138****0001
    assert f"SMS to {WATER} failed" in caplog.text and "138****0001" in caplog.text


async def _all_numbers(portal: Portal, number: str) -> bool:
    return len(portal.sms.about(number, "新派工单")) == len(WATER_PHONES)


async def _about(portal: Portal, number: str) -> list[EmailMessage]:
    return portal.mailbox.about(number)


async def log_in(page: Page, name: str) -> None:
    await page.goto("/portal")
    await expect(page).to_have_url(re.compile(r"/login\?next=/portal$"))
    await page.fill("#name", name)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/portal$"))
    await expect(page.locator("#live")).to_contain_text("live")  # the event stream is open


async def test_a_department_signs_and_replies_from_the_portal(
    portal: Portal,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    hotline = portal.hotline
    order = await dispatched(hotline, "建设路88号小区停水两天了", caller_name="赵六")
    secret = await dispatched(hotline, "举报某单位偷接自来水管", caller_name="钱七",
                              confidential=True)  # fmt: skip
    late = await dispatched(hotline, "友谊路井盖缺失")
    async with hotline.work_orders.sessions.begin() as session:  # its time limit has passed
        past = datetime.now(UTC) - timedelta(hours=5)
        await session.execute(
            text("UPDATE work_orders SET due_at = :due WHERE number = :n"),
            {"due": past, "n": late.number},
        )

    context = await new_context(browser, portal.url)
    other = await new_context(browser, portal.url)
    try:
        page = await context.new_page()
        await log_in(page, "water-clerk")
        await page.evaluate("window.sameDocument = true")  # gone if the page reloaded
        row = page.locator(f'#orders tr[data-number="{order.number}"]')
        await expect(row).to_contain_text("主办 lead")
        await expect(row.locator("td.left")).to_contain_text(re.compile(r"天|小时"))
        overdue = page.locator(f'#orders tr[data-number="{late.number}"] td.left')
        await expect(overdue).to_contain_text("overdue")
        await expect(overdue).to_have_css("color", "rgb(198, 40, 40)")  # red

        await page.click(f'#orders tr[data-number="{secret.number}"] button')
        await expect(page.locator("#d-caller")).to_have_text("（保密 / not shown）")
        await expect(page.locator("#detail")).not_to_contain_text("钱七")

        await page.click(f'#orders tr[data-number="{order.number}"] button')
        await expect(page.locator("#d-caller")).to_contain_text("赵六")
        await expect(page.locator("#d-caller")).not_to_contain_text(PHONE)
        before = datetime.now(UTC)
        await page.click('#detail button[data-act="sign"]')
        await expect(page.locator("#detail")).to_have_attribute("data-state", "signed")
        await page.fill('#detail form[data-act="note"] input[name="text"]', "已派抢修班组到场")
        await page.click('#detail form[data-act="note"] button')
        await expect(page.locator("#history")).to_contain_text("已派抢修班组到场")
        await page.fill('#detail form[data-act="reply"] textarea', "管道已修复，今日18时恢复供水")
        await page.click('#detail form[data-act="reply"] button')
        await expect(page.locator("#detail")).to_have_attribute("data-state", "replied")
        await expect(row).to_contain_text("replied")

        async with hotline.work_orders.sessions() as session:
            state, reply = (await session.execute(
                text("SELECT state, reply FROM work_orders WHERE number = :n"),
                {"n": order.number})).one()  # fmt: skip
            events = (await session.execute(text(
                "SELECT e.actor, e.role, e.action, e.from_state, e.to_state, e.at"
                " FROM work_order_events e JOIN work_orders o ON o.id = e.work_order_id"
                " WHERE o.number = :n ORDER BY e.id"), {"n": order.number})).all()  # fmt: skip
        assert (state, reply) == ("replied", "管道已修复，今日18时恢复供水")
        mine = [tuple(e[:5]) for e in events if e[0] == "water-clerk"]
        assert mine == [("water-clerk", "department", "sign", "dispatched", "signed"),
                        ("water-clerk", "department", "note", "signed", "signed"),
                        ("water-clerk", "department", "reply", "signed", "replied")]  # fmt: skip
        for event in events[-3:]:
            at = event[5] if isinstance(event[5], datetime) else datetime.fromisoformat(event[5])
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            assert before - timedelta(seconds=1) <= at <= datetime.now(UTC)
        history = (await hotline.work_orders.get(order.number)).history
        assert [(h.actor, h.action) for h in history[-3:]] == [
            ("water-clerk", "sign"),
            ("water-clerk", "note"),
            ("water-clerk", "reply"),
        ]

        # a new order dispatched while the page is open appears without a reload
        fresh = await dispatched(hotline, "解放路地下管网漏水")
        await expect(page.locator(f'#orders tr[data-number="{fresh.number}"]')).to_be_visible()
        await expect(page.locator("#news")).to_contain_text(f"新派工单 new order: {fresh.number}")
        assert await page.evaluate("window.sameDocument === true")
        await screenshot(page, "portal", tmp_path)

        # supervision escalates the overdue order: the urging shows on the page at once
        report = await supervise(hotline.work_orders)
        assert late.number in report.escalated
        await expect(page.locator("#news")).to_contain_text(
            f"工单超期督办 escalated (overdue): {late.number}"
        )
        assert await page.evaluate("window.sameDocument === true")

        # another department's user sees none of the water company's orders
        gas = await other.new_page()
        await log_in(gas, "gas-clerk")
        await expect(gas.locator("#empty")).to_be_visible()
        for number in (order.number, secret.number, late.number, fresh.number):
            assert await gas.locator(f'#orders tr[data-number="{number}"]').count() == 0
    finally:
        await context.close()
        await other.close()
