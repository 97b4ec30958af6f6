"""The supervisor's wallboard in real headless Chromium against the real engine, Asterisk and
sipp: the page changes without a reload when a citizen's call joins a queue and when a seat
answers it, the longest-wait threshold (lowered by the test settings) colours the queue's
tile and raises the alert, and the seat controls pause and log out a seat through the seat
API with the session's CSRF token, each use in the audit log. A screenshot of the board with
a caller waiting: docs/wallboard.png with HOTLINE_SCREENSHOTS=docs."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from browser import browser, new_context, screenshot  # noqa: F401
from conftest import eventually, new_caller
from playwright.async_api import Browser, Page, expect
from staff import staff_token
from test_acd_calls import dial

from accounts.users import AccountRole
from agents.states import SeatState
from hotline.engine import Hotline
from hotline.secrets import stored_secret
from sipsim.citizen import Press
from sipsim.seat import start_seat, unregister

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PIN = "2468"
PASSWORD = "wallboard lead password"
BUSINESS = [Press("1", 2500), Press("4", 1500)]  # Mandarin, then 4: business environment
SEAT = "8003"  # the business queue's best seat (level 1)
PAUSED = "8001"  # takes no business calls (nor any, paused)


async def log_in(page: Page) -> None:
    await page.goto("/supervisor")
    await expect(page).to_have_url(re.compile(r"/login\?next=/supervisor$"))
    await page.fill("#name", "wallboard-lead")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/supervisor$"))
    await expect(page.locator("#live")).to_contain_text("live")  # the event stream is open


def tile(page: Page, queue: str, key: str):  # type: ignore[no-untyped-def]
    return page.locator(f'.tile[data-queue="{queue}"] dd[data-k="{key}"]')


async def test_wallboard_follows_a_call_live(
    hotline: Hotline,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    s = hotline.settings
    assert s.wallboard_longest_wait_alert_s < 10, "the test settings lower the threshold"
    await staff_token(hotline.accounts.accounts, "wallboard-lead", AccountRole.SUPERVISOR,
                      password=PASSWORD)  # fmt: skip
    for seat in hotline.seats.seats:  # nobody takes business calls until the test says so
        if (await hotline.acd.seat(seat.extension)).state is not SeatState.LOGGED_OUT:
            await hotline.acd.logout(seat.extension)
    await hotline.acd.login(PAUSED, PIN)  # a seat on a break, for the screenshot
    await hotline.acd.pause(PAUSED, "lunch")
    secret = stored_secret(s.data_dir, f"seat-{SEAT}")
    seat = await start_seat(tmp_path, SEAT, secret, sip_port=s.sip_port)
    context = await new_context(browser, f"http://{s.web_host}:{s.web_port}")
    call: asyncio.Task[None] | None = None
    try:
        page = await context.new_page()
        await log_in(page)
        await page.evaluate("window.sameDocument = true")  # gone if the page reloaded
        answered_before = int(await tile(page, "business", "answered").inner_text())
        await expect(tile(page, "business", "waiting")).to_have_text("0")
        paused = page.locator(f'tr[data-seat="{PAUSED}"]')
        await expect(paused).to_contain_text("暂停 Paused (lunch)")
        row = page.locator(f'tr[data-seat="{SEAT}"] td.state')
        await expect(row).to_have_attribute("data-state", "logged_out")

        caller = new_caller()
        call = asyncio.create_task(dial(hotline, tmp_path, caller, BUSINESS, 30_000))
        # the caller joins the business queue: the board shows it without a reload
        await expect(tile(page, "business", "waiting")).to_have_text("1", timeout=30_000)
        # past the (test) threshold the tile turns red and the alert names the queue
        business = page.locator('.tile[data-queue="business"]')
        await expect(business).to_have_class(re.compile(r"\balert\b"), timeout=20_000)
        await expect(page.locator("#alerts")).to_contain_text("business: 最长等待")
        await expect(page.locator("#alerts")).to_contain_text("longest wait")
        await screenshot(page, "wallboard", tmp_path)

        # the seat logs in (as at its phone) and the ACD puts the caller through: the seat's
        # row turns to on call, the queue empties, the answered count goes up, the alert goes
        await hotline.acd.login(SEAT, PIN)
        hotline.dispatcher.kick()
        await expect(row).to_have_attribute("data-state", "on_call", timeout=30_000)
        await expect(tile(page, "business", "waiting")).to_have_text("0")
        await expect(tile(page, "business", "answered")).to_have_text(str(answered_before + 1))
        await expect(business).not_to_have_class(re.compile(r"\balert\b"))
        await expect(page.locator("#alerts")).not_to_contain_text("business")
        assert await page.evaluate("window.sameDocument === true")

        await call  # the citizen hangs up; wrap-up, then the seat is available again
        call = None
        await expect(row).to_have_attribute("data-state", "available", timeout=30_000)
        # the supervisor's controls: pause, then log out, each through the seat API
        await page.click(f'button[data-seat="{SEAT}"][data-action="pause"]')
        await expect(row).to_have_attribute("data-state", "paused")
        await expect(row).to_contain_text("supervisor")  # the pause reason
        assert (await hotline.acd.seat(SEAT)).state is SeatState.PAUSED
        await page.click(f'button[data-seat="{SEAT}"][data-action="logout"]')
        await expect(row).to_have_attribute("data-state", "logged_out")
        assert await page.evaluate("window.sameDocument === true")

        audit = await hotline.accounts.accounts.audit_log(50)
        used = [(a["actor"], a["target"], a["detail"]) for a in audit]
        assert ("wallboard-lead", f"POST /api/seats/{SEAT}/pause", "status 200") in used
        assert ("wallboard-lead", f"POST /api/seats/{SEAT}/logout", "status 200") in used
    finally:
        if call is not None:
            call.cancel()
        await context.close()
        await hotline.acd.logout(PAUSED)
        if (await hotline.acd.seat(SEAT)).state is not SeatState.LOGGED_OUT:
            await eventually(lambda: _not_on_call(hotline), 30, "the seat to be free")
            await hotline.acd.logout(SEAT)
        await unregister(seat, secret, sip_port=s.sip_port)
        await seat.stop()


async def _not_on_call(hotline: Hotline) -> bool:
    return (await hotline.acd.seat(SEAT)).state not in {SeatState.RINGING, SeatState.ON_CALL}
