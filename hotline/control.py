"""The running engine's control endpoint, for the ``hotline`` command on the same machine.

``POST /control/seats/reload`` with ``Authorization: Bearer <control_token>`` makes the
engine apply its edited seats file: PJSIP and queues.conf, the ACD, and the seats its
feature codes log in. The token is a secret in ``data_dir/secrets.toml`` (0600), so only
the hotline's own user can use it.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from agents.seats import SeatsError
from hotline.instance import RunningInstance
from hotline.secrets import stored_secret
from web.app import RouteMount
from web.errors import HttpError

log = logging.getLogger(__name__)

CONTROL_TOKEN = "control_token"
RELOAD_SEATS = "/control/seats/reload"

SeatsReload = Callable[[], Awaitable[dict[str, Any]]]


class ControlError(RuntimeError):
    """The running engine refused a control request or could not be reached."""


def control_routes(token: str, reload_seats: SeatsReload) -> RouteMount:
    async def reload(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HttpError(401, "unauthenticated", "the control token is required")
        try:
            result = await reload_seats()
        except SeatsError as exc:
            log.warning("seats reload refused: %s", exc)
            raise HttpError(400, "seats_refused", str(exc)) from None
        return web.json_response(result)

    def mount(app: web.Application) -> None:
        app.router.add_post(RELOAD_SEATS, reload)

    return mount


async def request_seats_reload(
    instance: RunningInstance, timeout_s: float = 60.0
) -> dict[str, Any]:
    """Ask the running engine to reload its seats; returns what it changed."""
    token = stored_secret(instance.settings.data_dir, CONTROL_TOKEN)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http,
            http.post(instance.web_url + RELOAD_SEATS, headers=headers) as response,
        ):
            body: dict[str, Any] = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ControlError(
            f"the running hotline (pid {instance.pid}) did not answer: {exc}"
        ) from exc
    if response.status != 200:
        error = body.get("error")
        raise ControlError(str(error.get("message") if isinstance(error, dict) else body))
    return body
