"""The operator's desk (web/desk.py, web/static/desk.js, web/live.py) in real headless
Chromium against the engine with a real Asterisk: an operator logs in and goes available on
the desk, a sipp citizen calls 12345 and chooses the report queue, a sipp softphone
registered as the operator's seat answers, and the desk pops (server-sent events) with the
caller's number, the IVR path and the earlier order of that number; the operator corrects
the subject (saved as typed) and dispatches; SQL has the corrected, dispatched order. The
softphone's *23 pauses the seat and the desk follows; the desk resumes it. The same citizen
calls again: both earlier orders with their states and the first call are shown, and the
operator merges the new order into the dispatched one; a third time the operator answers
directly with a knowledge-base entry found on the desk. A second operator's desk shows
nothing of it; a department user is refused the desk (403). The desk's screenshot is the
README's docs/desk.png with HOTLINE_SCREENSHOTS=docs."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from browser import browser, new_context, screenshot  # noqa: F401
from conftest import eventually, new_caller
from playwright.async_api import Browser, Page, expect
from seat_calls import REPORT
from sqlalchemy import select
from staff import staff_token

from accounts.users import AccountRole
from agents.states import SeatState
from hotline.engine import Hotline
from hotline.secrets import stored_secret
from hotline.settings import PROJECT_DIR
from sipsim.citizen import CitizenCall, start_call
from sipsim.seat import dial_feature_code, start_seat, unregister
from workorders.models import WorkOrderRow
from workorders.orders import Actor, NewWorkOrder, Role

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PIN = "2468"
PASSWORD = "desk test password 1"
YANTA = "雁塔区人民政府"


async def sign_in(browser: Browser, url: str, name: str) -> tuple[Page, object]:  # noqa: F811
    context = await new_context(browser, url)
    page = await context.new_page()
    await page.set_viewport_size({"width": 1400, "height": 900})
    await page.goto("/login")
    await page.fill("#name", name)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    return page, context


@pytest.mark.timeout(420)
async def test_the_desk_pops_with_the_call_and_dispatches_its_order(
    hotline: Hotline,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    s = hotline.settings
    url = f"http://{s.web_host}:{s.web_port}"
    accounts = hotline.accounts.accounts
    for name, role, ext, dept in (("desk-op1", AccountRole.OPERATOR, "8001", ""),
                                  ("desk-op2", AccountRole.OPERATOR, "8002", ""),
                                  ("desk-yanta", AccountRole.DEPARTMENT, "", YANTA)):  # fmt: skip
        await staff_token(accounts, name, role, password=PASSWORD, extension=ext, department=dept)
    caller = new_caller()
    earlier = await hotline.work_orders.create(
        NewWorkOrder(channel="phone", caller_phone=caller, category="report",
                     subject="小区路灯不亮", description="路灯坏了一周"),
        Actor("desk-op1", Role.OPERATOR),
    )  # fmt: skip
    password = stored_secret(s.data_dir, "seat-8001")
    seat = await start_seat(tmp_path, "8001", password, sip_port=s.sip_port)
    contexts = []
    try:
        # a department user may not open the desk
        page3, context3 = await sign_in(browser, url, "desk-yanta")
        contexts.append(context3)
        response = await page3.goto("/desk")
        assert response is not None and response.status == 403
        assert (await response.json())["error"]["code"] == "forbidden"

        # both operators land on their desks, live
        op2, context2 = await sign_in(browser, url, "desk-op2")
        contexts.append(context2)
        await expect(op2).to_have_url(url + "/desk")
        op1, context1 = await sign_in(browser, url, "desk-op1")
        contexts.append(context1)
        await expect(op1).to_have_url(url + "/desk")
        for page in (op1, op2):
            await expect(page.locator("body")).to_have_attribute("data-live", "open")
        await expect(op1.locator("#seat")).to_have_text("8001")

        # the operator logs the seat in from the desk: the ACD has it available
        await op1.fill("#pin", PIN)
        await op1.click("#seat-login")
        await expect(op1.locator("#seat-state")).to_have_attribute("data-state", "available")
        assert (await hotline.acd.seat("8001")).state is SeatState.AVAILABLE
        hotline.dispatcher.kick()

        # call 1: the desk pops with the caller, the IVR path and the earlier order
        citizen, popped = await call_in(hotline, op1, tmp_path, caller)
        status = await hotline.acd.seat("8001")
        assert status.state is SeatState.ON_CALL and seat.callers() == [caller]
        await expect(op1.locator("#ivr-keys")).to_have_text("1 1")
        await expect(op1.locator("#ivr-queue")).to_have_text("report")
        row = op1.locator(f"#earlier-orders tr[data-number='{earlier.number}']")
        await expect(row).to_contain_text("小区路灯不亮")
        await expect(row).to_have_attribute("data-state", "registered")
        first = await order_number(op1)
        assert first != earlier.number
        await expect(op1.locator("#order-state")).to_have_text("registered")

        # the operator corrects the subject (saved as typed) and the department
        await op1.fill("#subject", "小区路灯不亮（第二次反映）")
        await op1.select_option("#lead_department", YANTA)
        await op1.check("#no_revisit")
        await expect(op1.locator("#saved")).to_contain_text("已保存")
        saved = await hotline.work_orders.get(first)
        assert saved.subject == "小区路灯不亮（第二次反映）" and saved.lead_department == YANTA
        assert saved.no_revisit is True and saved.call_id == status.call_id
        await expect(op1.locator("#time-limit")).not_to_have_text("—")
        await op1.click("#dispatch")
        await expect(op1.locator("#order-state")).to_have_text("dispatched")

        # the second operator saw nothing of it
        assert await op2.locator("#call").is_hidden()
        assert (await op2.locator("#caller-number").text_content() or "") == ""

        result = await citizen.hang_up()
        assert result.returncode == 0, result.errors
        async with hotline._sessions() as session:
            stored = await session.scalar(select(WorkOrderRow).where(WorkOrderRow.number == first))
            assert stored is not None
            assert stored.state == "dispatched" and stored.lead_department == YANTA
            assert stored.subject == "小区路灯不亮（第二次反映）" and stored.due_at is not None
            assert stored.caller_phone == caller and stored.seat == "8001"
            assert stored.attributes.get("no_revisit") is True
            actions = [(e.actor, e.action) for e in stored.history]
            assert ("desk-op1", "update") in actions and ("desk-op1", "dispatch") in actions
        # the call's end reaches the desk; the wrap-up ends by its timer
        await expect(op1.locator("#call-ended")).to_be_visible(timeout=20_000)
        await eventually(lambda: _state(hotline, "8001", SeatState.AVAILABLE), 30, "wrap-up end")
        await expect(op1.locator("#seat-state")).to_have_attribute("data-state", "available")

        # the softphone's feature code pauses the seat: the desk follows; the desk resumes it
        await dial_feature_code(tmp_path, "8001", password, "*23", sip_port=s.sip_port)
        await expect(op1.locator("#seat-state")).to_have_attribute("data-state", "paused")
        await op1.click("#seat-available")
        await expect(op1.locator("#seat-state")).to_have_attribute("data-state", "available")
        await eventually(lambda: _state(hotline, "8001", SeatState.AVAILABLE), 10, "resumed")

        # call 2, the same citizen again: both earlier orders with their states, the first
        # call; the operator merges this one into the dispatched order
        citizen, _ = await call_in(hotline, op1, tmp_path, caller)
        second = await order_number(op1)
        row = op1.locator(f"#earlier-orders tr[data-number='{first}']")
        await expect(row).to_have_attribute("data-state", "dispatched")
        await expect(op1.locator("#earlier-orders tbody tr")).to_have_count(2)
        await expect(op1.locator("#earlier-calls tbody tr")).to_have_count(1)
        await row.locator("input[type=radio]").check()
        await op1.click("#merge")
        await expect(op1.locator("#order-state")).to_have_text("merged")
        assert (await citizen.hang_up()).returncode == 0
        merged = await hotline.work_orders.get(second)
        assert merged.state.value == "merged" and merged.merged_into == first

        # call 3: the operator finds the answer in the knowledge base and answers directly
        await eventually(lambda: _state(hotline, "8001", SeatState.AVAILABLE), 30, "wrap-up end")
        seed = json.loads((PROJECT_DIR / "knowledge" / "seed.json").read_text("utf-8"))
        await hotline.knowledge.import_entries(seed["entries"], "test")
        citizen, _ = await call_in(hotline, op1, tmp_path, caller)
        third = await order_number(op1)
        await expect(op1.locator("#earlier-orders tbody tr")).to_have_count(3)
        await op1.fill("#kb-q", "社保卡补办")
        await op1.click("#kb-search")
        hit = op1.locator("#kb-results li").first
        await expect(hit).to_contain_text("社保卡补办流程")
        await op1.fill("#subject", "咨询社保卡补办")
        await expect(op1.locator("#saved")).to_contain_text("已保存")
        await screenshot(op1, "desk", tmp_path)
        await hit.locator(".kb-use").click()
        await expect(op1.locator("#answer-text")).to_have_value(re.compile("社保卡补办流程"))
        await op1.click("#answer")
        await expect(op1.locator("#order-state")).to_have_text("answered")
        assert (await citizen.hang_up()).returncode == 0
        answered = await hotline.work_orders.get(third)
        assert "【知识库：社保卡补办流程" in answered.reply
        assert answered.subject == "咨询社保卡补办"

        # pause with a reason and log out from the desk
        await eventually(lambda: _state(hotline, "8001", SeatState.AVAILABLE), 30, "wrap-up end")
        await op1.select_option("#pause-reason", "lunch")
        await op1.click("#seat-pause")
        await expect(op1.locator("#seat-reason")).to_have_text("lunch")
        assert (await hotline.acd.seat("8001")).reason == "lunch"
        await op1.click("#seat-logout")
        await expect(op1.locator("#seat-state")).to_have_attribute("data-state", "logged_out")
        assert (await hotline.acd.seat("8001")).state is SeatState.LOGGED_OUT
        assert await op2.locator("#call").is_hidden()
        print(f"desk popped {popped:.1f} s after the citizen's sipp started (IVR keys included)")
    finally:
        for context in contexts:
            await context.close()  # type: ignore[attr-defined]
        if (await hotline.acd.seat("8001")).state is not SeatState.LOGGED_OUT:
            await eventually(lambda: _state(hotline, "8001", SeatState.AVAILABLE, SeatState.PAUSED,
                                            SeatState.WRAP_UP), 30, "seat 8001 idle")  # fmt: skip
            await hotline.acd.logout("8001")
        await unregister(seat, password, sip_port=s.sip_port)
        await seat.stop()


async def call_in(
    hotline: Hotline, desk: Page, workdir: Path, caller: str
) -> tuple[CitizenCall, float]:
    """A sipp citizen calls and presses 1 1 (report) and stays on the line (until the test
    hangs it up, at most 30 s); returns once ``desk`` shows the caller and a new order (and
    how long after the call started)."""
    s = hotline.settings
    before = await desk.locator("#order-number").text_content() or ""
    started = time.monotonic()
    citizen = await start_call(
        workdir, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=caller, presses=REPORT, hold_ms=30_000, timeout_s=90,
    )  # fmt: skip
    number = desk.locator("#order-number")
    if before:
        await expect(number).not_to_have_text(before, timeout=40_000)
    await expect(number).to_have_text(re.compile(r"^\d+$"), timeout=40_000)
    await expect(desk.locator("#caller-number")).to_have_text(caller)
    return citizen, time.monotonic() - started


async def order_number(desk: Page) -> str:
    number = (await desk.locator("#order-number").text_content() or "").strip()
    assert number.isdigit(), number
    return number


async def _state(hotline: Hotline, ext: str, *states: SeatState) -> bool:
    return (await hotline.acd.seat(ext)).state in states
