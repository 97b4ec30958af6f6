"""The aiohttp application: routes, typed app keys, error mapping in one place
(:mod:`web.errors`), the OpenAPI document at ``/openapi.json``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from accounts.http import AccountsWeb
from calls.store import CallStore
from web.errors import ERROR_FORMATS, errors
from web.health import Check, check_parts
from web.openapi import openapi_document
from web.params import query_int


@dataclass(frozen=True)
class WebDeps:
    calls: CallStore
    health_checks: Mapping[str, Check]
    accounts: AccountsWeb  # who is asking, and what they may do (accounts.access)
    timeout_s: float = 5.0


DEPS = web.AppKey("deps", WebDeps)

SUPERVISOR_PAGE = Path(__file__).with_name("supervisor.html")

# Mounts a domain's routes (e.g. work orders) on the application.
RouteMount = Callable[[web.Application], None]


async def healthz(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    parts = await check_parts(deps.health_checks, deps.timeout_s)
    down = [p.name for p in parts if not p.up]
    body = {
        "status": "ok" if not down else "down",
        "down": down,
        "parts": {p.name: {"up": p.up, "detail": p.detail} for p in parts},
    }
    return web.json_response(body, status=200 if not down else 503)


async def list_calls(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", 50, 1, 1000)
    calls = await request.app[DEPS].calls.recent(limit)
    return web.json_response({"calls": calls})


async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def supervisor_page(_request: web.Request) -> web.FileResponse:
    """The supervisor's wallboard (:mod:`web.wallboard`): queues, seats and orders near their
    deadline, live from the engine's events (supervisors and admins: :mod:`accounts.access`)."""
    return web.FileResponse(SUPERVISOR_PAGE, headers={"Cache-Control": "no-store"})


def make_app(deps: WebDeps, mounts: Sequence[RouteMount] = ()) -> web.Application:
    app = web.Application(middlewares=[errors, deps.accounts.middleware])
    app[DEPS] = deps
    app[ERROR_FORMATS] = {}
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/calls", list_calls)
    app.router.add_get("/supervisor", supervisor_page)
    app.router.add_routes(deps.accounts.routes())
    for mount in mounts:
        mount(app)
    return app
