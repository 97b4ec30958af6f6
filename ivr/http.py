"""Broadcast announcements on the web service (supervisors and admins: see
:mod:`accounts.access`).

``GET /api/announcements`` lists those callers hear now (with the menu's ``languages``, in
order: the ones a text may be given in); ``POST /api/announcements`` with
``{"texts": {"zh": "…", "en": "…"}, "expires_at": "2026-12-07T18:00:00+08:00"}`` adds one
(synthesised before it is stored, 201); ``POST /api/announcements/recording?expires_at=…``
with a WAV file as the body (any rate and channels, at most 16 MB) adds a recorded one (the
wallboard's upload; 201, 413 if larger); ``DELETE /api/announcements/{id}`` ends one early.
Refusals are the web service's one error shape (:mod:`web.errors`); each change is in the
audit log.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from datetime import datetime
from typing import TypeVar

from aiohttp import web
from redis.exceptions import RedisError

from accounts.http import current_user
from ivr.announcements import AnnouncementError, Announcements
from web.errors import HttpError, InvalidRequest
from web.params import json_object

ANNOUNCEMENTS = web.AppKey("announcements", Announcements)
T = TypeVar("T")
MAX_UPLOAD = 16 * 1024 * 1024  # bytes of an uploaded recording (a minute of CD audio: 10 MB)


async def _stored(step: Awaitable[T]) -> T:
    """The store's answer; Redis unreachable is a 503, not a 500."""
    try:
        return await step
    except (RedisError, OSError, TimeoutError) as exc:
        raise HttpError(503, "unavailable", f"announcements unavailable: {exc}") from None


async def list_announcements(request: web.Request) -> web.Response:
    announcements = request.app[ANNOUNCEMENTS]
    items = await _stored(announcements.current())
    return web.json_response({"announcements": [a.as_dict() for a in items],
                              "languages": list(announcements.languages)},
                             dumps=_dumps)  # fmt: skip


async def add_announcement(request: web.Request) -> web.Response:
    body = await json_object(request)
    texts = body.get("texts")
    if not isinstance(texts, dict):
        raise InvalidRequest('texts is required: an object of language → text, e.g. {"zh": "…"}')
    expires_at = _expiry(body.get("expires_at"))
    user = current_user(request)
    try:
        adding = request.app[ANNOUNCEMENTS].add(texts, expires_at, user.name if user else "")
        made = await _stored(adding)
    except AnnouncementError as exc:
        raise InvalidRequest(str(exc)) from None
    return web.json_response(made.as_dict(), status=201, dumps=_dumps)


async def add_recording(request: web.Request) -> web.Response:
    expires_at = _expiry(request.query.get("expires_at"))
    sound = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        sound += chunk
        if len(sound) > MAX_UPLOAD:
            raise HttpError(413, "too_large", f"a recording may have {MAX_UPLOAD} bytes at most")
    if not sound:
        raise InvalidRequest("the body is the recording: a WAV file")
    user = current_user(request)
    try:
        adding = request.app[ANNOUNCEMENTS].add_recording(
            bytes(sound), expires_at, user.name if user else ""
        )
        made = await _stored(adding)
    except AnnouncementError as exc:
        raise InvalidRequest(str(exc)) from None
    return web.json_response(made.as_dict(), status=201, dumps=_dumps)


def _expiry(raw: object) -> datetime:
    if not isinstance(raw, str):
        raise InvalidRequest("expires_at is required: an ISO 8601 time with its offset")
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(f"expires_at must be an ISO 8601 time, not {raw[:40]!r}") from None


async def remove_announcement(request: web.Request) -> web.Response:
    announcement_id = request.match_info["id"]
    if not await _stored(request.app[ANNOUNCEMENTS].remove(announcement_id[:64])):
        raise HttpError(404, "not_found", f"no announcement {announcement_id[:64]!r}")
    return web.json_response({"removed": announcement_id})


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def add_routes(app: web.Application, announcements: Announcements) -> None:
    app[ANNOUNCEMENTS] = announcements
    app.router.add_get("/api/announcements", list_announcements)
    app.router.add_post("/api/announcements", add_announcement)
    app.router.add_post("/api/announcements/recording", add_recording)
    app.router.add_delete("/api/announcements/{id}", remove_announcement)
