"""Work orders on the web: the staff API (operators, departments, supervisors), the public
status lookup, and the mounting of Open311 and the SMS webhook.

Staff are the hotline's accounts (a browser session or a bearer token, :mod:`accounts.http`);
the composition root passes the function that turns a request into an
:class:`~workorders.orders.Actor` (name, role, department). The service decides what each role
may do; :meth:`~workorders.orders.WorkOrder.seen_by` what each role sees. Every field a client
sends is checked for its JSON type and length here (400 in the one error shape otherwise).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import timedelta
from typing import Any

from aiohttp import web

from web.errors import ERROR_FORMATS
from web.params import (
    bool_field,
    int_field,
    json_object,
    query_int,
    text_field,
    text_list,
)
from workorders.catalog import ServiceCatalog
from workorders.errors import InvalidInput, NotFound
from workorders.models import text_width
from workorders.open311 import Open311
from workorders.orders import Actor, NewWorkOrder, Role, Satisfaction, WorkOrder
from workorders.service import DESCRIPTION_LIMIT, EDITABLE, WorkOrderService
from workorders.sms import SeenRequests, SmsIntake
from workorders.states import LABELS_ZH, State

log = logging.getLogger(__name__)
Action = Callable[[str, Actor, dict[str, Any]], Awaitable[WorkOrder]]
#: who makes a staff request (raises the web's 401 for nobody)
Identify = Callable[[web.Request], Actor]
LIST_CAP = 1000
NOTE_LIMIT = 2000
#: what staff may give when registering an order (intake alone sets transcripts, recordings)
STAFF_FIELDS = frozenset(
    {"channel", "category", "subject", "description", "caller_name", "caller_phone",
     "confidential", "location_text", "lat", "long", "address_id", "zipcode", "call_id",
     "urgent", "lead_department", "assisting_departments", "email", "service_code"}
)  # fmt: skip


def order_fields(body: Mapping[str, Any], allowed: Collection[str]) -> dict[str, Any]:
    """The order fields of a JSON body, each of its JSON type and within its column."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown or not allowed field(s): {', '.join(unknown)[:200]}")
    fields: dict[str, Any] = {}
    for name in body:
        if name in ("confidential", "urgent", "no_revisit"):
            fields[name] = bool_field(body, name)
        elif name in ("lat", "long"):
            fields[name] = _coordinate(body, name, 90 if name == "lat" else 180)
        elif name == "assisting_departments":
            fields[name] = tuple(text_list(body, name) or ())
        else:
            width = text_width(name) or DESCRIPTION_LIMIT
            fields[name] = text_field(body, name, max_length=width,
                                      multiline=name == "description")  # fmt: skip
    return fields


