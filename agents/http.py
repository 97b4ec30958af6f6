"""Seats on the web service (supervisor basic auth, see :data:`web.app.SUPERVISOR_PATHS`).

``GET /api/seats`` lists every seat with its state; ``POST /api/seats/{ext}/login``
(JSON ``{"pin": "2468"}``), ``/logout``, ``/pause`` (``{"reason": "lunch"}``), ``/resume``
change one. Errors are JSON ``{"error": <stable code>, "description": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agents.states import SeatStateError
from queueing.acd import Acd
from queueing.models import AcdError, LoginRefused, UnknownSeat

ACD = web.AppKey("acd", Acd)
KICK: web.AppKey[Callable[[], None]] = web.AppKey("acd_kick")

_STATUS = {UnknownSeat: 404, LoginRefused: 403}


def error(status: int, code: str, description: str) -> web.HTTPException:
    body = json.dumps({"error": code, "description": description})
    exc = web.HTTPException(text=body, content_type="application/json")
    exc.set_status(status)
    return exc


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise error(400, "bad_request", "the body must be JSON") from None
    if not isinstance(body, dict):
        raise error(400, "bad_request", "the body must be a JSON object")
    return body


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
        body = await _json(request)
        try:
            await act(acd, ext, body)
        except SeatStateError as exc:
            raise error(409, exc.code, str(exc)) from None
        except AcdError as exc:
            raise error(_STATUS.get(type(exc), 409), exc.code, str(exc)) from None
        except ValueError as exc:
            raise error(400, "bad_request", str(exc)) from None
        request.app[KICK]()
        status = await acd.seat(ext)
        return web.json_response({"extension": ext, "state": status.state.value,
                                  "reason": status.reason})  # fmt: skip

    return handler


async def _login(acd: Acd, ext: str, body: dict[str, Any]) -> None:
    pin = body.get("pin")
    if not isinstance(pin, str):
        raise ValueError('login needs a JSON body with the seat\'s PIN: {"pin": "..."}')
    await acd.login(ext, pin)


async def _logout(acd: Acd, ext: str, _body: dict[str, Any]) -> None:
    await acd.logout(ext)


async def _pause(acd: Acd, ext: str, body: dict[str, Any]) -> None:
    await acd.pause(ext, str(body.get("reason", "break")))


async def _resume(acd: Acd, ext: str, _body: dict[str, Any]) -> None:
    await acd.resume(ext)


def add_routes(app: web.Application, acd: Acd, kick: Callable[[], None]) -> None:
    app[ACD] = acd
    app[KICK] = kick
    app.router.add_get("/api/seats", list_seats)
    for name, act in (("login", _login), ("logout", _logout), ("pause", _pause),
                      ("resume", _resume)):  # fmt: skip
        app.router.add_post(f"/api/seats/{{ext}}/{name}", _seat_action(act))
