"""The web service described in OpenAPI 3.0, served at ``/openapi.json``.

Tests fuzz the running engine against this document (tests/test_api_fuzz.py, schemathesis):
no request may end in a 500, and every refusal has the one error shape (:mod:`web.errors`),
Open311's GeoReport error list being the one documented exception.
"""

from __future__ import annotations

from typing import Any

from workorders.orders import Satisfaction
from workorders.states import State

JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}
GEOREPORT_ERRORS = {"$ref": "#/components/schemas/GeoReportErrors"}
TEXT = {"type": "string"}
OBJECT = {"type": "object"}
ACTIONS = ("answer", "dispatch", "reassign", "sign", "return", "start", "extension",
           "approve-extension", "refuse-extension", "reply", "review", "revisit", "archive",
           "merge", "note", "assist-reply")  # fmt: skip


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {JSON: {"schema": schema}}}


def _answers(ok: dict[str, Any], *refusals: int, ok_status: str = "200") -> dict[str, Any]:
    answers = {ok_status: {"description": "done", **ok}}
    for status in refusals:
        answers[str(status)] = {"description": "refused", **_json(ERROR)}
    return answers


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or TEXT}


def _body(schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"required": required, **_json(schema)}


def _staff(op: dict[str, Any]) -> dict[str, Any]:
    return {"security": [{"staff": []}], "tags": ["work orders"], **op}


def _supervisor(op: dict[str, Any]) -> dict[str, Any]:
    return {"security": [{"supervisor": []}], "tags": ["supervisors"], **op}


ORDER_FIELDS: dict[str, Any] = {
    "channel": {"type": "string", "enum": ["phone", "web", "sms", "fax", "app"]},
    "category": TEXT, "subject": {"type": "string", "maxLength": 128},
    "description": {"type": "string", "maxLength": 4000},
    "caller_name": {"type": "string", "maxLength": 64},
    "caller_phone": {"type": "string", "maxLength": 32},
    "confidential": {"type": "boolean"}, "urgent": {"type": "boolean"},
    "location_text": {"type": "string", "maxLength": 256},
    "lat": {"type": "number", "nullable": True, "minimum": -90, "maximum": 90},
    "long": {"type": "number", "nullable": True, "minimum": -180, "maximum": 180},
    "address_id": TEXT, "zipcode": TEXT, "call_id": TEXT, "email": TEXT, "service_code": TEXT,
    "lead_department": TEXT, "assisting_departments": {"type": "array", "items": TEXT},
}  # fmt: skip

ACTION_BODY = {
    "type": "object",
    "description": "the fields the action takes (answer: answer; return, extension: reason; "
    "extension: days; reply, note, assist-reply: text; review: passed; revisit: satisfaction, "
    "resolved; merge: into; dispatch, reassign: lead_department, assisting_departments; all: note)",
    "properties": {
        "note": TEXT, "answer": TEXT, "reason": TEXT, "text": TEXT, "into": TEXT,
        "days": {"type": "integer", "minimum": 1, "maximum": 365},
        "passed": {"type": "boolean"}, "resolved": {"type": "boolean"},
        "satisfaction": {"type": "string", "enum": [s.value for s in Satisfaction]},
        "lead_department": TEXT, "assisting_departments": {"type": "array", "items": TEXT},
    },
}  # fmt: skip


def _open311(summary: str, *params: dict[str, Any]) -> dict[str, Any]:
    """An Open311 operation; the format is the path's extension, errors GeoReport's list."""
    fmt = _path("format", {"type": "string", "enum": ["json", "xml"]})
    answers = {
        "200": {"description": "the resource",
                "content": {JSON: {"schema": {}}, "text/xml": {"schema": TEXT}}},
    }  # fmt: skip
    for status in ("400", "403", "404"):
        answers[status] = {
            "description": "GeoReport's error list (the specification's own format)",
            "content": {JSON: {"schema": GEOREPORT_ERRORS}, "text/xml": {"schema": TEXT}},
        }
    return {"tags": ["Open311 GeoReport v2"], "summary": summary, "parameters": [fmt, *params],
            "responses": answers}  # fmt: skip


