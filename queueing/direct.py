"""Calls put through to a named seat outside the ACD, announced to the call's listeners.

A blind transfer to ``seat:<ext>`` (the desk's, or the softphone's ``#1``/REFER) moves the
citizen's channel into ``hotline-transfer,seat-<ext>``, where it dials the seat itself; an
attended transfer to a seat (:mod:`queueing.consult`) bridges the caller with the seat that
took the consultation. The ACD connects neither, so the connector announces neither: this
does. When the seat answers (AMI ``DialEnd`` of the citizen's channel in that context, or the
completed consultation) the call's listeners hear that the call reached the seat (its desk
pops with the caller, the order comes along, the live transcript's words go there) and the
ACD puts the seat on the call (``connect`` in the call's queue, as a native ``Queue()`` call
is kept: :meth:`queueing.acd.Acd.native`), so its desk may transfer it again; when the
citizen hangs up (AMI ``Hangup``), the listeners hear that the call is over (the desk shows
its end) and the seat's wrap-up starts (``complete``, its talk time).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from panoramisk.message import Message
from redis.exceptions import RedisError

from calls.callerid import mask_number
from calls.lifecycle import ConnectedCall
from calls.store import CallStore
from queueing.acd import Acd
from queueing.dialing import Listeners
from queueing.models import AcdError
from queueing.transfer import CONTEXT

log = logging.getLogger(__name__)

SEAT_EXTEN = "seat-"  # hotline-transfer,seat-<ext>: the caller's channel dials that seat
KEEP_CALLS = 4096  # calls at a named seat remembered until their citizen hangs up


class DirectSeats:
    def __init__(self, calls: CallStore, listeners: Listeners, acd: Acd) -> None:
        self.calls, self.listeners, self.acd = calls, listeners, acd
        self._at_seat: OrderedDict[str, ConnectedCall] = OrderedDict()  # by call id
        self._tasks: set[asyncio.Task[None]] = set()

    def on_dial_end(self, event: Message) -> None:
        """AMI DialEnd: a citizen's channel moved to a named seat, and that seat answered."""
        exten, channel = event.get("Exten", ""), event.get("Channel", "")
        to_seat = event.get("Context") == CONTEXT and exten.startswith(SEAT_EXTEN)
        # (a Local channel dials for a consultation: queueing.consult tells of its end)
        if not to_seat or event.get("DialStatus") != "ANSWER" or channel.startswith("Local/"):
            return
        self._spawn(self.reached(event.get("Uniqueid", ""), exten.removeprefix(SEAT_EXTEN),
                                 event.get("DestChannel", ""), channel))  # fmt: skip

    def on_hangup(self, event: Message) -> None:
        """AMI Hangup: the citizen of a call at a named seat hung up: the call is over."""
        call = self._at_seat.pop(event.get("Uniqueid", ""), None)
        if call is not None:
            self._spawn(self._ended(replace(call, ended_at=datetime.now(UTC))))

    async def _ended(self, call: ConnectedCall) -> None:
        assert call.ended_at is not None
        talk_ms = (call.ended_at - call.connected_at).total_seconds() * 1000
        await self._in_acd("complete", call, f"{talk_ms:.0f}")
        await self.listeners.finished(call)

    async def reached(
        self, call_id: str, seat: str, seat_channel: str = "", caller_channel: str = ""
    ) -> None:
        """The citizen of ``call_id`` talks with ``seat`` now, outside the ACD."""
        call = await self.announce(call_id, seat, seat_channel, caller_channel)
        if call is None:
            return
        self._at_seat[call_id] = call
        while len(self._at_seat) > KEEP_CALLS:  # a Hangup missed (AMI reconnecting)
            self._at_seat.popitem(last=False)
        # its wait was counted at the first seat's connect (the queue's figures take that one)
        await self._in_acd("connect", call, "0")

    async def announce(
        self, call_id: str, seat: str, seat_channel: str = "", caller_channel: str = ""
    ) -> ConnectedCall | None:
        """Tell the call's listeners that its citizen reached ``seat`` (its desk pops, the
        order and the live transcript go along); the call, or None without its record."""
        try:
            record = await self.calls.get(call_id)
        except Exception:  # the database, say: the call goes on, the desk reloads it
            log.exception("call %s put through to seat %s: its record not read", call_id, seat)
            return None
        if record is None:
            log.warning("call %s put through to seat %s has no call record", call_id, seat)
            return None
        call = ConnectedCall(
            call_id=call_id, caller_channel=caller_channel or record["channel"],
            caller_number=record["caller_number"], seat=seat, seat_channel=seat_channel,
            skill=(record["route"] or "").removeprefix("queue:"), connected_at=datetime.now(UTC),
        )  # fmt: skip
        log.info("call %s from %s put through to seat %s", call_id,
                 mask_number(record["caller_number"]), seat)  # fmt: skip
        await self.listeners.connected(call)
        return call

    async def _in_acd(self, op: str, call: ConnectedCall, data: str) -> None:
        at = (call.ended_at or call.connected_at).timestamp()
        try:
            await self.acd.native(op, call.call_id, seat=call.seat, skill=call.skill, at=at,
                                  data=data)  # fmt: skip
        except (RedisError, OSError, TimeoutError, AcdError) as exc:  # the call goes on
            log.warning("call %s at seat %s: %s not kept in the ACD (%s)", call.call_id,
                        call.seat, op, exc)  # fmt: skip

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
