"""Callbacks the citizen does not answer (issue 9's second part): the callback route on the
scripted channel against the real test Redis, the engine's Lua and the outbound dialer's
record in SQL (SQLite and PostgreSQL). A callback not answered releases its seat at once and
is booked again 10 minutes later as a callback in its queue; after two retries it is listed
as failed for the supervisors. Two engines: one books it. While the citizen's phone rings the
callback holds one of the dialer's lines, which revisits then do not use."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import test_acd_routes as routes
from fake_channel import (
    FakeChannel,
    agi_call,
    command,
    get_variable,
    hang_up,
    set_variable,
)
from sql_databases import KINDS, fresh_database
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from test_acd_routes import CITIZEN, CITIZEN_DIAL, NUMBERS, NoAmi, Parts, booked_callback

from agents.states import SeatState
from hotline.database import create_schema, make_sessions
from pbx.ami import AmiClient
from queueing.callback import CallbackOptions, CallbackRinger, callback_number_rule
from queueing.callback_retries import (
    CallbackRetryOptions,
    CallbackSchedule,
    CallbackState,
    after_call,
    lines_in_use,
    retry_of,
)
from queueing.dialing import Listeners
from queueing.models import CallKind

parts = routes.parts  # the route tests' fixture: the ACD in the test Redis, seat 8001


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2027, 1, 15, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def __iadd__(self, seconds: float) -> Clock:
        self.now += timedelta(seconds=seconds)
        return self


@pytest.fixture(params=KINDS)
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine: AsyncEngine
    async with fresh_database(request.param, tmp_path) as engine:
        await create_schema(engine)
        yield make_sessions(engine)


def retries_of(
    parts: Parts, clock: Clock, sessions: async_sessionmaker[AsyncSession], owner: str = "a"
) -> CallbackSchedule:
    return CallbackSchedule(sessions, parts.acd, parts.dispatcher.kick, CallbackRetryOptions(),
                            f"engine-{owner}", clock=clock)  # fmt: skip


async def ring_unanswered(
    parts: Parts, retries: CallbackSchedule, call_id: str, tmp_path: Path, status: str,
    *, dial_end: bool = True,
) -> FakeChannel:  # fmt: skip
    """The seat answered callback ``call_id``; the citizen's phone ends with ``status``,
    told by AMI's DialEnd while Dial runs (``dial_end``), or only by Dial's reply (the event
    comes later): then the route reads DIALSTATUS."""
    if retry_of(call_id)[1] == 0:
        await booked_callback(parts, call_id, CITIZEN)
    seat = agi_call(f"{call_id}.9", channel="PJSIP/8001-0000000a", caller="8001",
                    script="callback", args=(call_id, CITIZEN, "report"))  # fmt: skip
    dial = CITIZEN_DIAL.channel(CITIZEN)
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
        retries,
    )  # fmt: skip
    await asyncio.wait_for(ringer.run(channel), 5)
    channel.check()
    return channel


async def test_an_unanswered_callback_is_retried_then_listed(
    parts: Parts, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    clock = Clock()
    retries = retries_of(parts, clock, sessions)
    await ring_unanswered(parts, retries, "1800000005.1", tmp_path, "NOANSWER")
    assert parts.seen.bridged == []
    assert await parts.acd.entry("1800000005.1") is None  # released at once
    # the citizen was not reached: the seat handled no call, so no wrap-up
    assert (await parts.acd.seat("8001")).state is SeatState.AVAILABLE
    assert await retries.book_due() == []  # ten minutes later, not now
    clock += 600
    assert await retries.book_due() == ["1800000005.1-r1"]
    assert await retries.book_due() == []  # booked once
    entry = await parts.acd.entry("1800000005.1-r1")
    assert entry is not None and entry["kind"] == CallKind.CALLBACK.value
    # The first retry rings a seat again; the citizen is busy this time.
    [turn] = await parts.acd.dispatch_once()
    assert (turn.call_id, turn.kind, turn.seat) == ("1800000005.1-r1", CallKind.CALLBACK, "8001")
    await ring_unanswered(parts, retries, "1800000005.1-r1", tmp_path, "BUSY")
    clock += 600
    assert await retries.book_due() == ["1800000005.1-r2"]
    assert (await parts.acd.seat("8001")).state is SeatState.AVAILABLE
    [turn] = await parts.acd.dispatch_once()
    await ring_unanswered(parts, retries, "1800000005.1-r2", tmp_path, "NOANSWER")
    clock += 600
    assert await retries.book_due() == []  # two retries: no third
    [failed] = await retries.failed()
    assert failed["call_id"] == "1800000005.1" and failed["attempts"] == 3
    assert failed["last_status"] == "NOANSWER" and failed["number"] != CITIZEN  # masked
    assert failed["skill"] == "report"


async def test_a_busy_citizen_is_retried_when_dials_reply_comes_before_dialend(
    parts: Parts, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Dial's AGI reply and AMI's DialEnd come on two sockets, in either order: a callback
    whose DialEnd is not in yet when Dial returns is still booked again (DIALSTATUS)."""
    clock = Clock()
    retries = retries_of(parts, clock, sessions)
    await ring_unanswered(parts, retries, "1800000007.1", tmp_path, "BUSY", dial_end=False)
    assert await parts.acd.entry("1800000007.1") is None  # released at once
    clock += 600
    assert await retries.book_due() == ["1800000007.1-r1"]


