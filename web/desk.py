"""The operator's desk: a page for the seat bound to the operator's account.

``GET /desk`` is the page (plain HTML and a small script, ``web/static``); it changes the
seat's state through the seat API (``POST /api/seats/<ext>/login|pause|resume|ready|logout``,
the same ACD operations as the feature codes), transfers the caller (``POST
/api/seats/<ext>/transfer``: :mod:`queueing.transfer`), edits and sends the call's work order
through the work-order API, and listens to :mod:`web.live` (``call``, ``order``, ``acd``).

When a caller is put through to a seat, :meth:`Desk.context` opens the call's work order at
once (intake fills in the transcript when the call is over: ``draft_from_call``) and
gathers what the operator sees: the IVR path from the call record, earlier calls and orders
of the same number, and the time limit each category would have if dispatched now.
``GET /api/desk`` gives the same for a page opened (or reloaded) during a call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from accounts.http import current_user
from agents.states import PAUSE_REASONS, SeatState
from calls.callerid import mask_number
from calls.lifecycle import ConnectedCall
from calls.store import CallStore
from db.base import utcnow
from queueing.acd import Acd
from web.errors import HttpError
from web.pages import page_routes
from workorders.dispatch import CATEGORIES
from workorders.orders import Role
from workorders.service import WorkOrderService

log = logging.getLogger(__name__)

EARLIER_ORDERS = 20
EARLIER_CALLS = 10
CONSULT_REASON = "consult"  # a seat ringing for another seat's consultation (consult.lua)
# The consultation a seat rings for (seat, call id), as its desk shows it; None if not open.
Consultation = Callable[[str, str], Awaitable[dict[str, Any] | None]]


def ivr_path(record: dict[str, Any] | None, connected_at: datetime) -> dict[str, Any]:
    """What the caller did in the IVR: language, keys pressed, the queue, the wait."""
    if record is None:
        return {"language": None, "keys": [], "route": None, "wait_s": None}
    journey = record["journey"]
    keys = [step["detail"] for step in journey if step["kind"] == "key" and step["detail"]]
    routed = [step["at"] for step in journey if step["kind"] == "route"]
    wait = None
    if routed:
        wait = max(0.0, (connected_at - datetime.fromisoformat(routed[-1])).total_seconds())
    return {"language": record["language"], "keys": keys, "route": record["route"],
            "wait_s": None if wait is None else round(wait, 1),
            "started_at": record["started_at"]}  # fmt: skip


class Desk:
    def __init__(
        self,
        calls: CallStore,
        orders: WorkOrderService,
        acd: Acd,
        transfer_targets: Callable[[], dict[str, list[str]]] = dict,
        consultation: Consultation | None = None,
    ) -> None:
        self.calls = calls
        self.orders = orders
        self.acd = acd
        self.transfer_targets = transfer_targets  # queueing.transfer.Transfers.targets
        self.consultation = consultation  # queueing.consult.Consultations.about

    async def connected(self, call: ConnectedCall) -> dict[str, Any]:
        """The facts the ``call`` event carries (the live hub's call context)."""
        return await self.context(call.call_id, call.caller_number or "", call.seat,
                                  call.skill, call.connected_at)  # fmt: skip

    async def context(
        self, call_id: str, number: str, seat: str, queue: str, connected_at: datetime
    ) -> dict[str, Any]:
        order = await self.orders.draft_from_call(number, connected_at, "", "", call_id,
                                                  seat=seat, queue=queue)  # fmt: skip
        if order.seat != seat:  # put through from another seat: the order comes along
            order = await self.orders.take_over(order.number, seat)
        record = await self.calls.get(call_id)
        earlier_calls, earlier_orders = [], []
        if number:
            earlier_calls = [c for c in await self.calls.of_number(number, EARLIER_CALLS + 1)
                             if c["uniqueid"] != call_id][:EARLIER_CALLS]  # fmt: skip
            found = await self.orders.find(caller_phone=number, limit=EARLIER_ORDERS + 1)
            earlier_orders = [o for o in found if o.number != order.number][:EARLIER_ORDERS]
        now = utcnow()
        limits = {category: self.orders.limits.due_for(now, category, order.urgent).isoformat()
                  for category in CATEGORIES}  # fmt: skip
        log.info("call %s from %s at seat %s: desk shows order %s, %d earlier order(s)",
                 call_id, mask_number(number), seat, order.number, len(earlier_orders))  # fmt: skip
        return {
            "call_id": call_id, "caller_number": number, "seat": seat, "queue": queue,
            "connected_at": connected_at.isoformat(),
            "ivr": ivr_path(record, connected_at),
            "order": order.seen_by(Role.OPERATOR),
            "earlier_orders": [_brief(o.seen_by(Role.OPERATOR)) for o in earlier_orders],
            "earlier_calls": [_call_brief(c) for c in earlier_calls],
            "time_limits": limits,
        }  # fmt: skip

    # -- routes -------------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            *page_routes("/desk", "desk"),
            web.get("/api/desk", self.current),
        ]

    async def current(self, request: web.Request) -> web.Response:
        """The operator's seat, its state, and the call at it (if one is connected)."""
        user = current_user(request)
        assert user is not None  # the access rules let operators only through
        if not user.extension:
            raise HttpError(409, "no_seat", f"operator {user.name} has no seat: "
                            "hotline users bind NAME --extension EXT")  # fmt: skip
        status = await self.acd.seat(user.extension)
        body: dict[str, Any] = {
            "user": user.name, "seat": user.extension, "state": status.state.value,
            "reason": status.reason, "pause_reasons": list(PAUSE_REASONS),
            "categories": list(CATEGORIES),
            "departments": sorted(self.orders.rules.departments), "call": None,
            "transfer_targets": self.transfer_targets(), "consultation": None,
        }  # fmt: skip
        consulted = status.state is SeatState.RINGING and status.reason == CONSULT_REASON
        if consulted and status.call_id and self.consultation is not None:
            body["consultation"] = await self.consultation(user.extension, status.call_id)
        if status.call_id and status.state is SeatState.ON_CALL:
            record = await self.calls.get(status.call_id)
            if record is not None:
                connected = datetime.fromtimestamp(status.since, UTC)
                body["call"] = await self.context(
                    status.call_id, record["caller_number"] or "", user.extension,
                    (record["route"] or "").removeprefix("queue:"), connected,
                )  # fmt: skip
        return web.json_response(body, headers={"Cache-Control": "no-store"})


def _brief(order: dict[str, Any]) -> dict[str, Any]:
    keep = ("number", "state", "created_at", "category", "subject", "lead_department",
            "due_at", "merged_into", "reply")  # fmt: skip
    return {name: order[name] for name in keep}


def _call_brief(call: dict[str, Any]) -> dict[str, Any]:
    keep = ("uniqueid", "started_at", "ended_at", "language", "route", "hangup_cause_text")
    return {name: call[name] for name in keep}


def add_routes(app: web.Application, desk: Desk) -> None:
    app.router.add_routes(desk.routes())
