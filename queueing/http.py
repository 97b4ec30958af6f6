"""``GET /api/stats`` (supervisor basic auth): live queue figures, see :mod:`queueing.stats`.

``?since=<epoch seconds>`` sets the start of the period (default: the last 24 hours).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

StatsSource = Callable[[float | None], Awaitable[dict[str, Any]]]
STATS: web.AppKey[StatsSource] = web.AppKey("acd_stats")


async def get_stats(request: web.Request) -> web.Response:
    raw = request.query.get("since")
    since: float | None = None
    if raw is not None:
        try:
            since = float(raw)
        except ValueError:
            raise web.HTTPBadRequest(
                text=json.dumps({"error": "bad_request", "description": "since: epoch seconds"}),
                content_type="application/json",
            ) from None
    return web.json_response(await request.app[STATS](since))


def add_routes(app: web.Application, stats: StatsSource) -> None:
    app[STATS] = stats
    app.router.add_get("/api/stats", get_stats)
