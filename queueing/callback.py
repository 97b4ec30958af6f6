"""Callbacks: when a callback's turn comes, ring a free seat first, then call the citizen.

The dispatcher hands a callback's decision to :meth:`CallbackRinger.ring`, which rings the
seat by AMI ``Originate`` (no citizen channel exists to dial from) into the dialplan's
``hotline-callback`` context: AMI may not Originate into ``AGI()`` itself without the system
class, which the engine's AMI user does not hold. When the seat answers, its channel runs
the FastAGI ``callback`` route there (:meth:`CallbackRinger.run`): the ACD marks
the call answered, and the seat's channel dials the citizen (``callback_dial``, e.g. a
trunk) showing the hotline's number. If the seat does not answer, the Originate fails (or
the ring deadline passes) and the call goes back to the head of its queue, the seat paused.
Each call to the citizen is on the outbound dialer's record (:mod:`queueing.callback_retries`):
it takes one of the dialer's lines while it rings; not answered, it is tried again later.
A citizen not reached (busy, no answer, congestion, unavailable) frees the seat at once, as a
callback not reached: no wrap-up, neither answered nor in AHT (:meth:`Acd.not_reached`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from calls.callerid import mask_number
from calls.lifecycle import ConnectedCall
from intake.files import mixmonitor_args, recording_files
from pbx.agi_channel import AgiChannel, CallerHungUp
from pbx.ami import AmiActionError, AmiClient, AmiUnavailable
from pbx.outbound import OutboundDial
from queueing.acd import Acd
from queueing.callback_retries import CallbackSchedule
from queueing.dialing import DialWatch, Listeners
from queueing.dispatcher import Dispatcher
from queueing.models import AcdError, Assignment

log = logging.getLogger(__name__)

# the citizen's leg ended (DIALSTATUS) without reaching the citizen: the seat handled no call
NOT_REACHED = frozenset({"NOANSWER", "BUSY", "CONGESTION", "CHANUNAVAIL"})


def callback_number_rule(pattern: str) -> re.Pattern[str]:
    """The configured pattern of numbers that may be called back, checked once at start."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"callback_number_pattern {pattern!r}: {exc}") from exc


def may_call_back(number: str | None, rule: re.Pattern[str]) -> bool:
    """Whether ``number`` (a caller's own, untrusted) may be called back at our cost."""
    return bool(number) and rule.fullmatch(number or "") is not None


@dataclass(frozen=True)
class CallbackOptions:
    dial: OutboundDial  # the carrier trunk (setting callback_dial)
    numbers: re.Pattern[str]  # numbers that may be called back (callback_number_rule)
    hotline_number: str = "12345"
    recordings_dir: Path | None = None  # set: the call is recorded for its work order
    # where the seat's answered channel goes: asterisk-config/extensions.conf runs the
    # callback route there with the variables ring() sets
    context: str = "hotline-callback"


