"""The web service's one error shape, and the one place that maps errors to HTTP.

Every refusal is ``{"error": {"code": <stable code>, "message": <for people>}}`` with the
status below. Domain errors (:class:`domain.errors.DomainError`) carry their own stable
``code`` and status; aiohttp's own refusals (unknown route, method, oversized body) get one
by status.
A path prefix may register its own format (Open311's GeoReport error list, which the
specification requires): see :data:`ERROR_FORMATS`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from domain.errors import DomainError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Refusal:
    """What the client is told: status, stable code, message, extra headers."""

    status: int
    code: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """A refusal raised by the web layer itself (authentication, parameters)."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.refusal = Refusal(status, code, message, dict(headers or {}))


class InvalidRequest(HttpError):
    """400: a parameter or body field the API cannot take."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "invalid_input", message)


ErrorFormat = Callable[[web.Request, Refusal], web.Response]
#: path prefix → the error format of the resources under it (default: :func:`error_response`)
ERROR_FORMATS: web.AppKey[dict[str, ErrorFormat]] = web.AppKey("error_formats")

_BY_STATUS = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    431: "headers_too_large",
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(_request: web.Request | None, refusal: Refusal) -> web.Response:
    return web.json_response(
        error_body(refusal.code, refusal.message),
        status=refusal.status,
        headers=refusal.headers,
        dumps=lambda value: json.dumps(value, ensure_ascii=False),
    )


def refusal_of(exc: BaseException) -> Refusal | None:
    """The refusal an error stands for; None for an unexpected error (a bug: 500)."""
    if isinstance(exc, HttpError):
        return exc.refusal
    if isinstance(exc, DomainError):
        return Refusal(exc.status, exc.code, exc.message)
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate")}
        code = _BY_STATUS.get(exc.status, "client_error" if exc.status < 500 else "server_error")
        return Refusal(exc.status, code, exc.reason, headers)
    return None


def _format(request: web.Request) -> ErrorFormat:
    formats = request.app.get(ERROR_FORMATS, {})
    prefixes = [p for p in formats if request.path.startswith(p)]
    return formats[max(prefixes, key=len)] if prefixes else error_response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error of every route, in one shape (or its path's registered format)."""
    try:
        return await handler(request)
    except Exception as exc:
        if isinstance(exc, web.HTTPException) and exc.status < 400:
            raise  # redirects and the like are answers, not errors
        refusal = refusal_of(exc)
        if refusal is None:
            log.exception("%s %s failed", request.method, request.path)
            refusal = Refusal(500, "internal", "internal error; the engine's log has the cause")
        elif refusal.status >= 500:
            log.warning("%s %s: %s", request.method, request.path, refusal.message)
        else:
            log.info("%s %s refused (%s): %s", request.method, request.path, refusal.code,
                     refusal.message)  # fmt: skip
        return _format(request)(request, refusal)
