"""The desk's live transcript panel: what each side of a call says, and what it suggests.

:class:`TranscriptPanel` receives what live transcription (:mod:`intake.live`) heard and
publishes it as live events (:mod:`web.live`) to the seat's operator and the supervisors:
``transcript`` (``{call_id, seat, side, text, partial}``: completed utterances and Vosk's guess
at the current one) and, after each utterance the citizen completes, ``suggestion``
(``{call_id, seat, category, matched, knowledge: [{id, title, category}]}``: the order's
category by the dispatch rules and the knowledge-base entries its words find).
``GET /api/live/transcript/{call_id}`` gives the same for a page opened during the call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from accounts.http import current_user
from accounts.users import SUPERVISORS
from calls.lifecycle import ConnectedCall
from intake.live import LiveTranscription
from knowledge.search import Match
from knowledge.service import SearchResult
from speech.live import Heard
from speech.pool import CALLER, Speaker
from web.errors import HttpError
from web.live import LiveEvent, LiveHub
from web.pages import STATIC
from workorders.dispatch import DispatchRules

log = logging.getLogger(__name__)

SUGGESTED_ENTRIES = 3

#: the knowledge base's search (KnowledgeService.search)
Search = Callable[..., Awaitable[SearchResult]]


class TranscriptPanel:
    def __init__(self, hub: LiveHub, rules: DispatchRules, search: Search) -> None:
        self.hub, self.rules, self.search = hub, rules, search
        self.live: LiveTranscription | None = None  # set once live transcription runs
        self._suggestions: dict[str, dict[str, Any]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def heard(self, call: ConnectedCall, side: Speaker, heard: Heard) -> None:
        """:data:`intake.live.OnHeard`: publish, and suggest after the citizen's utterances."""
        data = {"call_id": call.call_id, "seat": call.seat, "side": side, "text": heard.text,
                "partial": heard.partial}  # fmt: skip
        self.hub.publish(LiveEvent("transcript", data, seat=call.seat))
        running = self._tasks.get(call.call_id)
        if side == CALLER and heard.completed and (running is None or running.done()):
            task = asyncio.create_task(self._suggest(call, heard.text))
            self._tasks[call.call_id] = task
            task.add_done_callback(lambda _t: self._tasks.pop(call.call_id, None))

    async def suggest(self, text: str, queue: str) -> dict[str, Any]:
        """The category the rules give ``text`` (the queue sets its kind) and the entries found."""
        hint = self.rules.suggest(text, queue)
        found = await self.search(text, match=Match.ANY, limit=SUGGESTED_ENTRIES)
        entries = [{"id": hit.entry.id, "title": hit.entry.title, "category": hit.entry.category}
                   for hit in found.hits]  # fmt: skip
        return {"category": hint.category, "matched": list(hint.matched), "knowledge": entries}

    async def _suggest(self, call: ConnectedCall, text: str) -> None:
        try:
            suggestion = await self.suggest(text, call.skill)
        except Exception:  # e.g. the database is down: the transcript still shows
            log.exception("call %s at seat %s: no suggestion from the live transcript",
                          call.call_id, call.seat)  # fmt: skip
            return
        data = {"call_id": call.call_id, "seat": call.seat, **suggestion}
        self._suggestions[call.call_id] = data
        while len(self._suggestions) > 256:
            self._suggestions.pop(next(iter(self._suggestions)))
        self.hub.publish(LiveEvent("suggestion", data, seat=call.seat))

    # -- route -----------------------------------------------------------------------------
    async def current(self, request: web.Request) -> web.Response:
        """``GET /api/live/transcript/{call_id}``: an operator sees the calls of their seat."""
        user = current_user(request)
        assert user is not None  # the access rules let operators and supervisors through
        call_id = request.match_info["call_id"]
        heard = self.live.heard(call_id) if self.live is not None else None
        call = self.live.call_of(call_id) if self.live is not None else None
        if heard is None or call is None:
            raise HttpError(404, "no_live_transcript", f"no live transcript of call {call_id!r}")
        if user.role not in SUPERVISORS and user.extension != call.seat:
            raise HttpError(404, "no_live_transcript", f"no live transcript of call {call_id!r}")
        body = {
            "call_id": call_id, "seat": call.seat, "ended": call.ended_at is not None,
            "sides": {side: {"text": h.text, "partial": h.partial} for side, h in heard.items()},
            "suggestion": self._suggestions.get(call_id),
        }  # fmt: skip
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    def mount(self, app: web.Application) -> None:
        """A :data:`web.app.RouteMount`: the route and the panel's script on the desk."""
        app.router.add_get("/api/live/transcript/{call_id}", self.current)
        app.router.add_get("/desk/transcript.js", script)


async def script(_request: web.Request) -> web.FileResponse:
    """The panel's script (web/static/transcript.js), loaded by the desk page."""
    return web.FileResponse(STATIC / "transcript.js", headers={"Cache-Control": "no-cache"})
