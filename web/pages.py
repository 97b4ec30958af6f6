"""Staff pages kept as files in ``web/static``: the page itself (never cached: who may see it
is checked on every load) and its own script and style sheet (revalidated), plus the small
script every such page shares (``staff.js``: the API call with the session's CSRF token)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).with_name("static")
SHARED = "staff.js"
_SHARED = SHARED.replace(".", "\\.")


def page_routes(path: str, name: str) -> list[web.RouteDef]:
    """``GET path``: ``static/<name>.html``; ``GET path/<name>.js|css`` and ``path/staff.js``:
    its assets (nothing else of the folder is served)."""

    async def page(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / f"{name}.html", headers={"Cache-Control": "no-store"})

    async def asset(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / request.match_info["file"],
                                headers={"Cache-Control": "no-cache"})  # fmt: skip

    files = f"{name}\\.(?:js|css)|{_SHARED}"
    return [web.get(path, page), web.get(f"{path}/{{file:{files}}}", asset)]
