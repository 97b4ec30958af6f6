"""Transfers of a citizen's call connected to a seat: to another queue, to a named seat, or a
handover to an emergency number (110 police, 119 fire, 120 ambulance, 122 traffic).

How: the engine's AMI ``Redirect`` (class ``call``, which the engine's AMI user holds) moves
the citizen's own channel out of its conversation with the seat; the seat's leg ends (the ACD
counts the call completed at that seat, which enters wrap-up), and the citizen's channel goes
on in the dialplan:

- ``queue:<skill>`` → ``hotline-queue,<skill>``: the caller waits in the engine's ACD again
  (same call id, same recording) and reaches a seat with that skill;
- ``seat:<ext>`` → ``hotline-transfer,seat-<ext>``: the seat's phone rings (hold music for
  the caller); unanswered, the caller goes to the operator queue;
- ``emergency:<number>`` → ``hotline-transfer,emergency-<number>``: the citizen's channel
  dials the number through the carrier trunk (the callback's dial string, ``callback_dial``)
  and hears it ring: the caller stays on the line until the other side answers and is then
  bridged to it; unanswered, back to the operator queue. Only numbers in the
  ``emergency_numbers`` setting are dialled.

Each transfer is a step ``transfer`` on the call record (node: the target, detail: the seat
and who asked). ``POST /api/seats/<ext>/transfer`` ``{"to": "queue:police"}`` is the desk's
(an operator only for their own seat: :mod:`accounts.access`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from accounts.http import current_user
from agents.seats import SeatsFile
from agents.states import SeatState
from calls.callerid import mask_number
from calls.store import CallStore, JourneyStep
from pbx.ami import AmiActionError, AmiUnavailable
from queueing.acd import Acd
from web.errors import HttpError, InvalidRequest
from web.params import json_object, text_field

log = logging.getLogger(__name__)

KINDS = ("queue", "seat", "emergency")

# Moves a channel to (context, extension, priority 1) of the dialplan: AMI Redirect.
Redirect = Callable[[str, str, str], Awaitable[None]]


class TransferRefused(Exception):
    """No call to transfer at the seat (409)."""


@dataclass(frozen=True)
class Target:
    kind: str  # one of KINDS
    name: str  # a skill, a seat's extension, an emergency number

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.name}"

    def dialplan(self) -> tuple[str, str]:
        """Where the citizen's channel goes: (context, extension)."""
        if self.kind == "queue":
            return "hotline-queue", self.name
        return "hotline-transfer", f"{self.kind}-{self.name}"


def emergency_numbers(setting: str) -> tuple[str, ...]:
    """The ``emergency_numbers`` setting ("110,119,120,122"): digits only."""
    numbers = tuple(n.strip() for n in setting.split(",") if n.strip())
    bad = [n for n in numbers if not n.isdigit()]
    if bad:
        raise ValueError(f"emergency_numbers: not a number: {', '.join(bad)}")
    return numbers


def parse_target(text: str, seats: SeatsFile, emergency: tuple[str, ...]) -> Target:
    """``queue:<skill>``, ``seat:<ext>`` or ``emergency:<number>``; ValueError otherwise."""
    kind, _, name = text.partition(":")
    if kind == "queue":
        skills = {skill for seat in seats.seats for skill, _ in seat.skills}
        if name not in skills:
            raise ValueError(f"no queue {name!r}: one of {', '.join(sorted(skills))}")
    elif kind == "seat":
        if name not in {seat.extension for seat in seats.seats}:
            raise ValueError(f"no seat {name!r}")
    elif kind == "emergency":
        if name not in emergency:
            raise ValueError(f"{name!r} is not an emergency number: one of {', '.join(emergency)}")
    else:
        raise ValueError(f"transfer to {text!r}: queue:<skill>, seat:<ext> or emergency:<number>")
    return Target(kind, name)


class Transfers:
    def __init__(
        self,
        acd: Acd,
        calls: CallStore,
        redirect: Redirect,
        emergency: tuple[str, ...],
        kick: Callable[[], None] = lambda: None,
    ) -> None:
        self.acd, self.calls, self.redirect = acd, calls, redirect
        self.emergency = emergency
        self.kick = kick

    def target(self, text: str) -> Target:
        return parse_target(text, self.acd.seats, self.emergency)

    async def transfer(self, seat: str, target: Target, who: str) -> dict[str, Any]:
        """Move the citizen connected to ``seat`` to ``target``; ``who`` asked for it."""
        if target.kind == "seat" and target.name == seat:
            raise ValueError(f"seat {seat} cannot transfer a call to itself")
        status = await self.acd.seat(seat)
        if status.state is not SeatState.ON_CALL or not status.call_id:
            raise TransferRefused(f"seat {seat} has no connected call ({status.state.value})")
        record = await self.calls.get(status.call_id)
        if record is None:
            raise TransferRefused(f"seat {seat}: call {status.call_id} has no call record")
        context, exten = target.dialplan()
        await self.redirect(record["channel"], context, exten)
        await self.calls.add_step_to(
            status.call_id,
            JourneyStep("transfer", node=target.text, detail=f"from seat {seat} by {who}"),
        )
        log.info("call %s from %s transferred from seat %s to %s by %s", status.call_id,
                 mask_number(record["caller_number"] or "unknown"), seat, target.text,
                 who)  # fmt: skip
        self.kick()
        return {"call_id": status.call_id, "from": seat, "to": target.text, "by": who}

    # -- HTTP ----------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/seats/{ext}/transfer", self.post)]

    async def post(self, request: web.Request) -> web.Response:
        seat = request.match_info["ext"]
        body = await json_object(request)
        user = current_user(request)
        who = user.name if user is not None else "staff"
        try:
            target = self.target(text_field(body, "to", max_length=64))
            done = await self.transfer(seat, target, who)
        except TransferRefused as exc:
            raise HttpError(409, "no_call", str(exc)) from None
        except AmiActionError as exc:  # the call ended meanwhile, say
            raise HttpError(409, "transfer_failed", f"Asterisk refused: {exc}") from None
        except (AmiUnavailable, TimeoutError) as exc:
            raise HttpError(503, "pbx_unavailable", f"Asterisk not reachable: {exc}") from None
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        return web.json_response(done)


def add_routes(app: web.Application, transfers: Transfers) -> None:
    app.router.add_routes(transfers.routes())
