"""Two engines on one Redis (web/fanout.py): the session's engine A holds the citizen's call
(Asterisk's FastAGI goes to it) and a second engine B, started here on the same Redis, ACD
prefix and database, serves the pages. In real headless Chromium, B's wallboard changes
without a reload when the sipp caller joins A's queue and when A puts the caller through to
the seat; B's server-sent events bring the seat's operator the ``call`` A published (with
the desk's facts A gathered), and a department user the ``portal`` news of an order A
dispatched. B's own call listeners never see that call: only the shared live stream brings
it (without it, the two streams on B stay silent)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from browser import browser, new_context  # noqa: F401
from conftest import engine_ports, eventually, new_caller
from playwright.async_api import Browser, Locator, expect
from staff import staff_token
from test_wallboard import BUSINESS, PIN, SEAT, log_in, tile
from web_client import next_event

from accounts.users import AccountRole
from agents.states import SeatState
from hotline.engine import Hotline
from hotline.secrets import stored_secret
from sipsim.citizen import CitizenCall, start_call
from sipsim.ports import SHIFTS
from sipsim.seat import start_seat, unregister
from workorders.orders import Actor, NewWorkOrder, Role

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ENGINES_PORT_SHIFT = SHIFTS["wallboard-engines"]  # engine B's web and FastAGI ports
PASSWORD = "wallboard lead password"  # test_wallboard's supervisor, made here if missing
WATER = "市水务集团"


@pytest_asyncio.fixture(loop_scope="session")
async def engine_b(hotline: Hotline, tmp_path: Path) -> AsyncIterator[Hotline]:
    """A second engine beside ``hotline``: its Redis, ACD prefix, database and Asterisk's AMI,
    its own data folder and web and FastAGI ports (Asterisk sends callers to A only)."""
    a = hotline.settings
    shutil.copytree(a.prompts_dir, tmp_path / "b" / "prompts")  # no second synthesis
    ports = engine_ports(ENGINES_PORT_SHIFT)
    settings = a.replace(
        data_dir=tmp_path / "b", recordings_dir=tmp_path / "b-recordings",
        manage_asterisk=False, ami_secret=stored_secret(a.data_dir, "ami_secret"),
        database_url=a.effective_database_url, web_port=ports["web_port"],
        agi_port=ports["agi_port"],
    )  # fmt: skip
    engine = Hotline(settings)
    try:
        await engine.start()
        yield engine
    finally:
        await engine.stop()  # not `running`: the ACD keys are A's


async def test_a_page_on_engine_b_follows_engine_a(
    hotline: Hotline,
    engine_b: Hotline,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    a, b = hotline, engine_b
    s, b_url = a.settings, f"http://{b.settings.web_host}:{b.settings.web_port}"
    accounts = a.accounts.accounts  # one database: B knows the same staff
    await staff_token(accounts, "wallboard-lead", AccountRole.SUPERVISOR, password=PASSWORD)
    operator = await staff_token(accounts, "engines-op", AccountRole.OPERATOR, extension=SEAT)
    clerk = await staff_token(accounts, "engines-water", AccountRole.DEPARTMENT, department=WATER)
    for seat in a.seats.seats:  # nobody takes business calls until the test says so
        if (await a.acd.seat(seat.extension)).state is not SeatState.LOGGED_OUT:
            await a.acd.logout(seat.extension)
    secret = stored_secret(s.data_dir, f"seat-{SEAT}")
    phone = await start_seat(tmp_path, SEAT, secret, sip_port=s.sip_port)
    context = await new_context(browser, b_url)
    call: CitizenCall | None = None
    async with aiohttp.ClientSession() as http:
        desk = await http.get(f"{b_url}/api/live?topics=call",
                              headers={"Authorization": f"Bearer {operator}"})  # fmt: skip
        portal = await http.get(f"{b_url}/api/portal/live?topics=portal",
                                headers={"Authorization": f"Bearer {clerk}"})  # fmt: skip
        try:
            assert (desk.status, portal.status) == (200, 200)
            page = await context.new_page()
            await log_in(page)  # B's wallboard
            await page.evaluate("window.sameDocument = true")  # gone if the page reloaded
            answered_before = int(await tile(page, "business", "answered").inner_text())
            await expect_text(tile(page, "business", "waiting"), "0")
            row = page.locator(f'tr[data-seat="{SEAT}"] td.state')

            caller = new_caller()
            call = await start_call(
                tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
                caller=caller, presses=BUSINESS, hold_ms=20_000,
            )  # fmt: skip
            await expect_text(tile(page, "business", "waiting"), "1")  # A's queue, B's page

            await a.acd.login(SEAT, PIN)
            a.dispatcher.kick()
            popped = await next_event(desk, "call", 30)  # published by A, served by B
            assert (popped["seat"], popped["caller_number"]) == (SEAT, caller)
            await expect_attr(row, "on_call")
            await expect_text(tile(page, "business", "waiting"), "0")
            await expect_text(tile(page, "business", "answered"), str(answered_before + 1))
            assert await page.evaluate("window.sameDocument === true")

            new = NewWorkOrder(channel="phone", description="和平路12号自来水管爆裂",
                               caller_phone=caller)  # fmt: skip
            actor = Actor("engines-op", Role.OPERATOR)
            order = await a.work_orders.create(new, actor)
            await a.work_orders.dispatch(order.number, actor, lead_department=WATER, assisting=[])
            news = await next_event(portal, "portal", 30)  # A's work-order service, B's portal
            assert (news["number"], news["news"], news["part"]) == (order.number, "dispatched",
                                                                    "lead")  # fmt: skip
            result = await call.hang_up()
            call = None
            assert result.returncode == 0, result.errors[-2000:]
        finally:
            desk.close()
            portal.close()
            if call is not None:
                call.cancel()
            await context.close()
            if (await a.acd.seat(SEAT)).state is not SeatState.LOGGED_OUT:
                await eventually(lambda: _free(a), 30, "the seat to be free")
                await a.acd.logout(SEAT)
            await unregister(phone, secret, sip_port=s.sip_port)
            await phone.stop()


async def expect_text(locator: Locator, text: str) -> None:
    await expect(locator).to_have_text(text, timeout=30_000)


async def expect_attr(locator: Locator, state: str) -> None:
    await expect(locator).to_have_attribute("data-state", state, timeout=30_000)


async def _free(hotline: Hotline) -> bool:
    return (await hotline.acd.seat(SEAT)).state not in {SeatState.RINGING, SeatState.ON_CALL}
