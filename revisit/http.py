"""``/api/revisits``: what is due, in flight, done and on the manual list, with the day's
figures (supervisors); the manual list and results entered by hand (operators too).

- ``GET /api/revisits[?state=due|dialing|done|manual]``: ``{"figures", "revisits"}``
- ``GET /api/revisits/{number}``: one order's revisit with its attempts
- ``POST /api/revisits/{number}/result`` ``{"resolved": bool, "satisfaction":
  "very_satisfied|satisfied|dissatisfied", "note": ""}``: recorded by the logged-in operator
"""

from __future__ import annotations

from aiohttp import web

from accounts.http import actor_of
from revisit.service import RevisitService
from web.errors import HttpError, InvalidRequest
from web.params import bool_field, json_object, text_field
from workorders.orders import Role, Satisfaction

REVISITS: web.AppKey[RevisitService] = web.AppKey("revisits")


def _supervisor_unless_manual(request: web.Request, state: str | None) -> None:
    if actor_of(request).role is Role.OPERATOR and state != "manual":
        raise HttpError(403, "forbidden", "operators see the manual list only (?state=manual)")


async def list_revisits(request: web.Request) -> web.Response:
    state = request.query.get("state") or None
    _supervisor_unless_manual(request, state)
    service = request.app[REVISITS]
    return web.json_response(
        {"figures": await service.figures(), "revisits": await service.listing(state)}
    )


async def show_revisit(request: web.Request) -> web.Response:
    actor_of(request)
    return web.json_response(await request.app[REVISITS].show(request.match_info["number"]))


async def record_result(request: web.Request) -> web.Response:
    actor = actor_of(request)
    body = await json_object(request)
    resolved = bool_field(body, "resolved")
    raw = text_field(body, "satisfaction", max_length=24)
    try:
        satisfaction = Satisfaction(raw)
    except ValueError:
        raise InvalidRequest(f"satisfaction must be one of {', '.join(Satisfaction)}") from None
    note = text_field(body, "note", default="", max_length=500)
    view = await request.app[REVISITS].record_by_hand(
        request.match_info["number"],
        actor,
        resolved=resolved,
        satisfaction=satisfaction,
        note=note,
    )
    return web.json_response(view)


def add_routes(app: web.Application, service: RevisitService) -> None:
    app[REVISITS] = service
    app.router.add_get("/api/revisits", list_revisits)
    app.router.add_get("/api/revisits/{number}", show_revisit)
    app.router.add_post("/api/revisits/{number}/result", record_result)
