"""Work orders on the web: the staff API (operators, departments, supervisors), the public
status lookup, and the mounting of Open311 and the SMS webhook.

Staff authenticate with ``Authorization: Bearer <token>``; each token maps to an
:class:`~workorders.orders.Actor` (name, role, department) in a staff file kept outside the
repository (see :func:`load_staff`). The service decides what each role may do.
"""

from __future__ import annotations

import hmac
import json
import logging
import tomllib
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from workorders.catalog import ServiceCatalog
from workorders.errors import InvalidInput, Unauthenticated, WorkOrderError, http_status
from workorders.open311 import Open311
from workorders.orders import Actor, NewWorkOrder, Role, Satisfaction
from workorders.service import WorkOrderService
from workorders.sms import SmsIntake
from workorders.states import LABELS_ZH, State

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def load_staff(path: Path) -> dict[str, Actor]:
    """Staff tokens from TOML: ``[[staff]] token = "…", name = "…", role = "operator",
    department = "…"`` (department only for role "department")."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    staff: dict[str, Actor] = {}
    for entry in data.get("staff", []):
        actor = Actor(str(entry["name"]), Role(entry["role"]), str(entry.get("department", "")))
        if actor.role is Role.DEPARTMENT and not actor.department:
            raise ValueError(f"staff {actor.name}: a department actor needs its department")
        staff[str(entry["token"])] = actor
    return staff


def json_errors(handler: Handler) -> Handler:
    """Domain errors as ``{"error": code, "message": …}`` with the status from errors.py."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except WorkOrderError as exc:
            log.info("%s %s refused: %s", request.method, request.path, exc.message)
            body = {"error": exc.code, "message": exc.message}
            return web.json_response(body, status=http_status(exc), dumps=_dumps)

    return wrapped


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise InvalidInput("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


class StaffApi:
    def __init__(self, service: WorkOrderService, staff: Mapping[str, Actor]) -> None:
        self.service = service
        self.staff = dict(staff)

    def actor(self, request: web.Request) -> Actor:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("send Authorization: Bearer <staff token>")
        for known, actor in self.staff.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return actor
        raise Unauthenticated("unknown staff token")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/workorders", json_errors(self.create)),
            web.get("/api/workorders", json_errors(self.list)),
            web.get("/api/workorders/{number:\\d+}", json_errors(self.get)),
            web.patch("/api/workorders/{number:\\d+}", json_errors(self.update)),
            web.post("/api/workorders/{number:\\d+}/{action}", json_errors(self.act)),
            web.get("/api/status/{number}", json_errors(self.public_status)),
        ]

    async def create(self, request: web.Request) -> web.Response:
        actor, body = self.actor(request), await _body(request)
        try:
            new = NewWorkOrder(**{**body, "assisting_departments": tuple(
                body.get("assisting_departments", ()))})  # fmt: skip
        except TypeError as exc:
            raise InvalidInput(f"unknown or missing field: {exc}") from None
        order = await self.service.create(new, actor)
        return web.json_response(order.to_json(), status=201, dumps=_dumps)

    async def list(self, request: web.Request) -> web.Response:
        actor = self.actor(request)
        state = request.query.get("state")
        if state is not None and state not in State.__members__.values():
            raise InvalidInput(f"unknown state {state!r}")
        department = actor.department if actor.role is Role.DEPARTMENT else None
        orders = await self.service.find(
            states=[State(state)] if state else None,
            department=department or request.query.get("department"),
            limit=min(int(request.query.get("limit", "100") or 100), 1000),
        )
        return web.json_response([o.to_json() for o in orders], dumps=_dumps)

    async def get(self, request: web.Request) -> web.Response:
        order = await self.service.get(request.match_info["number"], self.actor(request))
        return web.json_response(order.to_json(), dumps=_dumps)

    async def update(self, request: web.Request) -> web.Response:
        actor, body = self.actor(request), await _body(request)
        note = str(body.pop("note", ""))
        order = await self.service.update(request.match_info["number"], actor, body, note)
        return web.json_response(order.to_json(), dumps=_dumps)

    async def act(self, request: web.Request) -> web.Response:
        actor, body = self.actor(request), await _body(request)
        number, name = request.match_info["number"], request.match_info["action"]
        action = self._actions().get(name)
        if action is None:
            raise InvalidInput(f"unknown action {name!r}; one of {', '.join(self._actions())}")
        try:
            order = await action(number, actor, body)
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidInput(f"action {name}: bad or missing field {exc}") from None
        return web.json_response(order.to_json(), dumps=_dumps)

    def _actions(self) -> dict[str, Callable[[str, Actor, dict[str, Any]], Awaitable[Any]]]:
        s = self.service
        return {
            "answer": lambda n, a, b: s.answer(n, a, str(b["answer"])),
            "dispatch": lambda n, a, b: s.dispatch(
                n, a, lead_department=str(b.get("lead_department", "")),
                assisting=b.get("assisting_departments"), note=str(b.get("note", ""))),
            "reassign": lambda n, a, b: s.reassign(
                n, a, lead_department=str(b["lead_department"]),
                assisting=b.get("assisting_departments"), note=str(b.get("note", ""))),
            "sign": lambda n, a, b: s.sign(n, a, str(b.get("note", ""))),
            "return": lambda n, a, b: s.return_order(n, a, str(b["reason"])),
            "start": lambda n, a, b: s.start(n, a, str(b.get("note", ""))),
            "extension": lambda n, a, b: s.request_extension(
                n, a, days=int(b["days"]), reason=str(b["reason"])),
            "approve-extension": lambda n, a, b: s.approve_extension(n, a, str(b.get("note", ""))),
            "refuse-extension": lambda n, a, b: s.refuse_extension(n, a, str(b.get("note", ""))),
            "reply": lambda n, a, b: s.reply(n, a, str(b["text"])),
            "review": lambda n, a, b: s.review(
                n, a, passed=bool(b["passed"]), note=str(b.get("note", ""))),
            "revisit": lambda n, a, b: s.record_revisit(
                n, a, satisfaction=Satisfaction(b["satisfaction"]), resolved=bool(b["resolved"]),
                note=str(b.get("note", ""))),
            "archive": lambda n, a, b: s.archive(n, a, str(b.get("note", ""))),
            "merge": lambda n, a, b: s.merge(n, str(b["into"]), a, str(b.get("note", ""))),
        }  # fmt: skip

    async def public_status(self, request: web.Request) -> web.Response:
        """For citizens on the web: state and deadline only, nothing personal."""
        number = request.match_info["number"]
        text = await self.service.status_for_phone_lookup(number)
        if text is None:
            body = {"error": "not_found", "message": f"no work order {number}"}
            return web.json_response(body, status=404, dumps=_dumps)
        order = await self.service.get(number)
        due = order.due_at.astimezone(self.service.limits.timezone).date() if order.due_at else None
        status = {
            "number": number,
            "state": order.state.value,
            "label": LABELS_ZH[order.state],
            "status": text,
            "due_date": due.isoformat() if due else None,
        }
        return web.json_response(status, dumps=_dumps)


def add_routes(
    app: web.Application,
    service: WorkOrderService,
    *,
    api_keys: Collection[str],
    staff: Mapping[str, Actor],
    sms_token: str = "",
    catalog: ServiceCatalog | None = None,
    jurisdiction_id: str = "",
) -> None:
    """Mount the staff API, public status, Open311 (``/open311/v2/``) and the SMS webhook."""
    app.router.add_routes(StaffApi(service, staff).routes())
    open311 = Open311(service, catalog or ServiceCatalog.load(), api_keys, jurisdiction_id)
    app.router.add_routes(open311.routes())
    if sms_token:
        app.router.add_routes(SmsIntake(service, sms_token).routes())
    else:
        log.warning("no SMS gateway token configured: the SMS webhook is not mounted")
