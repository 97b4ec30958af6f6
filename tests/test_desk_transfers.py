"""The desk's transfer buttons in real headless Chromium (issue 10), checked from Asterisk's
and sipp's side: the three-way button brings a department's number (a sipp UAS behind the
carrier trunk) into one bridge with the citizen and the seat; "consult first" to a
department's number holds the citizen while the operator talks to it, and "put through"
connects the citizen to it; "consult first" to a queue rings the seat the ACD chooses, whose
desk shows the consultation, then the call once put through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from browser import browser, log_in, new_context, screenshot  # noqa: F401
from conftest import CALLBACK_PORT, AmiEvents, eventually
from playwright.async_api import Browser, Page, expect
from seat_calls import caller_at_8001
from staff import staff_token

# the e2e seats fixture and the helpers of the ACD's, transfers' and consultations' tests
from test_acd_calls import StartSeats, seats  # noqa: F401
from test_consult import consulted_then_transferred, dialled, journey, talking
from test_transfers import DESK_PASSWORD, _bridge_of, _sip_user, end_room

from accounts.users import AccountRole
from hotline.engine import Hotline
from sipsim.seat import Seat, run_uas, uas_scenario

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEPARTMENT = "02988886666"  # a local number: the callback rule would call it


@pytest.fixture
async def desk(
    hotline: Hotline,
    browser: Browser,  # noqa: F811
) -> AsyncIterator[Page]:
    """Seat 8001's operator on the desk page, its live stream open (the account of
    test_transfers' handover test: one password for it in the session)."""
    s = hotline.settings
    await staff_token(hotline.accounts.accounts, "e2e-desk-8001", AccountRole.OPERATOR,
                      password=DESK_PASSWORD, extension="8001")  # fmt: skip
    context = await new_context(browser, f"http://{s.web_host}:{s.web_port}")
    page = await context.new_page()
    await log_in(page, "e2e-desk-8001", DESK_PASSWORD, then="/desk")
    await expect(page.locator("body")).to_have_attribute("data-live", "open")
    try:
        yield page
    finally:
        await context.close()


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Seat]:
    """A department's phone behind the carrier trunk: answers after a second of ringing."""
    phone = await run_uas(tmp_path, "office", CALLBACK_PORT, uas_scenario(True, 1000))
    try:
        yield phone
    finally:
        await phone.stop()


async def test_the_three_way_button_brings_a_department_into_the_call(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    ami_events: AmiEvents,
    desk: Page,
    office: Seat,
    tmp_path: Path,
) -> None:
    call_id = ""
    try:
        await seats("8001")
        caller, call_id, call = await caller_at_8001(hotline, tmp_path, 20_000)
        await expect(desk.locator("#caller-number")).to_have_text(caller)
        await desk.fill("#three-way-number", "0012025550100")  # international: refused
        await desk.click("#three-way")
        await expect(desk.locator("#message")).to_contain_text("three-way")
        assert not office.invites()
        await desk.fill("#three-way-number", DEPARTMENT)
        await desk.click("#three-way")
        await expect(desk.locator("#message")).to_contain_text(f"three-way:{DEPARTMENT}")

        async def three_in_one_bridge() -> bool:
            return len(_bridge_of(ami_events, call_id)) == 3

        await eventually(three_in_one_bridge, 20, "caller, seat and department in one bridge")
        [invite] = office.invites()
        assert _sip_user(invite.splitlines()[0]) == DEPARTMENT, invite
        members = _bridge_of(ami_events, call_id)
        assert any(name.startswith("PJSIP/8001-") for name in members), members
        await call.hang_up()
        assert await journey(hotline, call_id) == [
            ("transfer", f"three-way:{DEPARTMENT}", "from seat 8001 by e2e-desk-8001")
        ]
    finally:
        await end_room(hotline, ami_events, call_id)


