"""Typed reading of what clients send: query numbers, JSON object bodies, body fields.

Every helper refuses with :class:`~web.errors.InvalidRequest` (400, the one error shape):
a number that is not one or is out of range, a body that is not a JSON object, a field of
the wrong JSON type (``"false"`` is not a boolean), text too long or with control characters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from aiohttp import web

from web.errors import HttpError, InvalidRequest

_MISSING = object()
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}, not {value}")
    return value


def query_float(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        raise InvalidRequest(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise InvalidRequest(f"{name} must be a finite number")
    return value


def query_date(request: web.Request, name: str) -> date:
    """A required calendar date, ``YYYY-MM-DD``."""
    raw = request.query.get(name)
    if raw is None:
        raise InvalidRequest(f"{name} is required (a date, YYYY-MM-DD)")
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be a date (YYYY-MM-DD), not {raw!r}") from None


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}``."""
    if not request.body_exists:
        return {}
    if request.content_type != "application/json":
        raise HttpError(
            415, "unsupported_media_type", "send the body as application/json (a JSON object)"
        )
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the body must be a JSON object; it is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"the body must be a JSON object, not {type(body).__name__}")
    return body


def has_control(text: str, *, multiline: bool = False) -> bool:
    """True if ``text`` holds C0/C1 control characters (tab and newlines allowed if
    ``multiline``)."""
    allowed = "\t\n\r" if multiline else ""
    return any((ord(ch) < 32 or 127 <= ord(ch) < 160) and ch not in allowed for ch in text)


def text_field(
    body: Mapping[str, Any],
    name: str,
    *,
    default: Any = _MISSING,
    max_length: int = 4000,
    multiline: bool = False,
) -> str:
    value = body.get(name, default)
    if value is _MISSING:
        raise InvalidRequest(f"{name} is required")
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    if len(value) > max_length:
        raise InvalidRequest(f"{name} is longer than {max_length} characters")
    if has_control(value, multiline=multiline):
        raise InvalidRequest(f"{name} holds control characters")
    return value


def bool_field(body: Mapping[str, Any], name: str, default: Any = _MISSING) -> bool:
    value = body.get(name, default)
    if value is _MISSING:
        raise InvalidRequest(f"{name} is required (true or false)")
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be a JSON boolean (true or false), not {value!r}")
    return value


def int_field(body: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = body.get(name, _MISSING)
    if value is _MISSING:
        raise InvalidRequest(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be a whole number")
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}")
    return value


def text_list(body: Mapping[str, Any], name: str, *, max_length: int = 128) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{name} must be a list of strings")
    for entry in value:
        text_field({name: entry}, name, max_length=max_length)
    return value