_DAY = {"type": "string", "format": "date", "nullable": True}
KNOWLEDGE_ENTRY: dict[str, Any] = {
    "type": "object", "required": ["title", "category", "content"], "properties": {
        "title": {"type": "string", "maxLength": 128},
        "category": {"type": "string", "maxLength": 200, "description": "a path: 供水/停水"},
        "kind": {"type": "string", "enum": ["guide", "law", "qa"]},
        "content": {"type": "string", "maxLength": 20000},
        "issuing_unit": {"type": "string", "maxLength": 128},
        "valid_from": _DAY, "valid_to": _DAY,
        "keywords": {"type": "array", "items": {"type": "string", "maxLength": 32}},
    }, "additionalProperties": False,
}  # fmt: skip


def openapi_document() -> dict[str, Any]:
    number = _path("number", {"type": "string", "pattern": "^[0-9]{1,20}$"})
    entry_id = _path("id", {"type": "integer", "minimum": 1})
    jurisdiction = _query("jurisdiction_id", TEXT)
    paths: dict[str, Any] = {
        "/healthz": {"get": {"summary": "readiness of every part", "responses": {
            "200": {"description": "every part up", **_json(OBJECT)},
            "503": {"description": "a part is down (named in the body)", **_json(OBJECT)},
        }}},
        "/openapi.json": {"get": {"summary": "this document",
                                  "responses": {"200": {"description": "OpenAPI 3.0"}}}},
        "/api/calls": {"get": _supervisor({
            "summary": "recent calls and their IVR journey",
            "parameters": [_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})],
            "responses": _answers(_json(OBJECT), 400, 401, 403)})},
        "/api/stats": {"get": _supervisor({
            "summary": "queue figures since an epoch time (default: the last 24 h)",
            "parameters": [_query("since", {"type": "number"}, "epoch seconds")],
            "responses": _answers(_json(OBJECT), 400, 401, 403)})},
        "/api/seats": {"get": _supervisor({
            "summary": "every seat and its state",
            "responses": _answers(_json(OBJECT), 401, 403)})},
        "/api/revisits": {"get": _supervisor({
            "summary": "revisit calls with the day's figures (operators: ?state=manual only)",
            "parameters": [_query("state", {"type": "string",
                                            "enum": ["due", "dialing", "done", "manual"]})],
            "responses": _answers(_json(OBJECT), 400, 401, 403)})},
        "/api/revisits/{number}": {"get": _supervisor({
            "summary": "one order's revisit and its attempts",
            "parameters": [_path("number")],
            "responses": _answers(_json(OBJECT), 401, 403, 404)})},
        "/api/revisits/{number}/result": {"post": _supervisor({
            "summary": "a revisit's result taken by phone, recorded by an operator",
            "parameters": [_path("number")],
            "requestBody": _body({"type": "object", "required": ["resolved", "satisfaction"],
                                  "properties": {
                                      "resolved": {"type": "boolean"},
                                      "satisfaction": {"type": "string", "enum": [
                                          "very_satisfied", "satisfied", "dissatisfied"]},
                                      "note": {"type": "string", "maxLength": 500}}},
                                 required=True),
            "responses": _answers(_json(OBJECT), 400, 401, 403, 404, 409)})},
        "/api/callbacks/failed": {"get": _supervisor({
            "summary": "callbacks the citizen did not answer, after their retries",
            "responses": _answers(_json(OBJECT), 401, 403)})},
        "/api/wallboard": {"get": _supervisor({
            "summary": "the supervisor's wallboard: queues today, seats, orders near deadline",
            "responses": _answers(_json(OBJECT), 401, 403, 503)})},
        "/api/reports/{report}": {"get": _supervisor({
            "summary": "a report by period between two local dates (reports/), as JSON, CSV "
                       "or XLSX",
            "parameters": [
                _path("report", {"type": "string", "enum": [
                    f"{p}.{f}" for p in ("daily", "weekly", "monthly")
                    for f in ("json", "csv", "xlsx")]}),
                {**_query("from", {"type": "string", "format": "date"}), "required": True},
                {**_query("to", {"type": "string", "format": "date"}), "required": True},
            ],
            "responses": _answers({"content": {
                JSON: {"schema": OBJECT}, "text/csv": {"schema": TEXT},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}},
            }}, 400, 401, 403)})},
        "/metrics": {"get": _supervisor({
            "summary": "Prometheus metrics (a supervisor, or the metrics token as bearer)",
            "responses": {**_answers({}, 401, 403, 503),
                          "200": {"description": "Prometheus text format",
                                  "content": {"text/plain": {"schema": TEXT}}}}})},
        "/api/me": {"get": _staff({
            "summary": "the logged-in user, and the session's CSRF token for changes",
            "tags": ["accounts"], "responses": _answers(_json(OBJECT), 401)})},
        "/api/audit": {"get": {
            "summary": "the audit log, newest first (admins)", "tags": ["accounts"],
            "security": [{"supervisor": []}],
            "parameters": [_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})],
            "responses": _answers(_json(OBJECT), 400, 401, 403)}},
        "/api/seats/{ext}/{change}": {"post": _supervisor({
            "summary": "log a seat in (pin), out, pause it (reason), resume it, end its wrap-up",
            "parameters": [_path("ext"), _path("change", {"type": "string", "enum": [
                "login", "logout", "pause", "resume", "ready"]})],
            "requestBody": _body({"type": "object", "properties": {"pin": TEXT,
                                                                   "reason": TEXT}}),
            "responses": _answers(_json(OBJECT), 400, 401, 403, 404, 409, 415)})},
        "/api/seats/{ext}/listen": {"post": _supervisor({
            "summary": "listen to, whisper to or barge into the seat's live call on the "
                       "supervisor's softphone (their account's extension, or phone: a seat's)",
            "parameters": [_path("ext")],
            "requestBody": _body({"type": "object", "properties": {
                "mode": {"type": "string", "enum": ["listen", "whisper", "barge"]},
                "phone": TEXT}}),
            "responses": _answers(_json(OBJECT), 400, 401, 403, 404, 409, 415, 503,
                                  ok_status="202")})},
        "/api/announcements": {
            "get": _supervisor({
                "summary": "the announcements callers hear before the menu now, and the "
                           "menu's languages",
                "responses": _answers(_json(OBJECT), 401, 403, 503)}),
            "post": _supervisor({
                "summary": "an announcement, a text per menu language, until expires_at",
                "requestBody": _body({"type": "object", "required": ["texts", "expires_at"],
                                      "properties": {
                    "texts": {"type": "object", "additionalProperties": TEXT},
                    "expires_at": {"type": "string", "format": "date-time"}}}, required=True),
                "responses": _answers(_json(OBJECT), 400, 401, 403, 415, 503,
                                      ok_status="201")})},
        "/api/announcements/recording": {"post": _supervisor({
            "summary": "a recorded announcement (the body: a WAV file, any rate and channels, "
                       "0.3-180 s, at most 16 MB) until expires_at",
            "parameters": [{**_query("expires_at", {"type": "string", "format": "date-time"}),
                            "required": True}],
            "requestBody": {"required": True, "content": {
                "audio/wav": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": _answers(_json(OBJECT), 400, 401, 403, 413, 503, ok_status="201")})},
        "/api/announcements/{id}": {"delete": _supervisor({
            "summary": "end an announcement early",
            "parameters": [_path("id")],
            "responses": _answers(_json(OBJECT), 401, 403, 404, 503)})},
        "/api/desk": {"get": {
            "summary": "the operator's seat, its state, and the call at it with its context",
            "tags": ["desk"], "security": [{"staff": []}],
            "responses": _answers(_json(OBJECT), 401, 403, 409)}},
        "/api/live/transcript/{call_id}": {"get": {
            "summary": "what each side of a running call said so far (live transcription) and "
                       "the category and knowledge entries it suggests; an operator: own seat",
            "tags": ["desk"], "security": [{"staff": []}], "parameters": [_path("call_id")],
            "responses": _answers(_json(OBJECT), 401, 403, 404)}},
        "/api/portal": {"get": {
            "summary": "the department's orders it leads or assists in that still need it",
            "tags": ["portal"], "security": [{"staff": []}],
            "responses": _answers(_json(OBJECT), 401, 403)}},
        "/api/workorders": {
            "post": _staff({
                "summary": "register a work order",
                "requestBody": _body({"type": "object", "required": ["channel"],
                                      "properties": ORDER_FIELDS}, required=True),
                "responses": _answers(_json(OBJECT), 400, 401, 403, 415, ok_status="201")}),
            "get": _staff({
                "summary": "work orders, newest first (a department: its own)",
                "parameters": [
                    _query("state", {"type": "string", "enum": [s.value for s in State]}),
                    _query("department", TEXT),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
                "responses": _answers(_json({"type": "array", "items": OBJECT}), 400, 401)}),
        },
        "/api/workorders/{number}": {
            "get": _staff({"summary": "one work order, as the caller's role may see it",
                           "parameters": [number],
                           "responses": _answers(_json(OBJECT), 401, 403, 404)}),
            "patch": _staff({
                "summary": "correct an open order's fields (and a note)",
                "parameters": [number],
                "requestBody": _body({"type": "object", "properties": {
                    **ORDER_FIELDS, "no_revisit": {"type": "boolean"}, "note": TEXT}}),
                "responses": _answers(_json(OBJECT), 400, 401, 403, 404, 409, 415)}),
        },
        "/api/workorders/{number}/{action}": {"post": _staff({
            "summary": "one step of the closed loop",
            "parameters": [number, _path("action", {"type": "string", "enum": list(ACTIONS)})],
            "requestBody": _body(ACTION_BODY),
            "responses": _answers(_json(OBJECT), 400, 401, 403, 404, 409, 415)})},
        "/api/knowledge": {
            "get": _staff({
                "summary": "knowledge entries for words (ranked) or a category (by title)",
                "tags": ["knowledge"],
                "parameters": [
                    _query("q", {"type": "string", "maxLength": 200}, "words, Chinese or not"),
                    _query("category", {"type": "string", "maxLength": 200}, "a path: a/b"),
                    _query("all", {"type": "boolean"}, "expired and future entries too"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                ],
                "responses": _answers(_json(OBJECT), 400, 401, 403)}),
            "post": _supervisor({
                "summary": "add an entry (supervisors, admins)", "tags": ["knowledge"],
                "requestBody": _body(KNOWLEDGE_ENTRY, required=True),
                "responses": _answers(_json(OBJECT), 400, 401, 403, 409, 415,
                                      ok_status="201")}),
        },
        "/api/knowledge/suggest": {"get": _staff({
            "summary": "entries for a work order's topic and words", "tags": ["knowledge"],
            "parameters": [{**_query("order", TEXT), "required": True},
                           _query("limit", {"type": "integer", "minimum": 1, "maximum": 20})],
            "responses": _answers(_json(OBJECT), 400, 401, 403, 404)})},
        "/api/knowledge/{id}": {
            "get": _staff({"summary": "one entry", "tags": ["knowledge"],
                           "parameters": [entry_id],
                           "responses": _answers(_json(OBJECT), 400, 401, 403, 404)}),
            "patch": _supervisor({
                "summary": "change the fields given (supervisors, admins)", "tags": ["knowledge"],
                "parameters": [entry_id],
                "requestBody": _body({**KNOWLEDGE_ENTRY, "required": []}, required=True),
                "responses": _answers(_json(OBJECT), 400, 401, 403, 404, 409, 415)}),
            "delete": _supervisor({
                "summary": "delete an entry (supervisors, admins)", "tags": ["knowledge"],
                "parameters": [entry_id],
                "responses": _answers({}, 400, 401, 403, 404, ok_status="204")}),
        },
        "/api/status/{number}": {"get": {
            "tags": ["citizens"], "summary": "the state of a work order, nothing else",
            "parameters": [_path("number")],
            "responses": _answers(_json({"type": "object", "required": ["state"], "properties": {
                "number": TEXT, "state": TEXT, "label": TEXT}}), 404)}},
        "/sms/inbound": {"post": {
            "tags": ["citizens"],
            "summary": "the SMS gateway's webhook (signed: see workorders/sms.py)",
            "parameters": [
                {"name": "X-Hotline-Timestamp", "in": "header", "required": False,
                 "schema": TEXT},
                {"name": "X-Hotline-Signature", "in": "header", "required": False,
                 "schema": TEXT},
            ],
            "requestBody": {"required": True, "content": {
                JSON: {"schema": {"type": "object", "properties": {"from": TEXT, "text": TEXT}}},
                "application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "properties": {"from": TEXT, "text": TEXT}}},
            }},
            "responses": _answers(_json(OBJECT), 400, 401, 415)}},
        "/control/seats/reload": {"post": {
            "tags": ["engine"], "security": [{"control": []}],
            "summary": "apply the edited seats file (the hotline command on this machine)",
            "responses": _answers(_json(OBJECT), 400, 401)}},
        "/open311/v2/services.{format}": {"get": _open311("the service list", jurisdiction)},
        "/open311/v2/services/{code}.{format}": {"get": _open311(
            "a service's attributes (PUBLISH: the consent to publication)", _path("code"),
            jurisdiction)},
        "/open311/v2/requests.{format}": {
            "get": _open311("the public feed (published requests)",
                            _query("service_request_id", TEXT), _query("service_code", TEXT),
                            _query("start_date", TEXT), _query("end_date", TEXT),
                            _query("status", {"type": "string", "enum": ["open", "closed"]}),
                            jurisdiction),
            "post": {**_open311("file a request (api_key required)"), "requestBody": {
                "required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "required": ["api_key", "service_code"],
                    "properties": {name: TEXT for name in (
                        "api_key", "jurisdiction_id", "service_code", "lat", "long",
                        "address_string", "address_id", "email", "device_id", "account_id",
                        "first_name", "last_name", "phone", "description", "media_url",
                        "attribute[PUBLISH]")}}}}}},
        },
        "/open311/v2/requests/{id}.{format}": {"get": _open311(
            "one request by its public id", _path("id"), jurisdiction)},
        "/open311/v2/tokens/{token}.{format}": {"get": _open311(
            "the public id of a batch request's token", _path("token"), jurisdiction)},
    }  # fmt: skip
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "hotline12345 web API",
            "version": "1",
            "description": "Every refusal is {\"error\": {\"code\", \"message\"}} except under "
            "/open311/v2/, which answers GeoReport v2's error list as its specification "
            "requires.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "staff": {"type": "http", "scheme": "bearer",
                          "description": "a user's token (`hotline users token NAME`), or the "
                                         "session cookie of /login with X-CSRF-Token on changes"},
                "supervisor": {"type": "http", "scheme": "bearer",
                               "description": "a supervisor's or admin's token or session"},
                "control": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": TEXT, "message": TEXT}}}},
                "GeoReportErrors": {"type": "array", "items": {
                    "type": "object", "required": ["code", "description"],
                    "properties": {"code": {"type": "integer"}, "description": TEXT}}},
            },
        },
    }  # fmt: skip
