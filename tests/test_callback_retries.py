"""Callbacks the citizen does not answer (issue 9's second part): the callback route on the
scripted channel against the real test Redis and the engine's Lua. A callback not answered
releases its seat at once and is booked again 10 minutes later as a callback in its queue;
after two retries it is listed as failed for the supervisors. Two engines: one books it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, cast

import test_acd_routes as routes
from fake_channel import FakeChannel, agi_call, command, get_variable, set_variable
from test_acd_routes import CITIZEN, CITIZEN_DIAL, NUMBERS, NoAmi, Parts, booked_callback

from agents.states import SeatState
from pbx.ami import AmiClient
from queueing.callback import CallbackOptions, CallbackRinger, callback_number_rule
from queueing.callback_retries import CallbackRetries, CallbackRetryOptions, retry_of
from queueing.dialing import Listeners
from queueing.models import CallKind

parts = routes.parts  # the route tests' fixture: the ACD in the test Redis, seat 8001


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def retries_of(parts: Parts, clock: Clock) -> CallbackRetries:
    return CallbackRetries(parts.acd.redis, parts.acd.prefix, parts.acd, parts.dispatcher.kick,
                           CallbackRetryOptions(), clock=clock)  # fmt: skip


async def ring_unanswered(
    parts: Parts, retries: CallbackRetries, call_id: str, tmp_path: Path, status: str,
    *, dial_end: bool = True,
) -> FakeChannel:  # fmt: skip
    """The seat answered callback ``call_id``; the citizen's phone ends with ``status``,
    told by AMI's DialEnd while Dial runs (``dial_end``), or only by Dial's reply (the event
    comes later): then the route reads DIALSTATUS."""
    if retry_of(call_id)[1] == 0:
        await booked_callback(parts, call_id, CITIZEN)
    seat = agi_call(f"{call_id}.9", channel="PJSIP/8001-0000000a", caller="8001",
                    script="callback", args=(call_id, CITIZEN, "report"))  # fmt: skip
    dial = CITIZEN_DIAL.format(number=CITIZEN)
    event = parts.answers(seat, "PJSIP/citizens-0000000b", status) if dial_end else None
    channel = FakeChannel(seat, [
        set_variable("CALLERID(num)", "12345"),
        command(re.compile(r"EXEC MixMonitor .*")),
        command(re.compile(rf"EXEC Dial {re.escape(dial)},\d+"), then=event, delay_s=0.2),
        *([] if dial_end else [get_variable("DIALSTATUS", status)]),
    ])  # fmt: skip
    ringer = CallbackRinger(
        parts.acd, cast(AmiClient, NoAmi()), parts.dispatcher, parts.dials,
        Listeners([parts.seen]),
        CallbackOptions(dial=CITIZEN_DIAL, numbers=callback_number_rule(NUMBERS),
                        recordings_dir=tmp_path),
        not_answered=retries.not_answered,
    )  # fmt: skip
    await asyncio.wait_for(ringer.run(channel), 5)
    channel.check()
    return channel


async def test_an_unanswered_callback_is_retried_then_listed(parts: Parts, tmp_path: Path) -> None:
    clock = Clock()
    retries = retries_of(parts, clock)
    await ring_unanswered(parts, retries, "1800000005.1", tmp_path, "NOANSWER")
    assert parts.seen.bridged == []
    assert await parts.acd.entry("1800000005.1") is None  # released at once
    assert (await parts.acd.seat("8001")).state is not SeatState.ON_CALL
    assert await retries.book_due() == []  # ten minutes later, not now
    clock.now += 600
    assert await retries.book_due() == ["1800000005.1-r1"]
    assert await retries.book_due() == []  # booked once
    entry = await parts.acd.entry("1800000005.1-r1")
    assert entry is not None and entry["kind"] == CallKind.CALLBACK.value
    # The first retry rings a seat again; the citizen is busy this time.
    await parts.acd.end_wrap_up("8001")
    [turn] = await parts.acd.dispatch_once()
    assert (turn.call_id, turn.kind, turn.seat) == ("1800000005.1-r1", CallKind.CALLBACK, "8001")
    await ring_unanswered(parts, retries, "1800000005.1-r1", tmp_path, "BUSY")
    clock.now += 600
    assert await retries.book_due() == ["1800000005.1-r2"]
    await parts.acd.end_wrap_up("8001")
    [turn] = await parts.acd.dispatch_once()
    await ring_unanswered(parts, retries, "1800000005.1-r2", tmp_path, "NOANSWER")
    clock.now += 600
    assert await retries.book_due() == []  # two retries: no third
    [failed] = await retries.failed()
    assert failed["call_id"] == "1800000005.1" and failed["attempts"] == 3
    assert failed["last_status"] == "NOANSWER" and failed["number"] != CITIZEN  # masked
    assert failed["skill"] == "report"


async def test_a_busy_citizen_is_retried_when_dials_reply_comes_before_dialend(
    parts: Parts, tmp_path: Path
) -> None:
    """Dial's AGI reply and AMI's DialEnd come on two sockets, in either order: a callback
    whose DialEnd is not in yet when Dial returns is still booked again (DIALSTATUS)."""
    clock = Clock()
    retries = retries_of(parts, clock)
    await ring_unanswered(parts, retries, "1800000007.1", tmp_path, "BUSY", dial_end=False)
    assert await parts.acd.entry("1800000007.1") is None  # released at once
    clock.now += 600
    assert await retries.book_due() == ["1800000007.1-r1"]


async def test_two_engines_book_a_due_retry_once(parts: Parts) -> None:
    clock = Clock()
    one, other = retries_of(parts, clock), retries_of(parts, clock)
    await one.not_answered("1800000006.1", CITIZEN, "report", "BUSY")
    clock.now += 600
    booked: list[Any] = await asyncio.gather(one.book_due(), other.book_due())
    assert sorted(booked, key=len) == [[], ["1800000006.1-r1"]]
    assert retry_of("1800000006.1-r1") == ("1800000006.1", 1)
    assert retry_of("1800000006.1") == ("1800000006.1", 0)