async def test_consult_first_then_put_through_from_the_desk(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    ami_events: AmiEvents,
    desk: Page,
    office: Seat,
    tmp_path: Path,
) -> None:
    await seats("8001")
    caller, call_id, call = await caller_at_8001(hotline, tmp_path, 25_000)
    await expect(desk.locator("#caller-number")).to_have_text(caller)
    await expect(desk.locator("#consult-complete")).to_be_hidden()
    await desk.fill("#three-way-number", DEPARTMENT)
    await desk.select_option("#consult-to", "number")
    since = len(ami_events.seen)
    await desk.click("#consult")
    await expect(desk.locator("#message")).to_contain_text(f"number:{DEPARTMENT}")

    async def answered() -> str:
        leg = dialled(ami_events, DEPARTMENT, since)
        return leg if leg and any(
            e.get("Event") == "BridgeEnter" and e.get("Uniqueid") == leg
            for e in ami_events.seen) else ""  # fmt: skip

    office_leg = await eventually(answered, 20, "the department to answer the operator")
    [invite] = office.invites()
    assert _sip_user(invite.splitlines()[0]) == DEPARTMENT, invite
    assert not talking(ami_events, call_id, office_leg)  # the citizen is held apart
    await expect(desk.locator("#consult-cancel")).to_be_visible()
    await screenshot(desk, "desk-consult", tmp_path)  # the README's picture
    await desk.click("#consult-complete")
    await expect(desk.locator("#message")).to_contain_text(f"number:{DEPARTMENT}")
    await expect(desk.locator("#consult-complete")).to_be_hidden()

    async def put_through() -> bool:
        return talking(ami_events, call_id, office_leg)

    await eventually(put_through, 15, "the citizen put through to the department")
    await call.hang_up()

    assert await consulted_then_transferred(hotline, call_id) == [
        ("consult", f"number:{DEPARTMENT}", "from seat 8001 by e2e-desk-8001"),
        ("transfer", f"number:{DEPARTMENT}", "from seat 8001 by e2e-desk-8001 (attended)"),
    ]


async def test_consult_a_queue_from_the_desk_then_its_chosen_seat_s_desk_takes_the_call(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    ami_events: AmiEvents,
    browser: Browser,  # noqa: F811
    desk: Page,
    tmp_path: Path,
) -> None:
    """8001's desk consults "the next free seat in business": seat 8003's desk shows a
    consultation from 8001 (not a call), reloaded too; put through, 8003's desk pops with the
    caller, the order opened at 8001's desk goes to 8003, and the call's end shows there."""
    s = hotline.settings
    await staff_token(hotline.accounts.accounts, "e2e-desk-8003", AccountRole.OPERATOR,
                      password=DESK_PASSWORD, extension="8003")  # fmt: skip
    context = await new_context(browser, f"http://{s.web_host}:{s.web_port}")
    try:
        other = await context.new_page()
        await log_in(other, "e2e-desk-8003", DESK_PASSWORD, then="/desk")
        await expect(other.locator("body")).to_have_attribute("data-live", "open")
        await seats("8001", "8003")
        caller, call_id, call = await caller_at_8001(hotline, tmp_path, 25_000)
        await expect(desk.locator("#caller-number")).to_have_text(caller)
        await desk.select_option("#consult-to", "queue:business")
        since = len(ami_events.seen)
        await desk.click("#consult")
        await expect(desk.locator("#message")).to_contain_text("queue:business")
        await expect(desk.locator("#message")).to_contain_text("8003")
        banner = other.locator("#consultation")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("8001")
        await expect(banner).to_contain_text("business")
        await expect(other.locator("#call")).to_be_hidden()  # not a call of 8003's yet
        await other.reload()  # the desk opened during the consultation (GET /api/desk)
        await expect(other.locator("body")).to_have_attribute("data-live", "open")
        await expect(banner).to_contain_text("8001")
        await expect(other.locator("#call")).to_be_hidden()

        async def answered() -> bool:
            return any(e.get("Event") == "BridgeEnter" and e.get("Channel", "").startswith(
                "PJSIP/8003-") for e in ami_events.seen[since:])  # fmt: skip

        await eventually(answered, 20, "seat 8003 to answer the consultation")
        await desk.click("#consult-complete")
        await expect(desk.locator("#message")).to_contain_text("queue:business")
        await expect(other.locator("#caller-number")).to_have_text(caller)
        await expect(banner).to_be_hidden()
        order = await hotline.work_orders.by_call(call_id)  # opened at 8001's desk, now 8003's
        assert order is not None and order.seat == "8003"
        assert [h.action for h in order.history][-1] == "taken-over"
        await call.hang_up()
        await expect(other.locator("#call-ended")).to_be_visible()  # the end reaches 8003
        assert (await consulted_then_transferred(hotline, call_id))[1] == (
            "transfer",
            "queue:business",
            "from seat 8001 by e2e-desk-8001 (attended): seat 8003",
        )
    finally:
        await context.close()
