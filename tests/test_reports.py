"""Reports (issue 11): every figure of the daily, weekly and monthly reports agrees with the
same figures computed again from the raw rows in the test (tests/report_rows.py: plain
Python, nothing from reports/), on SQLite and PostgreSQL; the CSV and XLSX downloads, parsed
back, hold the same tables; only supervisors and admins get them; bad dates are a 400 in the
one error shape; the /reports page in headless Chromium draws its charts (Chart.js canvases
of non-zero size) and the tables. A screenshot: docs/reports.png with HOTLINE_SCREENSHOTS=docs."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from browser import browser, new_context, screenshot  # noqa: F401
from conftest import running, web_engine_settings
from openpyxl import load_workbook
from playwright.async_api import Browser, expect
from report_rows import ZONE, Seeded, expected, expected_operators, make_rows
from sql_databases import KINDS, fresh_database
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from staff import staff_token

from accounts.users import AccountRole
from hotline.database import create_schema, make_sessions
from hotline.engine import Hotline
from reports.figures import PERIOD_COLUMNS, ReportSource
from reports.periods import Period
from sipsim.ports import SHIFTS
from workorders.dispatch import DispatchRules

REPORTS_PORT_SHIFT = SHIFTS["reports"]
PASSWORD = "reports lead password"
FIRST, LAST = date(2025, 11, 29), date(2025, 12, 8)  # rows begin before and end after;
# the running engine schedules revisits of its own (today): outside the range
LABELS = {
    Period.DAILY: lambda d: d.isoformat(),
    Period.WEEKLY: lambda d: f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}",
    Period.MONTHLY: lambda d: f"{d.year}-{d.month:02d}",
}
CHECKED = [k for k, _ in PERIOD_COLUMNS if k not in ("period", "first", "last")]


async def seed(sessions: async_sessionmaker[AsyncSession]) -> Seeded:
    rows = make_rows()
    async with sessions() as s, s.begin():
        s.add_all([*rows.calls, *rows.events, *rows.orders, *rows.revisits])
    return make_rows()  # the same rows again, detached (the session's are expired)


def labels(period: Period) -> list[str]:
    days = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    return list(dict.fromkeys(LABELS[period](d) for d in days))


def check(report: dict[str, Any], rows: Seeded, period: Period) -> None:
    want = expected(rows, FIRST, LAST, LABELS[period])
    assert [p["period"] for p in report["periods"]] == labels(period)
    assert sum(p["calls_in"] for p in report["periods"]) > 50
    for p in report["periods"]:
        w = want.get(p["period"], {})
        for key in CHECKED:
            assert p[key] == w.get(
                key,
                0
                if "rate" not in key and not key.endswith("_s") and key != "service_level"
                else None,
            ), (p["period"], key)
        for dimension, values in report["breakdowns"].items():
            for value, counts in values.items():
                i = labels(period).index(p["period"])
                assert counts[i] == w.get(f"{dimension}:{value}", 0), (
                    p["period"],
                    dimension,
                    value,
                )
        total = sum(v for k, v in w.items() if k.startswith("channel:"))
        assert total == p["orders"]
    ops = expected_operators(rows, FIRST, LAST)
    assert {o["seat"] for o in report["operators"]} == set(ops)
    for o in report["operators"]:
        for key in ("answered", "asa_s", "aht_s", "orders", "directly", "dispatched"):
            assert o[key] == ops[o["seat"]][key], (o["seat"], key)


@pytest.mark.parametrize("kind", KINDS)
async def test_figures_agree_with_the_raw_rows(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as engine:
        await create_schema(engine)
        sessions = make_sessions(engine)
        rows = await seed(sessions)
        source = ReportSource(sessions, ZONE, 15.0, DispatchRules.load())
        for period in Period:
            report = (await source.report(FIRST, LAST, period)).as_json()
            check(report, rows, period)
        daily = (await source.report(FIRST, LAST, Period.DAILY)).as_json()
        # the seeded cases are there: abandoned calls, across midnight, extended, reworked
        assert sum(p["abandoned"] for p in daily["periods"]) > 5
        assert sum(p["extended"] for p in daily["periods"]) > 0
        assert sum(p["reworked"] for p in daily["periods"]) > 0
        assert (
            0
            < sum(p["on_time"] for p in daily["periods"])
            < sum(p["replied"] for p in daily["periods"])
        )


@dataclass
class Engine:
    hotline: Hotline
    url: str
    tokens: dict[str, str]
    rows: Seeded


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Engine]:
    s = web_engine_settings(tmp_path_factory.mktemp("reports"), "reports", REPORTS_PORT_SHIFT)
    async with running(s) as hotline:
        accounts = hotline.accounts.accounts
        tokens = {
            "lead": await staff_token(accounts, "lead", AccountRole.SUPERVISOR, password=PASSWORD),
            "admin": await staff_token(accounts, "root", AccountRole.ADMIN),
            "op": await staff_token(accounts, "op", AccountRole.OPERATOR, extension="8001"),
            "dept": await staff_token(
                accounts, "dept", AccountRole.DEPARTMENT, department="雁塔区人民政府"
            ),  # fmt: skip
        }
        assert hotline.work_orders.limits.timezone == ZONE
        rows = await seed(hotline.work_orders.sessions)
        yield Engine(hotline, f"http://{s.web_host}:{s.web_port}", tokens, rows)


async def get(engine: Engine, path: str, who: str = "lead") -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {engine.tokens[who]}"} if who else {}
    async with aiohttp.ClientSession() as http, http.get(engine.url + path, headers=headers) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.read()


def csv_tables(body: bytes) -> dict[str, list[list[str]]]:
    tables: dict[str, list[list[str]]] = {}
    for block in body.decode("utf-8-sig").split("\r\n\r\n"):
        lines = list(csv.reader(io.StringIO(block)))
        tables[lines[0][0].removeprefix("# ")] = lines[1:]
    return tables


def cell(value: Any) -> str:
    return "" if value is None else str(value)


@pytest.mark.parametrize("period", list(Period))
async def test_downloads_hold_the_figures(engine: Engine, period: Period) -> None:
    q = f"?from={FIRST}&to={LAST}"
    status, _, body = await get(engine, f"/api/reports/{period}.json{q}")
    assert status == 200
    report = json.loads(body)
    check(report, engine.rows, period)
    status, kind, body = await get(engine, f"/api/reports/{period}.csv{q}", "admin")
    assert status == 200 and kind.startswith("text/csv")
    tables = csv_tables(body)
    status, kind, xlsx = await get(engine, f"/api/reports/{period}.xlsx{q}")
    assert status == 200 and "spreadsheetml" in kind
    book = load_workbook(io.BytesIO(xlsx))
    assert list(tables) == book.sheetnames == [t["name"] for t in report["tables"]]
    for t in report["tables"]:
        want = [t["header"], *t["rows"]]
        assert tables[t["name"]] == [[cell(v) for v in row] for row in want]
        sheet = [list(r) for r in book[t["name"]].iter_rows(values_only=True)]
        assert sheet == want, t["name"]
    periods = tables["periods"]
    calls_in = periods[0].index("calls in")
    assert [int(r[calls_in]) for r in periods[1:]] == [p["calls_in"] for p in report["periods"]]


async def test_only_supervisors_and_admins(engine: Engine) -> None:
    path = f"/api/reports/daily.csv?from={FIRST}&to={LAST}"
    assert (await get(engine, path, "op"))[0] == 403
    assert (await get(engine, path, "dept"))[0] == 403
    assert (await get(engine, path, ""))[0] == 401
    assert (await get(engine, "/reports", "op"))[0] == 403
    assert (await get(engine, "/reports", "lead"))[0] == 200


@pytest.mark.parametrize("query", [
    "", "?from=2026-12-01", "?from=2026-13-01&to=2026-12-08", "?from=1.12.2026&to=2026-12-08",
    "?from=2026-12-08&to=2026-12-01", "?from=2020-01-01&to=2025-12-08",
    "?from=%00&to=2026-12-08", "?from=9999-12-31&to=9999-12-31", "?from=0001-01-01&to=0001-01-02",
])  # fmt: skip
async def test_bad_dates_are_400(engine: Engine, query: str) -> None:
    status, kind, body = await get(engine, f"/api/reports/daily.xlsx{query}")
    assert status == 400 and kind.startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] and error["message"]


async def test_page_draws_charts_and_tables(
    engine: Engine,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    context = await new_context(browser, engine.url)
    try:
        page = await context.new_page()
        await page.set_viewport_size({"width": 1400, "height": 1000})
        await page.goto(f"/reports?period=daily&from={FIRST}&to={LAST}")
        await expect(page).to_have_url(re.compile(r"/login\?next="))
        await page.fill("#name", "lead")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(re.compile(r"/reports"))
        days = (LAST - FIRST).days + 1
        await expect(page.locator("table[data-table=periods] tbody tr")).to_have_count(days)
        want = expected(engine.rows, FIRST, LAST, LABELS[Period.DAILY])
        first_row = page.locator("table[data-table=periods] tbody tr").first
        await expect(first_row.locator("td").nth(3)).to_have_text(
            str(want[FIRST.isoformat()]["calls_in"])
        )
        for chart in ("calls-chart", "rates-chart", "orders-chart", "channel-chart"):
            canvas = page.locator(f"#{chart}")
            box = await canvas.bounding_box()
            assert box and box["width"] > 100 and box["height"] > 100, chart
            drawn = await page.evaluate(
                "(id) => { const c = Chart.getChart(id); return c ? c.data.datasets.length : 0 }",
                chart,
            )
            assert drawn > 0, chart
        calls = await page.evaluate("Chart.getChart('calls-chart').data.datasets[0].data")
        assert calls == [want.get(d, {}).get("calls_in", 0) for d in labels(Period.DAILY)]
        await screenshot(page, "reports", tmp_path, full_page=False)
    finally:
        await context.close()
