"""``/metrics`` through the engine's own web service (``Hotline.start`` without Asterisk: real
SQLite, the ACD's Lua in the test Redis under a private prefix): seats logged in and paused
and callers queued through the ACD, work orders dispatched with deadlines past and near; the
scrape, parsed with the Prometheus client's own parser, agrees with the ACD's snapshot and
the orders. Never public: the metrics token or a supervisor, nobody else."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import pytest_asyncio
from browser import browser  # noqa: F401
from conftest import eventually, running, web_engine_settings
from playwright.async_api import Browser, expect
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from staff import staff_token

from accounts.users import AccountRole
from db.base import utcnow
from hotline.engine import Hotline
from hotline.settings import PROJECT_DIR
from hotline.wiring import metrics_token
from sipsim.ports import SHIFTS
from workorders.models import WorkOrderRow

pytestmark = pytest.mark.slow

METRICS_PORT_SHIFT = SHIFTS["metrics"]
PIN = "2468"
PASSWORD = "metrics lead password"
YANTA = "雁塔区人民政府"
DASHBOARD = PROJECT_DIR / "docs" / "grafana" / "hotline.json"


@dataclass
class Engine:
    hotline: Hotline
    url: str
    tokens: dict[str, str]
    orders: dict[str, str] = field(default_factory=dict)  # made by the scrape test


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Engine]:
    s = web_engine_settings(tmp_path_factory.mktemp("metrics"), "metrics", METRICS_PORT_SHIFT)
    async with running(s) as hotline:
        accounts = hotline.accounts.accounts
        tokens = {
            "lead": await staff_token(accounts, "lead", AccountRole.SUPERVISOR, password=PASSWORD),
            "op": await staff_token(accounts, "op", AccountRole.OPERATOR, extension="8001"),
            "scraper": metrics_token(s),
        }
        yield Engine(hotline, f"http://{s.web_host}:{s.web_port}", tokens)


async def scrape(engine: Engine, who: str = "scraper") -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {engine.tokens[who]}"} if who else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(engine.url + "/metrics", headers=headers) as response,
    ):
        return response.status, await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the scrape by (name, sorted labels), read by Prometheus' own parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float | None:  # fmt: skip
    return found.get((name, tuple(sorted(labels.items()))))


async def test_metrics_never_public(engine: Engine) -> None:
    assert (await scrape(engine, ""))[0] == 401
    engine.tokens["wrong"] = "not-the-metrics-token"
    assert (await scrape(engine, "wrong"))[0] == 401
    status, body = await scrape(engine, "op")
    assert status == 403 and '"forbidden"' in body
    assert (await scrape(engine, "lead"))[0] == 200
    assert (await scrape(engine, "scraper"))[0] == 200


async def an_order(engine: Engine, due_in: timedelta) -> str:
    auth = {"Authorization": f"Bearer {engine.tokens['op']}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.post(engine.url + "/api/workorders", json={
            "channel": "phone", "category": "complaint", "subject": "噪音扰民",
            "description": "工地夜间施工", "lead_department": YANTA}) as r:  # fmt: skip
            assert r.status == 201, await r.text()
            number = str((await r.json())["number"])
        async with http.post(f"{engine.url}/api/workorders/{number}/dispatch", json={}) as r:
            assert r.status == 200, await r.text()
    async with engine.hotline.work_orders.sessions.begin() as session:
        await session.execute(
            update(WorkOrderRow).where(WorkOrderRow.number == number)
            .values(due_at=utcnow() + due_in)
        )  # fmt: skip
    return number


async def test_scrape_agrees_with_the_acd_and_the_orders(engine: Engine) -> None:
    acd = engine.hotline.acd
    for ext in ("8001", "8002", "8004"):
        await acd.login(ext, PIN)
    await acd.pause("8001", "lunch")
    await acd.pause("8002", "training")
    now = time.time()
    # business: only 8003 (logged out) holds it; 8004 takes any skill only after 120 s
    await acd.enqueue("metrics-b1", "business", caller="13900000001", now=now - 30)
    await acd.enqueue("metrics-b2", "business", caller="13900000002", now=now - 5)
    await acd.enqueue("metrics-r1", "report", caller="13900000003", now=now - 12)
    engine.orders["overdue"] = await an_order(engine, timedelta(hours=-3))
    engine.orders["near"] = await an_order(engine, timedelta(hours=2))  # urged 24 h before
    engine.orders["later"] = await an_order(engine, timedelta(days=4))

    async def offered_logged() -> dict[Any, float] | None:
        status, text = await scrape(engine)
        assert status == 200, text
        found = samples(text)
        offered = value(found, "hotline_queue_calls_today", queue="business", outcome="offered")
        return found if offered == 2 else None

    found = await eventually(offered_logged, 15, "the ACD's enter events in today's figures")
    snapshot = await acd.snapshot()
    by_skill = {q.skill: q for q in snapshot.queues}
    assert value(found, "hotline_queue_waiting", queue="business") == 2
    assert value(found, "hotline_queue_waiting", queue="report") == 1
    for q in snapshot.queues:
        assert value(found, "hotline_queue_waiting", queue=q.skill) == q.waiting
        assert value(found, "hotline_queue_seats_staffed", queue=q.skill) == q.staffed
        assert value(found, "hotline_queue_seats_available", queue=q.skill) == q.available
    longest = value(found, "hotline_queue_longest_wait_seconds", queue="business")
    assert longest is not None and 30 <= longest <= by_skill["business"].longest_wait_s
    assert value(found, "hotline_queue_calls_today", queue="report", outcome="offered") == 1
    assert value(found, "hotline_seats", state="paused") == 2
    assert value(found, "hotline_seats", state="available") == 1
    for state, n in snapshot.seats_by_state.items():
        assert value(found, "hotline_seats", state=state) == n
    # nobody answered or gave up today: no ratio rather than a made-up zero
    assert value(found, "hotline_queue_service_level_ratio", queue="business") is None

    assert value(found, "hotline_work_orders", state="dispatched") == 3
    assert value(found, "hotline_work_orders", state="archived") == 0
    assert value(found, "hotline_work_orders_overdue") == 1
    assert value(found, "hotline_work_orders_near_deadline") == 1
    assert value(found, "hotline_transcription_backlog") == 0

    steps = value(found, "hotline_acd_decision_seconds_count")
    assert steps is not None and steps > 0  # the routing loop's steps, observed
    assert value(found, "hotline_acd_decision_seconds_bucket", le="+Inf") == steps
    assert value(found, "process_resident_memory_bytes")  # the client's default collectors
    assert any(name == "python_info" for name, _ in found)


async def test_the_grafana_dashboard_queries_metrics_the_engine_exports(engine: Engine) -> None:
    status, text = await scrape(engine)
    assert status == 200
    families = list(text_string_to_metric_families(text))  # a family may have no sample yet
    exported = {f.name for f in families} | {s.name for f in families for s in f.samples}
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for e in exprs for name in re.findall(r"\b(?:hotline|process)_[a-z_]+", e)}
    assert len(used) >= 15
    assert used <= exported, f"the dashboard queries metrics /metrics lacks: {used - exported}"


async def test_wallboard_shows_the_same_state(engine: Engine, browser: Browser) -> None:  # noqa: F811
    """The board of the seats, queues and orders the scrape test made, in a browser whose own
    time zone is London: every time is written in the hotline's (Asia/Shanghai)."""
    assert engine.orders, "runs after test_scrape_agrees_with_the_acd_and_the_orders"
    context = await browser.new_context(base_url=engine.url, locale="zh-CN",
                                        timezone_id="Europe/London")  # fmt: skip
    try:
        page = await context.new_page()
        await page.goto("/login?next=/supervisor")
        await page.fill("#name", "lead")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await expect(page.locator("#live")).to_contain_text("live")
        waiting = page.locator('.tile[data-queue="business"] dd[data-k="waiting"]')
        await expect(waiting).to_have_text("2")
        state = page.locator('tr[data-seat="8001"] td.state')
        await expect(state).to_have_attribute("data-state", "paused")
        await expect(state).to_contain_text("暂停 Paused (lunch)")
        row = {name: page.locator(f'tr[data-order="{n}"]') for name, n in engine.orders.items()}
        overdue, near = row["overdue"], row["near"]
        await expect(overdue).to_contain_text("超期 overdue")
        await expect(near).to_contain_text("临期 due soon")
        await expect(row["later"]).to_have_count(0)
        await expect(page.locator("#order-summary")).to_have_text("超期 overdue 1 · 临期 near 1")
        order = await engine.hotline.work_orders.get(engine.orders["near"])
        assert order.due_at is not None
        local = order.due_at.astimezone(ZoneInfo("Asia/Shanghai"))
        await expect(near).to_contain_text(local.strftime("%Y/%m/%d %H:%M:%S"))
        assert datetime.now(ZoneInfo("Europe/London")).utcoffset() != local.utcoffset()
    finally:
        await context.close()
