"""The supervisor's wallboard: ``GET /api/wallboard``, the board's figures in one JSON
document, read from their owners (:mod:`hotline.readings`) when asked.

The page (``/supervisor``, :file:`web/supervisor.html`) listens to the engine's live events
(:mod:`web.live`: the ACD's seat and queue moves, calls put through and ended, orders) and
reads the board again when one arrives: it changes when the ACD does, not on a timer. The
thresholds (longest wait, service level) are settings given to the page with the figures;
seat controls are the seat API's (``POST /api/seats/{ext}/pause|resume|logout``, audited by
:mod:`accounts.http` like every state-changing request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hotline.readings import Readings
from web.metrics import ReadingsRead, read_now


@dataclass(frozen=True)
class Thresholds:
    longest_wait_s: float = 60.0  # a queue whose oldest caller waited longer: alert
    service_level: float = 0.80  # a queue answering fewer within the time today: alert


def board(r: Readings, thresholds: Thresholds) -> dict[str, Any]:
    """What the wallboard shows, as plain JSON (times as epoch seconds; the page writes them
    in ``timezone``)."""
    states = {s.extension: s for s in r.acd.seats}
    seats = [
        {
            "extension": ext,
            "name": name,
            "state": states[ext].state.value if ext in states else "logged_out",
            "reason": states[ext].reason if ext in states else "",
            "since": states[ext].since if ext in states else None,
            "call_id": states[ext].call_id if ext in states else "",
        }
        for ext, name in sorted(r.seat_names.items())
    ]
    orders = [
        {
            "number": o.number,
            "subject": o.subject,
            "category": o.category,
            "lead_department": o.lead_department,
            "state": o.state.value,
            "due_at": o.due_at.timestamp() if o.due_at else None,
            "overdue": bool(o.due_at and o.due_at.timestamp() < r.at),
        }
        for o in r.deadlines
    ]
    return {
        "at": r.at,
        "timezone": r.timezone.key,
        "service_level_s": r.figures["service_level_s"],
        "thresholds": {
            "longest_wait_s": thresholds.longest_wait_s,
            "service_level": thresholds.service_level,
        },  # fmt: skip
        "overall": r.figures["overall"],
        "queues": r.figures["queues"],
        "seats": seats,
        "seats_by_state": dict(r.acd.seats_by_state),
        "orders": {"overdue": r.overdue, "near_deadline": r.near_deadline, "list": orders},
    }


@dataclass(frozen=True)
class WallboardDeps:
    read: ReadingsRead
    thresholds: Thresholds


WALLBOARD = web.AppKey("wallboard", WallboardDeps)


async def get_board(request: web.Request) -> web.Response:
    deps = request.app[WALLBOARD]
    readings = await read_now(deps.read)
    return web.json_response(board(readings, deps.thresholds),
                             headers={"Cache-Control": "no-store"})  # fmt: skip


def add_routes(app: web.Application, deps: WallboardDeps) -> None:
    app[WALLBOARD] = deps
    app.router.add_get("/api/wallboard", get_board)