async def test_a_seat_hanging_up_before_the_citizen_answered_leaves_the_callback_due(
    parts: Parts, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    clock = Clock()
    retries = retries_of(parts, clock, sessions)
    await booked_callback(parts, "1800000009.1", CITIZEN)
    seat = agi_call("1800000009.9", channel="PJSIP/8001-0000000a", caller="8001",
                    script="callback", args=("1800000009.1", CITIZEN, "report"))  # fmt: skip
    channel = FakeChannel(seat, [hang_up()])  # the operator hung up at once
    ringer = CallbackRinger(
        parts.acd, cast(AmiClient, NoAmi()), parts.dispatcher, parts.dials,
        Listeners([parts.seen]),
        CallbackOptions(dial=CITIZEN_DIAL, numbers=callback_number_rule(NUMBERS)), retries,
    )  # fmt: skip
    await asyncio.wait_for(ringer.run(channel), 5)
    assert await parts.acd.entry("1800000009.1") is None  # the seat is released
    # no conversation took place: no wrap-up, and not counted as answered
    assert (await parts.acd.seat("8001")).state is SeatState.AVAILABLE
    clock += 600
    assert await retries.book_due() == ["1800000009.1-r1"]


async def test_two_engines_book_a_due_retry_once(
    parts: Parts, sessions: async_sessionmaker[AsyncSession]
) -> None:
    clock = Clock()
    one, other = retries_of(parts, clock, sessions, "a"), retries_of(parts, clock, sessions, "b")
    await one.dialing("1800000006.1", CITIZEN, "report")
    assert await one.ended("1800000006.1", CITIZEN, "BUSY") is CallbackState.DUE
    clock += 600
    booked: list[Any] = await asyncio.gather(one.book_due(), other.book_due())
    assert sorted(booked, key=len) == [[], ["1800000006.1-r1"]]
    assert retry_of("1800000006.1-r1") == ("1800000006.1", 1)
    assert retry_of("1800000006.1") == ("1800000006.1", 0)


async def test_a_ringing_callback_holds_a_dialer_line_and_a_dead_engines_leg_is_retried(
    parts: Parts, sessions: async_sessionmaker[AsyncSession]
) -> None:
    clock = Clock()
    retries = retries_of(parts, clock, sessions)
    await retries.dialing("1800000008.1", CITIZEN, "report")
    async with sessions() as session:
        assert await lines_in_use(session) == 1  # counted in the revisits' limit
    assert await retries.book_due() == []
    clock += 121  # its engine died while the phone rang: due again, not lost
    assert await retries.book_due() == ["1800000008.1-r1"]
    async with sessions() as session:
        assert await lines_in_use(session) == 0
    await retries.dialing("1800000008.1-r1", CITIZEN, "report")
    assert await retries.ended("1800000008.1-r1", CITIZEN, "ANSWER") is CallbackState.DONE
    assert await retries.failed() == []


def test_callback_rules() -> None:
    options = CallbackRetryOptions()  # twice again, ten minutes apart
    assert (options.retries, options.interval_s) == (2, 600.0)
    assert after_call(1, "ANSWER", options) is CallbackState.DONE
    assert after_call(1, "BUSY", options) is CallbackState.DUE
    assert after_call(3, "NOANSWER", options) is CallbackState.FAILED
    assert after_call(1, "NOANSWER", CallbackRetryOptions(retries=0)) is CallbackState.FAILED
