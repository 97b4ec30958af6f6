"""The wallboard's revisit tile and manual revisit list in real headless Chromium, against the
engine's own web service (``Hotline.start`` without Asterisk: real SQLite, the test Redis).

Revisits are seeded through the engine's revisit service: one called, answered and completed
(resolved, very satisfied), one on the manual list (a confidential reporter). The supervisor
sees the service's own figures on the tile, records the manual one's result from the page
(with the session's CSRF token) and the result is in SQL (the revisit row, the order's
history and its rework); the tile and the list change without a reload, through the live
``revisit`` events (the page itself does not poll), also for a revisit listed by the server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from browser import browser, log_in, new_context, screenshot  # noqa: F401
from conftest import running, web_engine_settings
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select
from staff import staff_token
from test_revisit_service import reviewed

from accounts.users import AccountRole
from hotline.engine import Hotline
from revisit.models import RevisitRow
from sipsim.ports import SHIFTS
from workorders.models import WorkOrderEventRow, WorkOrderRow
from workorders.orders import Satisfaction
from workorders.states import Action, State

pytestmark = pytest.mark.slow

REVISIT_BOARD_PORT_SHIFT = SHIFTS["wallboard-revisits"]
PASSWORD = "revisit lead password"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def hotline(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hotline]:
    base = tmp_path_factory.mktemp("revisit-board")
    s = web_engine_settings(base, "revisitboard", REVISIT_BOARD_PORT_SHIFT).replace(
        # every revisit due at once, whatever the hour of the test run
        revisit_at_once=True, revisit_calling_hours="00:00-23:59", revisit_calling_days="all",
    )  # fmt: skip
    async with running(s) as engine:
        await staff_token(engine.accounts.accounts, "revisit-lead", AccountRole.SUPERVISOR,
                          password=PASSWORD)  # fmt: skip
        yield engine


async def revisit_state(hotline: Hotline, number: str) -> str:
    await hotline.revisits.schedule_closed()  # (the engine's dialer loop may have done it)
    return str((await hotline.revisits.show(number))["state"])


def pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


def tile_texts(f: dict[str, Any]) -> dict[str, str]:
    """What the tile must show for the service's figures ``f``."""
    by = f["by_state"]
    return {
        "reach_rate": f"{pct(f['reach_rate'])} ({f['reached']}/{f['called']})",
        "resolved_rate": pct(f["resolved_rate"]),
        "satisfaction_rate": pct(f["satisfaction_rate"]),
        "results": str(f["results"]),
        **{state: str(by[state]) for state in ("due", "dialing", "manual", "done")},
    }


async def expect_tile(page: Page, figures: dict[str, Any]) -> None:
    for key, text in tile_texts(figures).items():
        await expect(page.locator(f'.tile[data-tile="revisits"] dd[data-k="{key}"]')).to_have_text(
            text
        )


async def test_revisit_tile_and_manual_list_live(
    hotline: Hotline,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    service = hotline.revisits
    called = await reviewed(hotline.work_orders, "13900001111")
    manual = await reviewed(hotline.work_orders, "13900002222", confidential=True)
    assert await revisit_state(hotline, called) == "due"
    assert await revisit_state(hotline, manual) == "manual"
    claimed = {c.order_number: c for c in await service.claim("test-seeder")}
    attempt = claimed[called]
    assert await service.answered(attempt.channel_id) is not None
    await service.complete(attempt.channel_id, True, Satisfaction.VERY_SATISFIED)
    before = await service.figures()
    assert before["results"] == 1 and before["resolved_rate"] == 1.0
    assert before["satisfaction_rate"] == 1.0 and before["reach_rate"] == 1.0
    assert before["by_state"]["manual"] == 1

    s = hotline.settings
    context = await new_context(browser, f"http://{s.web_host}:{s.web_port}")
    try:
        page = await context.new_page()
        await log_in(page, "revisit-lead", PASSWORD, "/supervisor")
        await expect(page).to_have_url(re.compile(r"/supervisor$"))
        await expect(page.locator("#live")).to_contain_text("live")  # the event stream is open
        await page.evaluate("window.sameDocument = true")  # gone if the page reloaded
        await expect_tile(page, before)
        rows = page.locator("#manual-revisits tr[data-revisit]")
        await expect(rows).to_have_count(1)
        row = page.locator(f'#manual-revisits tr[data-revisit="{manual}"]')
        await expect(row).to_contain_text("不接受回访 Not to be called")
        await expect(row).not_to_contain_text("13900002222")  # masked
        await screenshot(page, "wallboard-revisits", tmp_path)

        # The supervisor called the citizen: not resolved, dissatisfied.
        await row.locator("select[name=resolved]").select_option("no")
        await row.locator("select[name=satisfaction]").select_option("dissatisfied")
        await row.locator("input[name=note]").fill("电话回访：夜间仍有施工")
        await row.locator("button[type=submit]").click()
        await expect(rows).to_have_count(0)  # redrawn on the live event
        after = await service.figures()
        assert after["results"] == 2 and after["resolved_rate"] == 0.5
        assert after["satisfaction_rate"] == 0.5 and after["by_state"]["manual"] == 0
        await expect_tile(page, after)
        assert await page.evaluate("window.sameDocument") is True
        await expect(page.locator("#revisit-notice")).to_have_text("")

        async with hotline.work_orders.sessions() as session:
            revisit = await session.scalar(
                select(RevisitRow).where(RevisitRow.order_number == manual)
            )
            assert revisit is not None and revisit.state == "done"
            assert revisit.resolved is False and revisit.satisfaction == "dissatisfied"
            assert revisit.result_by == "revisit-lead" and revisit.done_at is not None
            order = await session.scalar(select(WorkOrderRow).where(WorkOrderRow.number == manual))
            assert order is not None
            assert order.satisfaction == "dissatisfied" and order.resolved is False
            assert order.state == State.DISPATCHED.value and order.rework_count == 1
            history = list(
                await session.scalars(
                    select(WorkOrderEventRow)
                    .where(WorkOrderEventRow.work_order_id == order.id)
                    .order_by(WorkOrderEventRow.id)
                )
            )
        revisit_event, rework_event = history[-2:]
        assert revisit_event.action == Action.REVISIT.value
        assert revisit_event.actor == "revisit-lead"
        assert revisit_event.note == "电话回访：夜间仍有施工"
        assert rework_event.action == Action.REWORK.value

        # A revisit listed by the server (a reporter not to be called) appears by itself.
        another = await reviewed(hotline.work_orders, "13900003333", confidential=True)
        assert await revisit_state(hotline, another) == "manual"
        await expect(page.locator(f'#manual-revisits tr[data-revisit="{another}"]')).to_be_visible()
        await expect_tile(page, await service.figures())
        assert await page.evaluate("window.sameDocument") is True
    finally:
        await context.close()
