"""Reports on the web (supervisors and admins: :mod:`accounts.access`).

``GET /reports`` is the page (a date range form, charts drawn by Chart.js from
``web/static``, the tables); ``GET /api/reports/{daily,weekly,monthly}.{json,csv,xlsx}
?from=YYYY-MM-DD&to=YYYY-MM-DD`` the report itself, both dates local and included. A date
that is not one, or a range the report cannot cover, is a 400 in the one error shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from reports.figures import ReportSource
from reports.periods import BadRange, Period
from reports.rendering import CSV_TYPE, XLSX_TYPE, to_csv, to_xlsx
from web.errors import InvalidRequest
from web.pages import STATIC, page_routes
from web.params import query_date

CHART = "chart.umd.min.js"  # Chart.js, vendored beside its licence (chart.js-LICENSE.md)
NO_STORE = {"Cache-Control": "no-store"}

REPORTS = web.AppKey("reports", ReportSource)


async def chart(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / CHART, headers={"Cache-Control": "no-cache"})


async def report(request: web.Request) -> web.Response:
    period, fmt = Period(request.match_info["period"]), request.match_info["fmt"]
    first, last = query_date(request, "from"), query_date(request, "to")
    try:
        found = await request.app[REPORTS].report(first, last, period)
    except BadRange as exc:
        raise InvalidRequest(str(exc)) from None
    if fmt == "json":
        return web.json_response(found.as_json(), headers=NO_STORE)
    name = f"report-{period.value}-{first.isoformat()}-{last.isoformat()}.{fmt}"
    render, kind = (to_csv, CSV_TYPE) if fmt == "csv" else (to_xlsx, XLSX_TYPE)
    body = await asyncio.to_thread(render, found.tables())
    return web.Response(body=body, headers={
        "Content-Type": kind, "Content-Disposition": f'attachment; filename="{name}"', **NO_STORE,
    })  # fmt: skip


def mount(source: ReportSource) -> Callable[[web.Application], None]:
    return lambda app: add_routes(app, source)


def add_routes(app: web.Application, source: ReportSource) -> None:
    app[REPORTS] = source
    app.router.add_routes(page_routes("/reports", "reports"))
    app.router.add_get(f"/reports/{CHART}", chart)
    app.router.add_get("/api/reports/{period:daily|weekly|monthly}.{fmt:json|csv|xlsx}", report)
