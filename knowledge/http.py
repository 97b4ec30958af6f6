"""``/api/knowledge`` and the ``/knowledge`` page. Every staff role reads; supervisors and
admins edit (the access table, accounts/access.py). Refusals in the one error shape.

- ``GET /api/knowledge?q=&category=&all=false&limit=20``: ``{"terms", "match", "entries"}``,
  best first (without ``q``: every entry of the category by title); valid entries only
  unless ``all=true``
- ``GET /api/knowledge/suggest?order=N&limit=5``: entries for a work order's topic and words
- ``GET /api/knowledge/{id}``
- ``POST /api/knowledge`` (201), ``PATCH /api/knowledge/{id}``, ``DELETE /api/knowledge/{id}``
  (204): fields as in knowledge.entries (title unique, at most 128 characters)
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from accounts.http import actor_of
from knowledge.search import Match
from knowledge.service import KnowledgeService, SearchResult
from web.errors import InvalidRequest
from web.params import has_control, json_object, query_int
from workorders.service import WorkOrderService

KNOWLEDGE: web.AppKey[KnowledgeService] = web.AppKey("knowledge")
ORDERS: web.AppKey[WorkOrderService] = web.AppKey("knowledge_orders")
PAGE = Path(__file__).with_name("page.html")
MAX_QUERY = 200
_dumps = partial(json.dumps, ensure_ascii=False)


def _query_text(request: web.Request, name: str, max_length: int = MAX_QUERY) -> str:
    value = request.query.get(name, "").strip()
    if len(value) > max_length:
        raise InvalidRequest(f"{name} is longer than {max_length} characters")
    if has_control(value):
        raise InvalidRequest(f"{name} holds control characters")
    return value


def _query_flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidRequest(f"{name} must be true or false, not {value!r}")
    return value in ("true", "1")


def _entry_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise InvalidRequest(f"an entry's id is a whole number, not {raw!r}")
    return int(raw)


def _found(service: KnowledgeService, result: SearchResult) -> dict[str, Any]:
    today = service.today()
    return {
        "terms": list(result.terms),
        "match": result.match.value,
        "entries": [{**h.entry.as_dict(today), "score": round(h.score, 6)} for h in result.hits],
    }


async def search(request: web.Request) -> web.Response:
    service = request.app[KNOWLEDGE]
    q, category = _query_text(request, "q"), _query_text(request, "category")
    include_invalid = _query_flag(request, "all")
    limit = query_int(request, "limit", 20, 1, 100)
    if not q:
        today = service.today()
        entries = await service.listing(
            category=category, include_invalid=include_invalid, limit=limit
        )
        body = {"terms": [], "match": Match.ALL.value,
                "entries": [e.as_dict(today) for e in entries]}  # fmt: skip
        return web.json_response(body, dumps=_dumps)
    result = await service.search(
        q, category=category, include_invalid=include_invalid, limit=limit
    )
    return web.json_response(_found(service, result), dumps=_dumps)


async def suggest(request: web.Request) -> web.Response:
    """Entries for a work order the asker may see: its topic and its words, any of them."""
    number = _query_text(request, "order", 20)
    if not number:
        raise InvalidRequest("order is required: a work order's number")
    limit = query_int(request, "limit", 5, 1, 20)
    order = await request.app[ORDERS].get(number, actor_of(request))
    text = " ".join((order.subject, order.description or order.transcript))
    service = request.app[KNOWLEDGE]
    result = await service.search(text, limit=limit, match=Match.ANY)
    return web.json_response({"order": number, **_found(service, result)}, dumps=_dumps)


async def show(request: web.Request) -> web.Response:
    service = request.app[KNOWLEDGE]
    entry = await service.get(_entry_id(request))
    return web.json_response(entry.as_dict(service.today()), dumps=_dumps)


async def create(request: web.Request) -> web.Response:
    service, body = request.app[KNOWLEDGE], await json_object(request)
    entry = await service.create(body, actor_of(request).name)
    return web.json_response(entry.as_dict(service.today()), status=201, dumps=_dumps)


async def change(request: web.Request) -> web.Response:
    service, entry_id = request.app[KNOWLEDGE], _entry_id(request)
    body = await json_object(request)
    entry = await service.update(entry_id, body, actor_of(request).name)
    return web.json_response(entry.as_dict(service.today()), dumps=_dumps)


async def remove(request: web.Request) -> web.Response:
    await request.app[KNOWLEDGE].delete(_entry_id(request), actor_of(request).name)
    return web.Response(status=204)


async def page(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application, service: KnowledgeService, orders: WorkOrderService) -> None:
    app[KNOWLEDGE] = service
    app[ORDERS] = orders
    app.router.add_get("/knowledge", page)
    app.router.add_get("/api/knowledge", search)
    app.router.add_post("/api/knowledge", create)
    app.router.add_get("/api/knowledge/suggest", suggest)
    app.router.add_get("/api/knowledge/{id}", show)
    app.router.add_patch("/api/knowledge/{id}", change)
    app.router.add_delete("/api/knowledge/{id}", remove)