def _coordinate(body: Mapping[str, Any], name: str, bound: float) -> float | None:
    value = body[name]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) <= bound:
        raise InvalidInput(f"{name} must be a number between -{bound} and {bound}, or null")
    return float(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _note(body: Mapping[str, Any], name: str = "note", limit: int = NOTE_LIMIT) -> str:
    """A free text: optional (empty) for ``note``, required for every other name."""
    extra = {"default": ""} if name == "note" else {}
    return text_field(body, name, max_length=limit, multiline=True, **extra)


class StaffApi:
    def __init__(self, service: WorkOrderService, identify: Identify) -> None:
        self.service = service
        self.actor = identify

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/workorders", self.create),
            web.get("/api/workorders", self.list),
            web.get("/api/workorders/{number:\\d{1,20}}", self.get),
            web.patch("/api/workorders/{number:\\d{1,20}}", self.update),
            web.post("/api/workorders/{number:\\d{1,20}}/{action}", self.act),
            web.get("/api/status/{number}", self.public_status),
        ]

    def _answer(self, order: WorkOrder, actor: Actor, status: int = 200) -> web.Response:
        return web.json_response(order.seen_by(actor.role), status=status, dumps=_dumps)

    async def create(self, request: web.Request) -> web.Response:
        actor, body = self.actor(request), await json_object(request)
        fields = order_fields(body, STAFF_FIELDS)
        if "channel" not in fields:
            raise InvalidInput("channel is required")
        order = await self.service.create(NewWorkOrder(**fields), actor)
        return self._answer(order, actor, 201)

    async def list(self, request: web.Request) -> web.Response:
        actor = self.actor(request)
        state = request.query.get("state")
        if state is not None and state not in State.__members__.values():
            raise InvalidInput(f"unknown state {state[:32]!r}")
        department = request.query.get("department")
        if department is not None and len(department) > text_width("lead_department"):
            raise InvalidInput("department is too long")
        involving = None
        if actor.role is Role.DEPARTMENT:  # what it leads or assists in, nothing else
            department, involving = None, actor.department
        orders = await self.service.find(
            states=[State(state)] if state else None,
            department=department,
            involving=involving,
            limit=query_int(request, "limit", 100, 1, LIST_CAP),
        )
        return web.json_response([o.seen_by(actor.role) for o in orders], dumps=_dumps)

    async def get(self, request: web.Request) -> web.Response:
        actor = self.actor(request)
        return self._answer(await self.service.get(request.match_info["number"], actor), actor)

    async def update(self, request: web.Request) -> web.Response:
        actor, body = self.actor(request), await json_object(request)
        note = _note(body)
        changes = order_fields({k: v for k, v in body.items() if k != "note"}, EDITABLE)
        order = await self.service.update(request.match_info["number"], actor, changes, note)
        return self._answer(order, actor)

    async def act(self, request: web.Request) -> web.Response:
        actor, body = self.actor(request), await json_object(request)
        number, name = request.match_info["number"], request.match_info["action"]
        action = self._actions().get(name)
        if action is None:
            raise NotFound(f"no action {name[:32]!r}; one of {', '.join(self._actions())}")
        return self._answer(await action(number, actor, body), actor)

    def _actions(self) -> dict[str, Action]:
        s = self.service
        lead = text_width("lead_department")

        def departments(b: dict[str, Any]) -> dict[str, Any]:
            return {"assisting": text_list(b, "assisting_departments", max_length=lead),
                    "note": _note(b)}  # fmt: skip

        return {
            "answer": lambda n, a, b: s.answer(n, a, _note(b, "answer", DESCRIPTION_LIMIT)),
            "dispatch": lambda n, a, b: s.dispatch(
                n, a, lead_department=text_field(b, "lead_department", default="", max_length=lead),
                **departments(b)),
            "reassign": lambda n, a, b: s.reassign(
                n, a, lead_department=text_field(b, "lead_department", max_length=lead),
                **departments(b)),
            "sign": lambda n, a, b: s.sign(n, a, _note(b)),
            "return": lambda n, a, b: s.return_order(n, a, _note(b, "reason")),
            "start": lambda n, a, b: s.start(n, a, _note(b)),
            "extension": lambda n, a, b: s.request_extension(
                n, a, days=int_field(b, "days", 1, 365), reason=_note(b, "reason")),
            "approve-extension": lambda n, a, b: s.approve_extension(n, a, _note(b)),
            "refuse-extension": lambda n, a, b: s.refuse_extension(n, a, _note(b)),
            "reply": lambda n, a, b: s.reply(n, a, _note(b, "text", DESCRIPTION_LIMIT)),
            "note": lambda n, a, b: s.add_note(n, a, _note(b, "text")),
            "assist-reply": lambda n, a, b: s.assist_reply(
                n, a, _note(b, "text", DESCRIPTION_LIMIT)),
            "review": lambda n, a, b: s.review(
                n, a, passed=bool_field(b, "passed"), note=_note(b)),
            "revisit": lambda n, a, b: s.record_revisit(
                n, a, satisfaction=_satisfaction(b), resolved=bool_field(b, "resolved"),
                note=_note(b)),
            "archive": lambda n, a, b: s.archive(n, a, _note(b)),
            "merge": lambda n, a, b: s.merge(
                n, text_field(b, "into", max_length=20), a, _note(b)),
        }  # fmt: skip

    async def public_status(self, request: web.Request) -> web.Response:
        """For citizens on the web: the state only (numbers are sequential, so nothing else)."""
        number = request.match_info["number"]
        if not number.isdigit() or len(number) > 20:
            raise NotFound(f"no work order {number[:32]}")
        order = await self.service.get(number)
        body = {"number": number, "state": order.state.value, "label": LABELS_ZH[order.state]}
        return web.json_response(body, dumps=_dumps)


def _satisfaction(body: Mapping[str, Any]) -> Satisfaction:
    value = text_field(body, "satisfaction", max_length=32)
    try:
        return Satisfaction(value)
    except ValueError:
        known = ", ".join(s.value for s in Satisfaction)
        raise InvalidInput(f"satisfaction must be one of {known}") from None


def add_routes(
    app: web.Application,
    service: WorkOrderService,
    *,
    api_keys: Collection[str],
    staff: Identify,
    sms_secret: str = "",
    sms_followup_window: timedelta = timedelta(hours=72),
    sms_seen: SeenRequests | None = None,
    catalog: ServiceCatalog | None = None,
    jurisdiction_id: str = "",
) -> None:
    """Mount the staff API, public status, Open311 (``/open311/v2/``) and the SMS webhook."""
    app.router.add_routes(StaffApi(service, staff).routes())
    if ERROR_FORMATS not in app:
        app[ERROR_FORMATS] = {}
    Open311(service, catalog or ServiceCatalog.load(), api_keys, jurisdiction_id).mount(app)
    if sms_secret:
        sms = SmsIntake(service, sms_secret, sms_followup_window, sms_seen)
        app.router.add_routes(sms.routes())
    else:
        log.warning("no SMS gateway secret configured: the SMS webhook is not mounted")
