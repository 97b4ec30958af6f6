"""``GET /api/stats`` (supervisor basic auth): live queue figures, see :mod:`queueing.stats`.

``?since=<epoch seconds>`` sets the start of the period (default: the last 24 hours).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from web.params import query_float

StatsSource = Callable[[float | None], Awaitable[dict[str, Any]]]
STATS: web.AppKey[StatsSource] = web.AppKey("acd_stats")


async def get_stats(request: web.Request) -> web.Response:
    since = query_float(request, "since")  # epoch seconds
    return web.json_response(await request.app[STATS](since))


def add_routes(app: web.Application, stats: StatsSource) -> None:
    app[STATS] = stats
    app.router.add_get("/api/stats", get_stats)
