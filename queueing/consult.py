"""Attended transfers: the operator consults the target while the caller is held, then
completes (the caller is put through) or cancels (back to the caller).

How: AMI ``Atxfer`` (class ``call``) on the seat's channel is Asterisk's own attended
transfer, as if the seat had pressed ``#2`` (features.conf ``atxfer``) and dialled the
target: the caller hears hold music, the seat's channel calls the target through a Local
channel in ``hotline-transfer``: the transfer codes (a named seat's extension, an emergency
number), or ``*9`` for a department's number, which the engine checked and set on the seat's
channel (``HOTLINE_CONSULT_NUMBER``) first; numbers go out through the carrier trunk.
Complete: the seat's channel hangs up (AMI ``Hangup``): Asterisk bridges the caller with
the target, at once if it answered, otherwise once it answers, the caller hearing it ring
(what 110/119/120/122 need: the caller stays on the line until the other side answers).
Cancel: AMI ``CancelAtxfer`` (the ``atxferabort`` feature): the target's leg ends and the
seat talks to the caller again.

The softphone does the same with ``#2`` then a code of :func:`queueing.transfer.transfer_codes`;
completing is hanging up, ``*1`` cancels (features.conf). Asterisk's ``AttendedTransfer``
event, whoever started it, puts the step ``transfer`` on the call record (``(attended)``),
tells intake that the recording goes on with the caller (:mod:`intake.onward`) and ends the
first seat's part in the ACD (the caller's channel stays in its conversation, so the ACD
would not hear of it otherwise). The desk's consultation (start and cancel) is the step
``consult``.

A queue as the target (``queue:<skill>``): the ACD chooses the seat, as it would for a caller
of that queue arriving now (:meth:`queueing.acd.Acd.consult_seat`, Lua in Redis); that seat
rings for the consultation (its extension is a transfer code) and is offered no caller
meanwhile, and its desk is told it is a consultation (``consult``, not a new call). No seat
of the queue free: refused (409 ``no_free_seat``), the caller is not held waiting. Put
through, the chosen seat becomes the call's seat in the ACD (the first seat's part ends, its
wrap-up starts) and its desk pops with the call; cancelled or unanswered, it is free at once.
:meth:`Consultations.consult` is the one place a consultation's seat is chosen.

An open consultation is kept in the ACD's Redis (:class:`OpenConsultations`, expiring), not
in the engine's memory: Asterisk holds the call, so after an engine restart (or on another
engine) the desk still completes or cancels it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web
from panoramisk.message import Message
from redis.exceptions import RedisError

from calls.store import JourneyStep
from queueing.acd import Acd, AcdError
from queueing.direct import DirectSeats
from queueing.models import CallStateError, UnknownSkill
from queueing.transfer import (
    CONTEXT,
    NoFreeSeat,
    Target,
    TransferRefused,
    Transfers,
    http_errors,
    transfer_codes,
    who_asks,
)
from web.params import json_object, text_field

log = logging.getLogger(__name__)

CONSULT_KINDS = ("seat", "emergency", "number", "queue")
# A department's number has no code: the engine sets it on the seat's channel, then keys *9.
NUMBER_CODE, NUMBER_VARIABLE = "*9", "HOTLINE_CONSULT_NUMBER"
KEEP_DIALLED = 1024  # consultations remembered until they complete or end
# An open consultation outlives the engine that started it (Redis, under the ACD prefix):
# another engine, or this one restarted, completes or cancels it; forgotten after this long.
OPEN_TTL_S = 4 * 3600
BRIDGED_WAIT_S = 3.0  # a seat's channel just answered joins the caller's bridge within this
# Now and then Asterisk's Atxfer does not dial (the keys it plays into the seat's channel are
# lost): without the consultation's channel this soon, it is sent once more, then refused.
ATXFER_TRIES, ATXFER_DIALS_S = 2, 4.0
# One AMI action, its answer (pbx.ami.AmiClient.action).
AmiAction = Callable[[dict[str, str]], Awaitable[Any]]
# Tells a seat's desk (web.live): a consultation rings there (seat, what it is about).
TellDesk = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Consultation:
    call_id: str
    seat_channel: str
    target: str  # Target.text
    who: str
    chosen: str = ""  # a queue's target: the seat the ACD chose for the consultation


class OpenConsultations:
    """The open consultations by seat, in the ACD's Redis: ``<prefix>consult:<seat>`` (the
    consultation, JSON) and ``<prefix>consult-call:<call id>`` (its seat), both expiring."""

    def __init__(self, acd: Acd) -> None:
        self.acd = acd

    def _keys(self, seat: str, call_id: str) -> tuple[str, str]:
        return f"{self.acd.prefix}consult:{seat}", f"{self.acd.prefix}consult-call:{call_id}"

    async def put(self, seat: str, open_: Consultation) -> None:
        by_seat, by_call = self._keys(seat, open_.call_id)
        pipe = self.acd.redis.pipeline(transaction=True)
        pipe.set(by_seat, json.dumps(asdict(open_)), ex=OPEN_TTL_S)
        pipe.set(by_call, seat, ex=OPEN_TTL_S)
        await pipe.execute()

    async def get(self, seat: str) -> Consultation | None:
        raw = await self.acd.redis.get(self._keys(seat, "")[0])
        return Consultation(**json.loads(raw)) if raw else None

    async def pop(self, seat: str) -> Consultation | None:
        """The seat's consultation, no longer open (only one caller gets it)."""
        raw = await self.acd.redis.getdel(self._keys(seat, "")[0])
        if not raw:
            return None
        open_ = Consultation(**json.loads(raw))
        await self.acd.redis.delete(self._keys(seat, open_.call_id)[1])
        return open_

    async def seat_of(self, call_id: str) -> str | None:
        raw = await self.acd.redis.get(self._keys("", call_id)[1])
        return raw.decode() if isinstance(raw, bytes) else raw


