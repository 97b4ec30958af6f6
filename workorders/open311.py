"""Open311 GeoReport v2 at ``/open311/v2/``: the city's web and app channels, in JSON and XML.

Handlers parse, call the service, serialise. Errors are the spec's list of ``{code,
description}`` (XML ``<errors><error>``) with 404 unknown, 403 api_key, 400 otherwise: the
one documented exception to the web service's error shape, registered as this prefix's
format in :data:`web.errors.ERROR_FORMATS`.

Privacy: the public feed lists only requests submitted here by citizens who agreed to
publication (the ``PUBLISH`` attribute every service offers), never a confidential one, and
only what they submitted for it (service, description, place, photo) — never a name, phone
number or e-mail address. Requests are known by a random public id, not the sequential work
order number; phone, SMS and fax orders have none and never appear.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from aiohttp import web

from web.errors import ERROR_FORMATS, Refusal
from web.params import has_control
from workorders.catalog import Attribute, Service, ServiceCatalog
from workorders.errors import InvalidInput, NotFound, Unauthenticated, WorkOrderError
from workorders.models import text_width
from workorders.orders import Actor, NewWorkOrder, Role, WorkOrder
from workorders.service import DESCRIPTION_LIMIT, WorkOrderService
from workorders.states import CLOSED, LABELS_ZH, State

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
MAX_RANGE = timedelta(days=90)
MAX_RECORDS = 1000
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]+)\](\[\])?$")
_PLURALS = {"attributes": "attribute", "values": "value"}
# Characters XML 1.0 cannot carry at all (C0 controls but tab and newlines, FFFE/FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
#: the citizen's consent to the public feed, asked through the spec's own attributes
CONSENT = Attribute(
    code="PUBLISH",
    datatype="singlevaluelist",
    required=False,
    order=1000,
    description="是否同意在公开的诉求列表中展示本诉求的内容、地点和图片（不含姓名、电话、邮箱）",
    values=(("yes", "同意公开"), ("no", "不公开")),
)
#: the longest value each form field may have (the columns they are stored in)
FIELD_LIMITS = {
    "api_key": 128, "jurisdiction_id": 128, "service_code": text_width("service_code"),
    "email": text_width("email"), "device_id": text_width("device_id"),
    "account_id": text_width("account_id"), "first_name": 32, "last_name": 31,
    "phone": text_width("caller_phone"), "address_string": text_width("location_text"),
    "address_id": text_width("address_id"), "lat": 32, "long": 32,
    "media_url": text_width("media_url"), "description": DESCRIPTION_LIMIT,
}  # fmt: skip
ATTRIBUTE_LIMIT = 256


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
        if isinstance(value, list) and all(isinstance(entry, dict) for entry in value):
            for entry in value:
                _xml_fill(ET.SubElement(child, _PLURALS.get(key, "item")), entry)
        elif isinstance(value, list):  # keywords: a comma-separated list in XML
            child.text = _xml_text(", ".join(str(entry) for entry in value))
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        elif value is not None:
            child.text = _xml_text(str(value))


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


def georeport_error(request: web.Request, refusal: Refusal) -> web.Response:
    """The spec's error list; its statuses are 404 unknown, 403 api_key, 400 otherwise."""
    status = refusal.status
    if status in (401, 403):
        status = 403
    elif status != 404 and status < 500:
        status = 400
    rows = [{"code": status, "description": refusal.message}]
    return render(request, "errors", "error", rows, status)


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

    def mount(self, app: web.Application) -> None:
        """Routes, and GeoReport's error format for everything under the prefix."""
        app.router.add_routes(self.routes())
        app[ERROR_FORMATS][PREFIX + "/"] = georeport_error

    def routes(self) -> list[web.RouteDef]:
        fmt = r"{fmt:(json|xml)}"
        return [
            web.get(f"{PREFIX}/services.{fmt}", self.services),
            web.get(f"{PREFIX}/services/{{code}}.{fmt}", self.definition),
            web.post(f"{PREFIX}/requests.{fmt}", self.post_request),
            web.get(f"{PREFIX}/requests.{fmt}", self.requests),
            web.get(f"{PREFIX}/requests/{{id}}.{fmt}", self.one_request),
            web.get(f"{PREFIX}/tokens/{{token}}.{fmt}", self.token),
            web.route("*", f"{PREFIX}/{{tail:.*}}", self.unknown),
        ]

    def _check_jurisdiction(self, value: str | None) -> None:
        if value and self.jurisdiction_id and value != self.jurisdiction_id:
            raise NotFound(f"jurisdiction_id {value[:64]!r} is not served here")

    async def services(self, request: web.Request) -> web.Response:
        self._check_jurisdiction(request.query.get("jurisdiction_id"))
        rows = [
            {
                "service_code": s.code,
                "service_name": s.name,
                "description": s.description,
                "metadata": True,  # every service asks the PUBLISH consent
                "type": s.type,
                "keywords": list(s.keywords),
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
            for a in (*service.attributes, CONSENT)
        ]
        row = {"service_code": service.code, "attributes": attributes}
        return render(request, "service_definition", None, row)

    async def post_request(self, request: web.Request) -> web.Response:
        try:
            form = await request.post()
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"the request body is not a readable form: {exc}") from None
        fields = _form_fields(form)
        key = fields.get("api_key", "")
        if not any(secrets.compare_digest(key.encode(), k.encode()) for k in self.api_keys):
            raise Unauthenticated(
                "api_key is missing or not valid" if key else "api_key is required"
            )
        self._check_jurisdiction(fields.get("jurisdiction_id"))
        code = fields.get("service_code", "").strip()
        if not code:
            raise InvalidInput("service_code is required")
        service = self.catalog.get(code)
        given = _attributes(form)
        consent = CONSENT.check(given.pop(CONSENT.code, []))
        attributes = self.catalog.check_attributes(service, given)
        new = _new_work_order(fields, service, attributes, published=consent == "yes")
        actor = Actor(f"open311:{key[:6]}…", Role.SYSTEM)
        order = await self.service.create(new, actor, issue_token=service.type == "batch")
        answer: dict[str, Any] = (
            {"token": order.token}
            if service.type == "batch"
            else {"service_request_id": order.public_id}
        )
        # The citizen's own number, for the phone (12345, key 3) and the staff.
        notice = f"{service.notice}（工单号{order.number}）" if service.notice else order.number
        answer["service_notice"] = notice
        if new.account_id:
            answer["account_id"] = new.account_id
        return render(request, "service_requests", "request", [answer])

    async def requests(self, request: web.Request) -> web.Response:
        q = request.query
        self._check_jurisdiction(q.get("jurisdiction_id"))
        if q.get("service_request_id"):
            ids = [n.strip() for n in q["service_request_id"].split(",") if n.strip()]
            if len(ids) > MAX_RECORDS:
                raise InvalidInput(f"at most {MAX_RECORDS} service_request_id values")
            orders = await self.service.find(public_ids=ids, published=True, limit=MAX_RECORDS)
        else:
            start, end = _date_range(q.get("start_date"), q.get("end_date"), self.service.clock())
            orders = await self.service.find(
                published=True,
                service_code=q.get("service_code") or None,
                start=start,
                end=end,
                states=_states(q.get("status")),
                limit=MAX_RECORDS,
            )
        return render(request, "service_requests", "request", [self._public(o) for o in orders])

    async def one_request(self, request: web.Request) -> web.Response:
        """One request by its public id; without the citizen's consent only its progress."""
        self._check_jurisdiction(request.query.get("jurisdiction_id"))
        order = await self.service.by_public_id(request.match_info["id"])
        return render(request, "service_requests", "request", [self._public(order)])

    async def token(self, request: web.Request) -> web.Response:
        self._check_jurisdiction(request.query.get("jurisdiction_id"))
        order = await self.service.by_token(request.match_info["token"])
        row = {"service_request_id": order.public_id, "token": order.token}
        return render(request, "service_requests", "request", [row])

    async def unknown(self, request: web.Request) -> web.Response:
        raise NotFound(f"no Open311 resource at {request.path[:200]}; formats are .json and .xml")

    def _public(self, order: WorkOrder) -> dict[str, Any]:
        """What the public sees: progress always; content and place only with consent."""
        service = next((s for s in self.catalog.services if s.code == order.service_code), None)
        row: dict[str, Any] = {
            "service_request_id": order.public_id,
            "status": "closed" if order.state in CLOSED else "open",
            "status_notes": LABELS_ZH[order.state],
            "service_name": service.name if service else None,
            "service_code": order.service_code,
            "agency_responsible": order.lead_department or None,
            "service_notice": service.notice if service else None,
            "requested_datetime": self._iso(order.created_at),
            "updated_datetime": self._iso(order.updated_at),
            "expected_datetime": self._iso(order.due_at),
        }
        if order.published and not order.confidential:
            row |= {
                "description": order.description or None,
                "address": order.location_text or None,
                "address_id": order.address_id or None,
                "zipcode": order.zipcode or None,
                "lat": order.lat,
                "long": order.long,
                "media_url": order.media_url or None,
            }
        return {k: v for k, v in row.items() if v is not None}  # absent: omitted, never null

    def _iso(self, moment: datetime | None) -> str | None:
        return moment.astimezone(self.tz).isoformat(timespec="seconds") if moment else None


