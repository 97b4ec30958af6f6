"""HTTP basic authentication for the supervisors' API (credentials generated or configured)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from web.errors import HttpError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Any  # aiohttp's middleware protocol, produced by @web.middleware


def basic_auth(user: str, password: str, *, protected: tuple[str, ...]) -> Middleware:
    """Ask for the supervisor's credentials on the ``protected`` path prefixes only (the
    work-order API has its own staff tokens; Open311 its api keys)."""
    expected = f"{user}:{password}".encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not any(request.path == p or request.path.startswith(p + "/") for p in protected):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True) if scheme.lower() == "basic" else b""
        except (binascii.Error, ValueError):
            given = b""
        if not given or not hmac.compare_digest(given, expected):
            raise HttpError(
                401,
                "unauthenticated",
                "supervisor credentials required",
                headers={"WWW-Authenticate": 'Basic realm="hotline12345"'},
            )
        return await handler(request)

    return middleware
