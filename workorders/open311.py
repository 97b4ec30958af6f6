"""Open311 GeoReport v2 at ``/open311/v2/``: the city's web and app channels, in JSON and XML.

Handlers parse, call the service, serialise. Errors are the spec's list of ``{code,
description}`` (XML ``<errors><error>``) with 404 unknown, 403 api_key, 400 otherwise.
Confidential orders and orders from other channels show only their subject publicly.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web

from workorders.catalog import Service, ServiceCatalog
from workorders.errors import (
    InvalidInput,
    NotFound,
    Unauthenticated,
    WorkOrderError,
    open311_status,
)
from workorders.orders import Actor, NewWorkOrder, Role, WorkOrder
from workorders.service import DESCRIPTION_LIMIT, WorkOrderService
from workorders.states import CLOSED, LABELS_ZH, State

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
MAX_RANGE = timedelta(days=90)
MAX_RECORDS = 1000
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]+)\](\[\])?$")
_PLURALS = {"attributes": "attribute", "values": "value"}
Handler = Callable[[web.Request], Awaitable[web.Response]]


def render(
    request: web.Request, root: str, item: str | None, body: Any, status: int = 200
) -> web.Response:
    """JSON or XML by the URL's extension; ``item`` names each row, None for one object."""
    if not request.path.endswith(".xml"):
        return web.json_response(body, status=status, dumps=_dumps)
    tree = ET.Element(root)
    if item is None:
        _xml_fill(tree, body)
    else:
        for row in body:
            _xml_fill(ET.SubElement(tree, item), row)
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(tree, encoding="unicode")
    return web.Response(text=text, status=status, content_type="text/xml", charset="utf-8")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _xml_fill(node: ET.Element, row: dict[str, Any]) -> None:
    for key, value in row.items():
        child = ET.SubElement(node, key)
        if isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict):
                    _xml_fill(ET.SubElement(child, _PLURALS.get(key, "item")), entry)
                else:
                    ET.SubElement(child, _PLURALS.get(key, "item")).text = str(entry)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        elif value is not None:
            child.text = str(value)


