"""A supervisor listens to, whispers to or barges into a seat's live call.

``POST /api/seats/{ext}/listen`` with ``{"mode": "listen"|"whisper"|"barge"}`` (supervisors and
admins: :mod:`accounts.access`) rings the supervisor's own softphone by AMI
``Originate`` into the dialplan's ``hotline-spy`` context (asterisk-config/extensions.conf),
whose extension per mode runs ``ChanSpy(PJSIP/<seat>-,...)``: listen hears both sides,
whisper (``w``) also speaks to the seat alone, barge (``B``) speaks to both. The engine's AMI
user may Originate into a context, not into an application (its write classes have no
``system``). The supervisor's phone is the extension of their account (``hotline users bind
NAME --extension EXT``: a PJSIP endpoint of the seats file, a supervisor sits at a seat's
softphone); ``"phone"`` in the body rings another seat's softphone instead (a supervisor at
another desk). Each use goes to the audit log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Collection
from enum import StrEnum

from aiohttp import web

from accounts.http import current_user
from accounts.users import SUPERVISORS
from agents.states import SeatState
from pbx.ami import AmiActionError, AmiClient, AmiUnavailable
from queueing.acd import Acd
from web.errors import HttpError, InvalidRequest
from web.params import json_object, text_field

log = logging.getLogger(__name__)

CONTEXT = "hotline-spy"  # asterisk-config/extensions.conf: one extension per mode
RING_MS = 30_000  # how long the supervisor's phone rings


class SpyMode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


#: (actor, action, target, detail) → the accounts' audit log
Audit = Callable[[str, str, str, str], Awaitable[None]]


class ListenIn:
    def __init__(
        self, ami: AmiClient, acd: Acd, phones: Callable[[], Collection[str]], audit: Audit
    ) -> None:
        self.ami, self.acd, self.audit = ami, acd, audit
        self.phones = phones  # the PJSIP endpoints a supervisor may be rung on (seats file)

    async def start(self, supervisor: str, seat: str, phone: str, mode: SpyMode) -> str:
        """Ring ``phone``; once answered it spies on ``seat``'s call. Returns the channel id."""
        if phone not in self.phones():
            raise InvalidRequest(f"phone {phone[:16]!r} is not a softphone of the seats file")
        if phone == seat:
            raise InvalidRequest("the supervisor's phone cannot be the seat listened to")
        status = await self.acd.seat(seat)  # an unknown seat: 404 by the ACD's own error
        if status.state is not SeatState.ON_CALL:
            raise HttpError(409, "not_on_call", f"seat {seat} is not on a call ({status.state})")
        channel_id = f"spy-{uuid.uuid4().hex[:16]}"
        action = {
            "Action": "Originate",
            "Channel": f"PJSIP/{phone}",
            "Context": CONTEXT,
            "Exten": mode.value,
            "Priority": "1",
            "Variable": f"HOTLINE_SPY_SEAT={seat}",
            "Timeout": str(RING_MS),
            "CallerID": f'"{mode.value} {seat}" <{seat}>',
            "Async": "true",
            "ChannelId": channel_id,
        }
        try:
            await self.ami.action(action)
        except (AmiActionError, AmiUnavailable, TimeoutError) as exc:
            log.warning("%s could not %s seat %s: %s", supervisor, mode, seat, exc)
            raise HttpError(503, "pbx_unavailable", f"the phone could not be rung: {exc}") from None
        await self.audit(
            supervisor, "listen_in", seat, f"mode={mode} phone={phone} call={status.call_id}"
        )
        log.info("%s: %s on seat %s from phone %s (%s)", supervisor, mode, seat, phone, channel_id)
        return channel_id


LISTEN_IN = web.AppKey("listen_in", ListenIn)


async def listen(request: web.Request) -> web.Response:
    user = current_user(request)
    if user is None or user.role not in SUPERVISORS:  # an operator's own-seat rule stops short
        raise HttpError(403, "forbidden", "only a supervisor may listen in")
    seat = request.match_info["ext"]
    body = await json_object(request)
    raw = text_field(body, "mode", default=SpyMode.LISTEN.value, max_length=16)
    try:
        mode = SpyMode(raw)
    except ValueError:
        raise InvalidRequest(f"mode must be one of {', '.join(SpyMode)}, not {raw!r}") from None
    phone = text_field(body, "phone", default=user.extension, max_length=16)
    if not phone:
        raise InvalidRequest(
            f"{user.name} has no phone: hotline users bind {user.name} "
            "--extension EXT (or give the phone's extension)"
        )
    channel_id = await request.app[LISTEN_IN].start(user.name, seat, phone, mode)
    return web.json_response(
        {"seat": seat, "mode": mode.value, "phone": phone, "channel_id": channel_id}, status=202
    )


def add_routes(app: web.Application, listen_in: ListenIn) -> None:
    app[LISTEN_IN] = listen_in
    app.router.add_post("/api/seats/{ext}/listen", listen)