class Consultations:
    def __init__(
        self,
        transfers: Transfers,
        ami: AmiAction,
        *,
        tell_desk: TellDesk = lambda seat, about: None,
        direct: DirectSeats | None = None,
    ) -> None:
        self.transfers, self.ami = transfers, ami
        self.tell_desk = tell_desk
        self.direct = direct  # tells the call's listeners of the seat it was put through to
        self._open = OpenConsultations(transfers.acd)
        self._dialled: dict[str, str] = {}  # by call id: the target a softphone's #2 keyed
        self._dialling: dict[str, asyncio.Event] = {}  # by call id: set when Atxfer dialled
        self._tasks: set[asyncio.Task[None]] = set()

    async def consult(self, seat: str, target: Target, who: str) -> dict[str, Any]:
        """Hold the caller of ``seat`` and call ``target`` from the seat's channel."""
        if target.kind not in CONSULT_KINDS:
            raise ValueError(f"consult {target.text!r}: a queue, a seat, an emergency number "
                             "or a department's number")  # fmt: skip
        if target.kind == "seat" and target.name == seat:
            raise ValueError(f"seat {seat} cannot consult itself")
        call_id, record = await self.transfers.connected_call(seat)
        channel = await self._seat_channel(seat, call_id)
        code = target.name  # a seat's extension, an emergency number: transfer codes
        if target.kind == "number":  # checked above; the consultation inherits it
            await self.ami({"Action": "Setvar", "Channel": channel,
                            "Variable": f"__{NUMBER_VARIABLE}", "Value": target.name})  # fmt: skip
            code = NUMBER_CODE
        chosen = await self._choose(call_id, seat, target) if target.kind == "queue" else ""
        code = chosen or code  # the chosen seat's extension: a transfer code
        open_ = Consultation(call_id, channel, target.text, who, chosen)
        try:
            await self._atxfer(call_id, channel, code)
            await self._open.put(seat, open_)
        except BaseException:
            if chosen:
                await self._free(open_, seat)
            raise
        detail = f"from seat {seat} by {who}" + (f": seat {chosen}" if chosen else "")
        await self._step(call_id, "consult", target.text, detail)
        log.info("call %s: seat %s consults %s%s (%s), the caller held", call_id, seat,
                 target.text, f" (seat {chosen})" if chosen else "", who)  # fmt: skip
        if chosen:
            self.tell_desk(chosen, _about(open_, seat, record["caller_number"]))
        done = {"call_id": call_id, "seat": seat, "consulting": target.text, "by": who}
        return {**done, "chosen_seat": chosen} if chosen else done

    async def about(self, chosen: str, call_id: str) -> dict[str, Any] | None:
        """What ``chosen``'s desk shows while it rings for a consultation of ``call_id``
        (the live ``consult`` event's data), if that consultation is open."""
        seat = await self._open.seat_of(call_id)
        open_ = await self._open.get(seat) if seat else None
        if seat is None or open_ is None or open_.chosen != chosen:
            return None
        record = await self.transfers.calls.get(call_id)
        return _about(open_, seat, record["caller_number"] if record else None)

    async def _atxfer(self, call_id: str, channel: str, code: str) -> None:
        """Asterisk's Atxfer on the seat's channel (it plays the feature code and ``code`` as
        if the seat keyed them), until the consultation's channel appears (Newchannel)."""
        dialled = self._dialling[call_id] = asyncio.Event()
        try:
            for attempt in range(1, ATXFER_TRIES + 1):
                await self.ami({"Action": "Atxfer", "Channel": channel, "Context": CONTEXT,
                                "Exten": code})  # fmt: skip
                try:
                    await asyncio.wait_for(dialled.wait(), ATXFER_DIALS_S)
                    return
                except TimeoutError:
                    log.warning("call %s: Atxfer on %s did not dial %s (attempt %d)", call_id,
                                channel, code, attempt)  # fmt: skip
        finally:
            self._dialling.pop(call_id, None)
        raise TransferRefused(f"Asterisk did not start the consultation ({code}): try again")

    async def _choose(self, call_id: str, seat: str, target: Target) -> str:
        """The seat the ACD gives ``target``'s queue for this consultation (ringing for it)."""
        try:
            chosen = await self.transfers.acd.consult_seat(call_id, seat, target.name)
        except UnknownSkill as exc:
            raise ValueError(str(exc)) from None
        except CallStateError as exc:
            raise TransferRefused(f"seat {seat}: {exc}") from None
        if chosen is None:
            raise NoFreeSeat(f"no seat of queue {target.name} is free to consult; try again "
                             "or transfer the caller to the queue")  # fmt: skip
        return chosen

    async def complete(self, seat: str, who: str) -> dict[str, Any]:
        """Put the caller through to the consulted target: the seat's channel leaves."""
        open_ = await self._consultation(seat)
        self.transfers.on_transferred(open_.call_id)
        await self.ami({"Action": "Hangup", "Channel": open_.seat_channel})
        log.info("call %s: seat %s completes its transfer to %s (%s)", open_.call_id, seat,
                 open_.target, who)  # fmt: skip
        return {"call_id": open_.call_id, "from": seat, "to": open_.target, "by": who}

    async def cancel(self, seat: str, who: str) -> dict[str, Any]:
        """End the consultation: the seat is back with the caller."""
        # no longer open before its channel's Hangup arrives (on_hangup)
        open_ = await self._open.pop(seat)
        if open_ is None:
            raise TransferRefused(f"seat {seat} is not consulting anybody")
        try:
            await self.ami({"Action": "CancelAtxfer", "Channel": open_.seat_channel})
        except BaseException:
            await self._open.put(seat, open_)
            raise
        if open_.chosen:
            await self._free(open_, seat)
        await self._step(open_.call_id, "consult", open_.target,
                         f"cancelled by seat {seat} ({who})")  # fmt: skip
        log.info("call %s: seat %s cancelled its consultation of %s", open_.call_id, seat,
                 open_.target)  # fmt: skip
        return {"call_id": open_.call_id, "seat": seat, "cancelled": open_.target}

    def on_attended_transfer(self, event: Message) -> None:
        """AMI AttendedTransfer: a seat's caller was put through (desk or softphone ``#2``)."""
        if event.get("Result") != "Success":
            return
        transferer = event.get("OrigTransfererChannel", "")
        seat = transferer.removeprefix("PJSIP/").rpartition("-")[0]
        call_id = event.get("TransfereeUniqueid", "")
        if not seat or not call_id:
            return
        self.transfers.on_transferred(call_id)
        self._spawn(self._transferred(call_id, seat))

    async def _transferred(self, call_id: str, seat: str) -> None:
        try:
            open_ = await self._open.pop(seat)
        except RedisError as exc:
            log.warning("call %s: seat %s's consultation not read (%s)", call_id, seat, exc)
            open_ = None
        if open_ is not None:
            target, who = open_.target, open_.who
        else:  # the softphone's #2: the target's Local channel names the code dialled
            target, who = self._dialled.pop(call_id, "?"), "softphone (#2)"
        chosen = open_.chosen if open_ is not None else ""
        log.info("call %s transferred from seat %s to %s%s after consulting (%s)", call_id, seat,
                 target, f" (seat {chosen})" if chosen else "", who)  # fmt: skip
        detail = f"from seat {seat} by {who} (attended)" + (f": seat {chosen}" if chosen else "")
        await self._step(call_id, "transfer", target, detail)
        if chosen:
            await self._handed_over(call_id, seat, chosen)
            return
        await self._seat_done(call_id, seat)
        if target.startswith("seat:") and self.direct is not None:  # outside the ACD
            await self.direct.reached(call_id, target.removeprefix("seat:"))

    def on_newchannel(self, event: Message) -> None:
        """AMI Newchannel: a consultation's own channel names the code the seat keyed
        (``Local/<code>@hotline-transfer-…;1``, linked to the citizen's call); Asterisk may
        optimise that channel away before the transfer completes, so it is read now."""
        name = event.get("Channel", "")
        if name.startswith("Local/") and f"@{CONTEXT}-" in name and name.endswith(";1"):
            code = name.removeprefix("Local/").partition("@")[0]
            codes = transfer_codes(self.transfers.acd.seats, self.transfers.emergency)
            call_id = event.get("Linkedid", "")
            self._dialled[call_id] = codes[code].text if code in codes else code
            if (dialling := self._dialling.get(call_id)) is not None:
                dialling.set()
            while len(self._dialled) > KEEP_DIALLED:
                del self._dialled[next(iter(self._dialled))]

    def on_hangup(self, event: Message) -> None:
        """AMI Hangup: a consultation's own channel (``Local/<code>@hotline-transfer-…;1``,
        linked to the citizen's call) ended before it was put through: the target did not
        answer or hung up, and the seat is back with its caller. Completing it now would
        hang up the seat's call with the caller, so it is no longer open."""
        name = event.get("Channel", "")
        if not (name.startswith("Local/") and f"@{CONTEXT}-" in name and name.endswith(";1")):
            return
        call_id = event.get("Linkedid", "")
        self._dialled.pop(call_id, None)
        self._spawn(self._ended(call_id, event.get("Cause-txt", "")))

    async def _ended(self, call_id: str, cause: str) -> None:
        try:
            seat = await self._open.seat_of(call_id)
            open_ = await self._open.pop(seat) if seat else None
        except RedisError as exc:
            log.warning("call %s: its consultation's end not stored (%s)", call_id, exc)
            return
        if seat is None or open_ is None or open_.call_id != call_id:
            return
        if open_.chosen:
            await self._free(open_, seat)
        log.info("call %s: seat %s's consultation of %s ended unanswered (%s); the seat is "
                 "back with the caller", call_id, seat, open_.target, cause or "?")  # fmt: skip
        await self._step(call_id, "consult", open_.target, f"ended: {cause or 'hung up'}")

    # -- helpers -------------------------------------------------------------------------
    async def _consultation(self, seat: str) -> Consultation:
        open_ = await self._open.get(seat)
        if open_ is None:
            raise TransferRefused(f"seat {seat} is not consulting anybody")
        return open_

    async def _seat_channel(self, seat: str, call_id: str) -> str:
        """The seat's channel talking with the caller; a call put through a moment ago is
        waited for (up to ``BRIDGED_WAIT_S``): Atxfer before the bridge does nothing."""
        find = self.transfers.seat_channel
        loop = asyncio.get_running_loop()
        until = loop.time() + BRIDGED_WAIT_S
        while find is not None:
            channel = await find(seat, call_id)
            if channel is not None:
                return channel
            if loop.time() >= until:
                break
            await asyncio.sleep(0.2)
        raise TransferRefused(f"seat {seat}: Asterisk has no channel of call {call_id} "
                              "talking with the caller")  # fmt: skip

    async def _step(self, call_id: str, kind: str, node: str, detail: str) -> None:
        await self.transfers.calls.add_step_to(call_id, JourneyStep(kind, node=node,
                                                                    detail=detail))  # fmt: skip

    async def _seat_done(self, call_id: str, seat: str) -> None:
        """The first seat's part is over (its wrap-up starts): the caller's conversation goes
        on with the target, so the connector hears of its end only at the caller's hangup."""
        try:
            released = await self.transfers.acd.hangup(call_id)
            log.info("call %s: seat %s's part %s", call_id, seat, released.outcome)
        except (RedisError, OSError, TimeoutError, AcdError) as exc:
            log.warning("call %s: seat %s not released after the transfer (%s)", call_id, seat,
                        exc)  # fmt: skip
        self.transfers.kick()

    async def _handed_over(self, call_id: str, seat: str, chosen: str) -> None:
        """The seat the ACD chose is the call's seat now; its desk pops with the call."""
        try:
            await self.transfers.acd.consult_handover(call_id, chosen)
        except (RedisError, OSError, TimeoutError, AcdError) as exc:
            log.warning("call %s: not handed over from seat %s to seat %s in the ACD (%s)",
                        call_id, seat, chosen, exc)  # fmt: skip
            await self._seat_done(call_id, seat)
            return
        self.transfers.kick()
        if self.direct is not None:  # the ACD ends the call with that seat (the connector)
            await self.direct.announce(call_id, chosen)

    async def _free(self, open_: Consultation, seat: str) -> None:
        """The seat chosen for ``seat``'s consultation is offered callers again at once."""
        try:
            if await self.transfers.acd.consult_free(open_.call_id, open_.chosen):
                log.info("call %s: seat %s, chosen for seat %s's consultation, is free",
                         open_.call_id, open_.chosen, seat)  # fmt: skip
        except (RedisError, OSError, TimeoutError, AcdError) as exc:
            log.warning("call %s: seat %s not freed after the consultation (%s)", open_.call_id,
                        open_.chosen, exc)  # fmt: skip
        self.transfers.kick()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- HTTP ----------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/seats/{ext}/consult", self.post_consult),
            web.post("/api/seats/{ext}/consult-complete", self.post_complete),
            web.post("/api/seats/{ext}/consult-cancel", self.post_cancel),
        ]

    async def post_consult(self, request: web.Request) -> web.Response:
        body = await json_object(request)
        with http_errors():
            target = self.transfers.target(text_field(body, "to", max_length=64))
            done = await self.consult(request.match_info["ext"], target, who_asks(request))
        return web.json_response(done)

    async def post_complete(self, request: web.Request) -> web.Response:
        with http_errors():
            done = await self.complete(request.match_info["ext"], who_asks(request))
        return web.json_response(done)

    async def post_cancel(self, request: web.Request) -> web.Response:
        with http_errors():
            done = await self.cancel(request.match_info["ext"], who_asks(request))
        return web.json_response(done)


def _about(open_: Consultation, seat: str, caller_number: str | None) -> dict[str, Any]:
    """A queue consultation as the chosen seat's desk shows it."""
    return {"call_id": open_.call_id, "from_seat": seat,
            "queue": open_.target.removeprefix("queue:"), "caller_number": caller_number or "",
            "by": open_.who}  # fmt: skip