def spec_errors(handler: Handler) -> Handler:
    """Turn domain errors into the spec's error list, in the format the URL asked for."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except WorkOrderError as exc:
            status = open311_status(exc)
            log.info(
                "open311 %s %s refused (%s): %s", request.method, request.path, status, exc.message
            )
            rows = [{"code": status, "description": exc.message}]
            return render(request, "errors", "error", rows, status)

    return wrapped


class Open311:
    def __init__(
        self,
        service: WorkOrderService,
        catalog: ServiceCatalog,
        api_keys: Collection[str],
        jurisdiction_id: str = "",
    ) -> None:
        self.service = service
        self.catalog = catalog
        self.api_keys = frozenset(k for k in api_keys if k)
        self.jurisdiction_id = jurisdiction_id
        self.tz = service.limits.timezone

    def routes(self) -> list[web.RouteDef]:
        fmt = r"{fmt:(json|xml)}"
        return [
            web.get(f"{PREFIX}/services.{fmt}", spec_errors(self.services)),
            web.get(f"{PREFIX}/services/{{code}}.{fmt}", spec_errors(self.definition)),
            web.post(f"{PREFIX}/requests.{fmt}", spec_errors(self.post_request)),
            web.get(f"{PREFIX}/requests.{fmt}", spec_errors(self.requests)),
            web.get(f"{PREFIX}/requests/{{id}}.{fmt}", spec_errors(self.one_request)),
            web.get(f"{PREFIX}/tokens/{{token}}.{fmt}", spec_errors(self.token)),
            web.route("*", f"{PREFIX}/{{tail:.*}}", spec_errors(self.unknown)),
        ]

    def _check_jurisdiction(self, value: str | None) -> None:
        if value and self.jurisdiction_id and value != self.jurisdiction_id:
            raise NotFound(f"jurisdiction_id {value!r} is not served here")

    async def services(self, request: web.Request) -> web.Response:
        self._check_jurisdiction(request.query.get("jurisdiction_id"))
        rows = [
            {
                "service_code": s.code,
                "service_name": s.name,
                "description": s.description,
                "metadata": s.metadata,
                "type": s.type,
                "keywords": ", ".join(s.keywords),
                "group": s.group,
            }
            for s in self.catalog.services
        ]
        return render(request, "services", "service", rows)

    async def definition(self, request: web.Request) -> web.Response:
        self._check_jurisdiction(request.query.get("jurisdiction_id"))
        try:
            service = self.catalog.get(request.match_info["code"])
        except WorkOrderError as exc:
            raise NotFound(exc.message) from None
        attributes = [
            {
                "variable": a.variable,
                "code": a.code,
                "datatype": a.datatype,
                "required": a.required,
                "datatype_description": a.datatype_description,
                "order": a.order,
                "description": a.description,
                "values": [{"key": k, "name": n} for k, n in a.values],
            }
            for a in service.attributes
        ]
        row = {"service_code": service.code, "attributes": attributes}
        return render(request, "service_definition", None, row)

    async def post_request(self, request: web.Request) -> web.Response:
        form = await request.post()
        key = str(form.get("api_key", ""))
        if key not in self.api_keys:
            raise Unauthenticated(
                "api_key is missing or not valid" if key else "api_key is required"
            )
        self._check_jurisdiction(str(form.get("jurisdiction_id", "")) or None)
        code = str(form.get("service_code", "")).strip()
        if not code:
            raise InvalidInput("service_code is required")
        service = self.catalog.get(code)
        given: dict[str, list[str]] = {}
        for name, value in form.items():
            match = _ATTRIBUTE.match(name)
            if match:
                given.setdefault(match.group(1), []).append(str(value))
        new = _new_work_order(form, service, self.catalog.check_attributes(service, given))
        actor = Actor(f"open311:{key[:6]}…", Role.SYSTEM)
        order = await self.service.create(new, actor, issue_token=service.type == "batch")
        answer: dict[str, Any] = (
            {"token": order.token}
            if service.type == "batch"
            else {"service_request_id": order.number}
        )
        answer |= {"service_notice": service.notice, "account_id": new.account_id or None}
        return render(request, "service_requests", "request", [answer])

    async def requests(self, request: web.Request) -> web.Response:
        q = request.query
        self._check_jurisdiction(q.get("jurisdiction_id"))
        if q.get("service_request_id"):
            numbers = [n.strip() for n in q["service_request_id"].split(",") if n.strip()]
            orders = await self.service.find(numbers=numbers, limit=MAX_RECORDS)
        else:
            start, end = _date_range(q.get("start_date"), q.get("end_date"), self.service.clock())
            orders = await self.service.find(
                service_code=q.get("service_code") or None,
                start=start,
                end=end,
                states=_states(q.get("status")),
                limit=MAX_RECORDS,
            )
        return render(request, "service_requests", "request", [self._public(o) for o in orders])

    async def one_request(self, request: web.Request) -> web.Response:
        self._check_jurisdiction(request.query.get("jurisdiction_id"))
        order = await self.service.get(request.match_info["id"])
        return render(request, "service_requests", "request", [self._public(order)])

    async def token(self, request: web.Request) -> web.Response:
        self._check_jurisdiction(request.query.get("jurisdiction_id"))
        order = await self.service.by_token(request.match_info["token"])
        row = {"service_request_id": order.number, "token": order.token}
        return render(request, "service_requests", "request", [row])

    async def unknown(self, request: web.Request) -> web.Response:
        raise NotFound(f"no Open311 resource at {request.path}; formats are .json and .xml")

    def _public(self, order: WorkOrder) -> dict[str, Any]:
        service = next((s for s in self.catalog.services if s.code == order.service_code), None)
        shown = service is not None and not order.confidential
        return {
            "service_request_id": order.number,
            "status": "closed" if order.state in CLOSED else "open",
            "status_notes": LABELS_ZH[order.state],
            "service_name": service.name if service else order.subject,
            "service_code": order.service_code,
            "description": order.description if shown else order.subject,
            "agency_responsible": order.lead_department,
            "service_notice": service.notice if service else "",
            "requested_datetime": self._iso(order.created_at),
            "updated_datetime": self._iso(order.updated_at),
            "expected_datetime": self._iso(order.due_at),
            "address": order.location_text if shown else "",
            "address_id": order.address_id if shown else "",
            "zipcode": order.zipcode,
            "lat": order.lat if shown else None,
            "long": order.long if shown else None,
            "media_url": order.media_url if shown else "",
        }

    def _iso(self, moment: datetime | None) -> str | None:
        return moment.astimezone(self.tz).isoformat(timespec="seconds") if moment else None


def _new_work_order(form: Any, service: Service, attributes: dict[str, Any]) -> NewWorkOrder:
    def field(name: str) -> str:
        return str(form.get(name, "")).strip()

    lat, long = _coordinate(field("lat"), "lat", 90), _coordinate(field("long"), "long", 180)
    if (lat is None) != (long is None):
        raise InvalidInput("lat and long must be given together")
    if lat is None and not field("address_string") and not field("address_id"):
        raise InvalidInput("a location is required: lat and long, address_string or address_id")
    description = str(form.get("description", ""))
    if len(description) > DESCRIPTION_LIMIT:
        raise InvalidInput(f"description is longer than {DESCRIPTION_LIMIT} characters")
    return NewWorkOrder(
        channel="app" if field("device_id") else "web",
        category=service.category,
        subject=service.name,
        description=description,
        caller_name=" ".join(filter(None, (field("last_name"), field("first_name")))),
        caller_phone=field("phone"),
        email=field("email"),
        location_text=field("address_string"),
        lat=lat,
        long=long,
        address_id=field("address_id"),
        service_code=service.code,
        device_id=field("device_id"),
        account_id=field("account_id"),
        media_url=field("media_url"),
        attributes=attributes,
    )


def _coordinate(raw: str, name: str, bound: float) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a decimal number, not {raw!r}") from None
    if not -bound <= value <= bound:
        raise InvalidInput(f"{name} {value} is out of range")
    return value


def _parse_date(raw: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name} {raw!r} is not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} {raw!r} needs a time zone, e.g. 2026-11-23T10:00:00+08:00")
    return moment


def _date_range(
    start_raw: str | None, end_raw: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """The spec's window: at most 90 days, the last 90 days when no dates are given."""
    start = _parse_date(start_raw, "start_date") if start_raw else None
    end = _parse_date(end_raw, "end_date") if end_raw else None
    if start is None and end is None:
        return now - MAX_RANGE, now
    if start is None:
        assert end is not None
        return end - MAX_RANGE, end
    if end is None:
        return start, start + MAX_RANGE
    if end < start:
        raise InvalidInput("end_date is before start_date")
    if end - start > MAX_RANGE:
        raise InvalidInput("start_date and end_date may be at most 90 days apart")
    return start, end


def _states(raw: str | None) -> list[State] | None:
    if not raw:
        return None
    wanted = {part.strip() for part in raw.split(",")}
    if not wanted <= {"open", "closed"}:
        raise InvalidInput(f"status must be open or closed, not {raw!r}")
    return [s for s in State if ("closed" if s in CLOSED else "open") in wanted]