class CallbackRinger:
    def __init__(
        self,
        acd: Acd,
        ami: AmiClient,
        dispatcher: Dispatcher,
        dials: DialWatch,
        listeners: Listeners,
        options: CallbackOptions,
        schedule: CallbackSchedule,
    ) -> None:
        self.acd, self.ami, self.dispatcher = acd, ami, dispatcher
        self.dials, self.listeners, self.options = dials, listeners, options
        self.schedule = schedule  # the outbound dialer's record: lines, retries, failed list

    async def ring(self, a: Assignment) -> None:
        """Ring the seat chosen for callback ``a.call_id`` (runs as a task per decision)."""
        who = f"callback {a.call_id} to {mask_number(a.caller)}"
        if not may_call_back(a.caller, self.options.numbers):
            log.warning("%s: not a number we call back; callback dropped", who)
            await self._release(a.call_id, who, drop=True)
            return
        ring_ms = max(2000, int((a.ring_until - datetime.now(UTC).timestamp()) * 1000) - 500)
        action = {
            "Action": "Originate",
            "Channel": f"PJSIP/{a.seat}",
            "Context": self.options.context,
            "Exten": "ring",
            "Priority": "1",
            "Variable": f"HOTLINE_CALLBACK={a.call_id},HOTLINE_CALLBACK_NUMBER={a.caller},"
            f"HOTLINE_CALLBACK_SKILL={a.skill}",
            "Timeout": str(ring_ms),
            "CallerID": f'"callback {a.caller}" <{a.caller}>',
            "Async": "true",
            "ChannelId": f"cb-{uuid.uuid4().hex[:16]}",
        }
        log.info("%s: ringing seat %s first (%s ms)", who, a.seat, ring_ms)
        failed = False
        try:
            answer: Any = await self.ami.action(action)
            replies = answer if isinstance(answer, list) else [answer]
            failed = any(r.get("Response") == "Failure" for r in replies)
        except TimeoutError:
            return  # still ringing: the seat's answer runs the callback route, or RONA applies
        except (AmiActionError, AmiUnavailable):
            log.exception("%s: could not ring seat %s", who, a.seat)
            failed = True
        if failed:
            log.warning("%s: seat %s did not answer; back to the queue head", who, a.seat)
            try:
                await self.acd.requeue_head(a.call_id)
            except (RedisError, OSError, TimeoutError):
                log.exception("%s: could not requeue", who)
            self.dispatcher.kick()

    async def _release(
        self, call_id: str, who: str, *, drop: bool = False, unreached: bool = False
    ) -> None:
        release = self.acd.not_reached if unreached else self.acd.hangup
        if drop:
            release = self.acd.cancel
        try:
            released = await release(call_id)
            log.info("%s: %s after %.1f s", who, released.outcome, released.duration_s)
        except (RedisError, OSError, TimeoutError, AcdError):
            log.exception("%s: could not release the call in the ACD", who)
        self.dispatcher.kick()

    async def run(self, agi: AgiChannel) -> None:
        """The FastAGI ``callback`` route, on the seat's answered channel."""
        args = agi.call.args
        if len(args) < 3 or not may_call_back(args[1], self.options.numbers):
            log.error("callback route called with bad arguments %r", args)
            return
        call_id, number, skill = args[0], args[1], args[2]
        seat = agi.call.channel.removeprefix("PJSIP/").rsplit("-", 1)[0]
        who = f"callback {call_id} to {mask_number(number)} at seat {seat}"
        try:
            await self.acd.answered(call_id)
        except AcdError:
            log.warning("%s: the seat answered too late (call no longer offered)", who)
            return
        log.info("%s: seat answered, calling the citizen", who)
        dial, ring_s = self.options.dial.channel(number), self.schedule.options.ring_s
        ended = self.dials.expect(agi.call.uniqueid)
        connected: ConnectedCall | None = None
        unreached = False  # the citizen's leg ended NOT_REACHED, or the seat gave up first
        await self.schedule.dialing(call_id, number, skill)  # a line of the outbound dialer
        try:
            await agi.set_variable("CALLERID(num)", self.options.hotline_number)
            if self.options.recordings_dir is not None:  # intake's files, from the seat's side
                files = recording_files(self.options.recordings_dir, call_id, datetime.now(UTC))
                await agi.command(f"EXEC MixMonitor {mixmonitor_args(files, on_seat_channel=True)}")
            task = asyncio.ensure_future(
                agi.command(f"EXEC Dial {dial},{ring_s}", deadline_s=4 * 3600)
            )
            pending: list[asyncio.Future[Any]] = [task, ended]
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            end = ended.result() if ended.done() and not ended.cancelled() else None
            if end is not None and end.status == "ANSWER":
                connected = ConnectedCall(
                    call_id=call_id,
                    caller_channel=end.dest_channel,
                    caller_number=number,
                    seat=seat,
                    seat_channel=agi.call.channel,
                    skill=skill,
                    connected_at=datetime.now(UTC),
                )
                log.info("%s: citizen answered, connected", who)
                await self.schedule.ended(call_id, number, "ANSWER")
                await self.listeners.connected(connected)
            await task
            if connected is None:
                # Dial's AGI reply may come before AMI's DialEnd: Asterisk's own DIALSTATUS
                status = end.status if end is not None else await agi.get_variable("DIALSTATUS")
                if status == "ANSWER":  # DialEnd not seen in time; the conversation happened
                    log.info("%s: citizen answered (DialEnd not seen)", who)
                else:
                    log.warning("%s: the citizen did not answer (%s)", who, status or "?")
                unreached = status in NOT_REACHED
                await self.schedule.ended(call_id, number, status or "FAILED")
        except CallerHungUp:
            log.info("%s: seat hung up", who)
            if connected is None:  # the citizen was not reached: again later, no wrap-up
                unreached = True
                await self.schedule.ended(call_id, number, "CANCEL")
        finally:
            self.dials.forget(agi.call.uniqueid)
            await self._release(call_id, who, unreached=unreached)
        if connected is not None:
            ended_call = ConnectedCall(**{**connected.__dict__, "ended_at": datetime.now(UTC)})
            await self.listeners.finished(ended_call)
