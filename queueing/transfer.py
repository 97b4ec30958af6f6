"""Transfers of a citizen's call connected to a seat: to another queue, to a named seat, or a
handover to an emergency number (110 police, 119 fire, 120 ambulance, 122 traffic).

How: the engine's AMI ``Redirect`` (class ``call``, which the engine's AMI user holds) moves
the citizen's own channel out of its conversation with the seat; the seat's leg ends (the ACD
counts the call completed at that seat, which enters wrap-up), and the citizen's channel goes
on in the dialplan:

- ``queue:<skill>`` → ``hotline-queue,<skill>``: the caller waits in the engine's ACD again
  (same call id, same recording) and reaches a seat with that skill;
- ``seat:<ext>`` → ``hotline-transfer,seat-<ext>``: the seat's phone rings (hold music for
  the caller); unanswered, the caller goes to the operator queue; answered, the call's
  listeners hear of it (:mod:`queueing.direct`: that seat's desk pops);
- ``emergency:<number>`` → ``hotline-transfer,emergency-<number>``: the citizen's channel
  dials the number through the carrier trunk (the callback's dial string, ``callback_dial``)
  and hears it ring: the caller stays on the line until the other side answers and is then
  bridged to it; unanswered, back to the operator queue. Only numbers in the
  ``emergency_numbers`` setting are dialled;
- ``number:<number>`` (a department's number) → ``hotline-transfer,number-<number>``: the
  same as an emergency number, for the numbers a three-way call may dial;
- ``three-way:<number>`` (a department's number): Redirect moves the citizen's and the
  seat's channel together (ExtraChannel) into a ConfBridge named after the call, and AMI
  Originate (class ``originate``) dials the number through the trunk into the same room.
  Only numbers the callback rule would call (local, never international or premium:
  ``callback_number_pattern``) are dialled. The ACD counts the seat's call completed then.

An attended transfer (consult first, then complete or cancel) is :mod:`queueing.consult`.
The recording goes on with the caller (:mod:`intake.onward`, told before the channel moves):
the second party is in the call's one recording and work order.

Each transfer is a step ``transfer`` on the call record (node: the target, detail: the seat
and who asked). ``POST /api/seats/<ext>/transfer`` ``{"to": "queue:police"}`` is the desk's
(an operator only for their own seat: :mod:`accounts.access`).

From the softphone: ``#1`` during the call, then a code (:func:`transfer_codes`): ``*4<n>``
the n-th skill of the seats file, a seat's extension, or an emergency number; or the
softphone's own transfer button (SIP REFER) to the same codes. Asterisk's blind transfer
moves the caller the same way (the caller's channel carries ``TRANSFER_CONTEXT``); its AMI
``BlindTransfer`` event puts the step on the call record (:meth:`Transfers.on_blind_transfer`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from panoramisk.message import Message
from redis.exceptions import RedisError

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

KINDS = ("queue", "seat", "emergency", "three-way", "number")

# Moves a channel to (context, extension, priority 1) of the dialplan: AMI Redirect; the
# last argument, if not empty, a second channel moved with it (ExtraChannel).
Redirect = Callable[[str, str, str, str], Awaitable[None]]
# Dials a number through the trunk into (context, extension): AMI Originate.
Originate = Callable[[str, str, str], Awaitable[None]]
# The channel of a seat in a call (by seat and call id), if Asterisk has one.
SeatChannel = Callable[[str, str], Awaitable[str | None]]


class TransferRefused(Exception):
    """No call to transfer at the seat (409)."""


class NoFreeSeat(Exception):
    """No seat of the queue is free to consult (409)."""


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


def parse_target(
    text: str,
    seats: SeatsFile,
    emergency: tuple[str, ...],
    department_numbers: re.Pattern[str] | None = None,
) -> Target:
    """``queue:<skill>``, ``seat:<ext>``, ``emergency:<number>``, ``number:<number>`` or
    ``three-way:<number>`` (a number ``department_numbers`` matches whole); ValueError
    otherwise."""
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
    elif kind in ("three-way", "number"):
        if department_numbers is None or not department_numbers.fullmatch(name):
            raise ValueError(f"{name!r} is not a number the hotline may dial for a {kind} call")
    else:
        raise ValueError(f"transfer to {text!r}: queue:<skill>, seat:<ext>, emergency:<number>, "
                         "number:<number> or three-way:<number>")  # fmt: skip
    return Target(kind, name)


SKILL_CODE = "*4"  # *4<n>: the n-th skill of the seats file (1 to 9)
CONTEXT = "hotline-transfer"


def transfer_codes(seats: SeatsFile, emergency: tuple[str, ...]) -> dict[str, Target]:
    """What a seat may dial after ``#1``: by code, the target."""
    codes = {f"{SKILL_CODE}{n}": Target("queue", skill.name)
             for n, skill in enumerate(seats.skills[:9], start=1)}  # fmt: skip
    codes.update({seat.extension: Target("seat", seat.extension) for seat in seats.seats})
    codes.update({number: Target("emergency", number) for number in emergency})
    return codes


def render_codes(codes: dict[str, Target]) -> str:
    """The codes as dialplan lines of ``hotline-transfer`` (each goes where the desk's goes)."""
    lines = []
    for code, target in codes.items():
        context, exten = target.dialplan()
        lines.append(f"exten => {code},1,Goto({context},{exten},1) ; {target.text}")
    return "\n".join(lines)