def _form_fields(form: Any) -> dict[str, str]:
    """The request's known fields as text, each checked for type, length and controls."""
    fields: dict[str, str] = {}
    for name, limit in FIELD_LIMITS.items():
        value = form.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be text, not a file")
        if len(value) > limit:
            raise InvalidInput(f"{name} is longer than {limit} characters")
        if has_control(value, multiline=name == "description"):
            raise InvalidInput(f"{name} holds control characters")
        fields[name] = value
    return fields


def _attributes(form: Any) -> dict[str, list[str]]:
    given: dict[str, list[str]] = {}
    for name, value in form.items():
        match = _ATTRIBUTE.match(name)
        if not match:
            continue
        code = match.group(1)
        if not isinstance(value, str) or len(value) > ATTRIBUTE_LIMIT or has_control(value):
            raise InvalidInput(
                f"attribute {code[:32]} must be text of at most {ATTRIBUTE_LIMIT} characters "
                "without control characters"
            )
        given.setdefault(code, []).append(value)
    return given


def _new_work_order(
    fields: dict[str, str], service: Service, attributes: dict[str, Any], *, published: bool
) -> NewWorkOrder:
    field: Callable[[str], str] = lambda name: fields.get(name, "").strip()  # noqa: E731
    lat, long = _coordinate(field("lat"), "lat", 90), _coordinate(field("long"), "long", 180)
    if (lat is None) != (long is None):
        raise InvalidInput("lat and long must be given together")
    if lat is None and not field("address_string") and not field("address_id"):
        raise InvalidInput("a location is required: lat and long, address_string or address_id")
    media_url = field("media_url")
    if media_url:
        parts = urlsplit(media_url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise InvalidInput("media_url must be an http or https URL")
    email = field("email")
    if email and (email.count("@") != 1 or " " in email):
        raise InvalidInput("email is not an e-mail address")
    return NewWorkOrder(
        channel="app" if field("device_id") else "web",
        category=service.category,
        subject=service.name,
        description=fields.get("description", ""),
        caller_name=" ".join(filter(None, (field("last_name"), field("first_name")))),
        caller_phone=field("phone"),
        email=email,
        location_text=field("address_string"),
        lat=lat,
        long=long,
        address_id=field("address_id"),
        service_code=service.code,
        device_id=field("device_id"),
        account_id=field("account_id"),
        media_url=media_url,
        attributes=attributes,
        public_id=secrets.token_urlsafe(12),
        published=published,
    )


def _coordinate(raw: str, name: str, bound: float) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a decimal number, not {raw!r}") from None
    if not -bound <= value <= bound:  # also refuses nan and inf
        raise InvalidInput(f"{name} {raw!r} is out of range")
    return value


def _parse_date(raw: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name} {raw[:64]!r} is not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} {raw[:64]!r} needs a time zone, e.g. 2026-11-23T10:00:00+08:00")
    return moment


def _date_range(
    start_raw: str | None, end_raw: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """The spec's window: at most 90 days, the last 90 days when no dates are given."""
    start = _parse_date(start_raw, "start_date") if start_raw else None
    end = _parse_date(end_raw, "end_date") if end_raw else None
    try:
        if start is None and end is None:
            return now - MAX_RANGE, now
        if start is None:
            assert end is not None
            return end - MAX_RANGE, end
        if end is None:
            return start, start + MAX_RANGE
    except OverflowError:
        raise InvalidInput("start_date or end_date is out of range") from None
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
        raise InvalidInput(f"status must be open or closed, not {raw[:64]!r}")
    return [s for s in State if ("closed" if s in CLOSED else "open") in wanted]
