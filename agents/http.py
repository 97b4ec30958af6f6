"""Seats on the web service (supervisors and admins; an operator their own seat: see
:mod:`accounts.access`).

``GET /api/seats`` lists every seat with its state; ``POST /api/seats/{ext}/login``
(JSON ``{"pin": "2468"}``), ``/logout``, ``/pause`` (``{"reason": "lunch"}``), ``/resume``,
``/ready`` (wrap-up ended early) change one. Refusals are the web service's one error
shape (:mod:`web.errors`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agents.states import SeatStateError
from queueing.acd import Acd
from web.errors import InvalidRequest
from web.params import json_object, text_field

ACD = web.AppKey("acd", Acd)
KICK: web.AppKey[Callable[[], None]] = web.AppKey("acd_kick")


async def list_seats(request: web.Request) -> web.Response:
    acd = request.app[ACD]
    snapshot = await acd.snapshot()
    by_ext = {s.extension: s for s in snapshot.seats}
    seats = []
    for seat in acd.seats.seats:
        status = by_ext.get(seat.extension)
        seats.append({
            "extension": seat.extension,
            "name": seat.name,
            "skills": dict(seat.skills),
            "languages": list(seat.languages),
            "state": status.state.value if status else "logged_out",
            "reason": status.reason if status else "",
            "since": status.since if status else None,
            "call_id": status.call_id if status else "",
        })  # fmt: skip
    return web.json_response({"seats": seats, "by_state": dict(snapshot.seats_by_state)})


def _seat_action(
    act: Callable[[Acd, str, dict[str, Any]], Awaitable[None]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        acd = request.app[ACD]
        ext = request.match_info["ext"]
        body = await json_object(request)
        try:
            await act(acd, ext, body)  # the ACD's own refusals: web.errors maps them
        except SeatStateError:
            raise
        except ValueError as exc:  # a PIN or pause reason the seat rules do not take
            raise InvalidRequest(str(exc)) from None
        request.app[KICK]()
        status = await acd.seat(ext)
        return web.json_response({"extension": ext, "state": status.state.value,
                                  "reason": status.reason})  # fmt: skip

    return handler


async def _login(acd: Acd, ext: str, body: dict[str, Any]) -> None:
    await acd.login(ext, text_field(body, "pin", max_length=32))


async def _logout(acd: Acd, ext: str, _body: dict[str, Any]) -> None:
    await acd.logout(ext)


async def _pause(acd: Acd, ext: str, body: dict[str, Any]) -> None:
    await acd.pause(ext, text_field(body, "reason", default="break", max_length=32))


async def _resume(acd: Acd, ext: str, _body: dict[str, Any]) -> None:
    await acd.resume(ext)


async def _ready(acd: Acd, ext: str, _body: dict[str, Any]) -> None:
    await acd.end_wrap_up(ext)


def add_routes(app: web.Application, acd: Acd, kick: Callable[[], None]) -> None:
    app[ACD] = acd
    app[KICK] = kick
    app.router.add_get("/api/seats", list_seats)
    for name, act in (("login", _login), ("logout", _logout), ("pause", _pause),
                      ("resume", _resume), ("ready", _ready)):  # fmt: skip
        app.router.add_post(f"/api/seats/{{ext}}/{name}", _seat_action(act))