class Transfers:
    def __init__(
        self,
        acd: Acd,
        calls: CallStore,
        redirect: Redirect,
        emergency: tuple[str, ...],
        kick: Callable[[], None] = lambda: None,
        *,
        originate: Originate | None = None,
        seat_channel: SeatChannel | None = None,
        department_numbers: re.Pattern[str] | None = None,
        on_transferred: Callable[[str], None] = lambda call_id: None,
    ) -> None:
        self.acd, self.calls, self.redirect = acd, calls, redirect
        # told (by call id) before the caller moves: the recording goes on with the caller
        self.on_transferred = on_transferred
        self.emergency = emergency
        self.kick = kick
        self.originate, self.seat_channel = originate, seat_channel
        # no three-way calls without a way to dial and to find the seat's channel
        ready = originate is not None and seat_channel is not None
        self.department_numbers = department_numbers if ready else None
        self._steps: set[asyncio.Task[bool]] = set()

    def target(self, text: str) -> Target:
        return parse_target(text, self.acd.seats, self.emergency, self.department_numbers)

    def targets(self) -> dict[str, list[str]]:
        """What a seat may transfer to (the desk's choices), from the seats file as reloaded."""
        seats = self.acd.seats
        return {"queues": [skill.name for skill in seats.skills],
                "seats": [seat.extension for seat in seats.seats],
                "emergency": list(self.emergency)}  # fmt: skip

    async def transfer(self, seat: str, target: Target, who: str) -> dict[str, Any]:
        """Move the citizen connected to ``seat`` to ``target``; ``who`` asked for it."""
        if target.kind == "seat" and target.name == seat:
            raise ValueError(f"seat {seat} cannot transfer a call to itself")
        call_id, record = await self.connected_call(seat)
        self.on_transferred(call_id)
        if target.kind == "three-way":
            await self._three_way(seat, call_id, record["channel"], target.name)
        else:
            context, exten = target.dialplan()
            await self.redirect(record["channel"], context, exten, "")
        await self.calls.add_step_to(
            call_id, JourneyStep("transfer", node=target.text, detail=f"from seat {seat} by {who}")
        )
        log.info("call %s from %s transferred from seat %s to %s by %s", call_id,
                 mask_number(record["caller_number"] or "unknown"), seat, target.text,
                 who)  # fmt: skip
        self.kick()
        return {"call_id": call_id, "from": seat, "to": target.text, "by": who}

    async def connected_call(self, seat: str) -> tuple[str, dict[str, Any]]:
        """The call id and call record of the citizen connected to ``seat``."""
        status = await self.acd.seat(seat)
        if status.state is not SeatState.ON_CALL or not status.call_id:
            raise TransferRefused(f"seat {seat} has no connected call ({status.state.value})")
        record = await self.calls.get(status.call_id)
        if record is None:
            raise TransferRefused(f"seat {seat}: call {status.call_id} has no call record")
        return status.call_id, record

    async def _three_way(self, seat: str, call_id: str, caller_channel: str, number: str) -> None:
        """Citizen and seat into the call's conference room, then the number dialled into it."""
        assert self.originate is not None and self.seat_channel is not None  # see __init__
        seat_channel = await self.seat_channel(seat, call_id)
        if seat_channel is None:
            raise TransferRefused(f"seat {seat}: Asterisk has no channel of call {call_id}")
        room = f"three-way-{call_id}"
        await self.redirect(caller_channel, CONTEXT, room, seat_channel)
        await self.originate(number, CONTEXT, room)

    def on_blind_transfer(self, event: Message) -> None:
        """AMI BlindTransfer: a seat's softphone moved its caller (``#1`` or REFER)."""
        if event.get("Context") != CONTEXT or event.get("Result") != "Success":
            return
        codes = transfer_codes(self.acd.seats, self.emergency)
        target = codes.get(event.get("Extension", ""))
        seat = event.get("TransfererChannel", "").removeprefix("PJSIP/").rpartition("-")[0]
        call_id = event.get("TransfereeUniqueid", "")
        how = "REFER" if event.get("IsExternal") == "Yes" else "#1"
        self.on_transferred(call_id)
        text = target.text if target else event.get("Extension", "")
        log.info("call %s transferred from seat %s to %s by its softphone (%s)", call_id, seat,
                 text, how)  # fmt: skip
        step = JourneyStep("transfer", node=text, detail=f"from seat {seat} by softphone ({how})")
        task = asyncio.create_task(self.calls.add_step_to(call_id, step))
        self._steps.add(task)
        task.add_done_callback(self._steps.discard)
        self.kick()

    # -- HTTP ----------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/seats/{ext}/transfer", self.post)]

    async def post(self, request: web.Request) -> web.Response:
        seat = request.match_info["ext"]
        body = await json_object(request)
        with http_errors():
            target = self.target(text_field(body, "to", max_length=64))
            done = await self.transfer(seat, target, who_asks(request))
        return web.json_response(done)


def who_asks(request: web.Request) -> str:
    user = current_user(request)
    return user.name if user is not None else "staff"


@contextmanager
def http_errors() -> Iterator[None]:
    """A transfer's refusals as the API's errors (409, 503, 400)."""
    try:
        yield
    except TransferRefused as exc:
        raise HttpError(409, "no_call", str(exc)) from None
    except NoFreeSeat as exc:
        raise HttpError(409, "no_free_seat", str(exc)) from None
    except AmiActionError as exc:  # the call ended meanwhile, say
        raise HttpError(409, "transfer_failed", f"Asterisk refused: {exc}") from None
    except (AmiUnavailable, TimeoutError) as exc:
        raise HttpError(503, "pbx_unavailable", f"Asterisk not reachable: {exc}") from None
    except RedisError as exc:  # the ACD's Redis (an open consultation, say)
        raise HttpError(503, "unavailable", f"the ACD's Redis not reachable: {exc}") from None
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


def add_routes(app: web.Application, transfers: Transfers) -> None:
    app.router.add_routes(transfers.routes())
