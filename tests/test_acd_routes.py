"""The ACD's FastAGI routes driven by a scripted caller, no Asterisk: the queue wait
(:class:`queueing.connector.QueueRoute`), the callback (:meth:`CallbackRinger.run`) and the
seats' feature codes (:class:`agents.feature_codes.FeatureCodes`).

The routes run on :class:`fake_channel.FakeChannel` against the real test Redis
(``conftest.TEST_REDIS_URL``, a key prefix of each test's own) and the engine's Lua, with
the engine's :class:`Dispatcher`; the test plays the dispatcher's loop (``step()``) and
Asterisk's ``DialEnd`` events (:meth:`DialWatch.confirm`) where the engine's loops would.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from conftest import TEST_REDIS_URL, eventually
from fake_channel import (
    WAIT,
    FakeChannel,
    Step,
    agi_call,
    command,
    get_data,
    get_variable,
    hang_up,
    polls,
    set_variable,
    stream,
    wake,
)
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from agents.feature_codes import FeatureCodes
from agents.seats import parse_seats
from agents.states import NO_ANSWER_REASON, SeatState
from calls.lifecycle import ConnectedCall
from hotline.database import create_schema, make_sessions
from ivr.tree import Prompt
from pbx.agi_channel import AgiCall
from pbx.ami import AmiClient
from pbx.outbound import OutboundDial
from queueing.acd import Acd
from queueing.announce import Announcer
from queueing.callback import CallbackOptions, CallbackRinger, callback_number_rule
from queueing.callback_retries import CallbackRetryOptions, CallbackSchedule, lines_in_use
from queueing.connector import QueueOptions, QueueRoute
from queueing.dialing import DialEnd, DialWatch, Listeners
from queueing.dispatcher import Dispatcher
from queueing.models import CallKind, Entered
from queueing.tables import CallbackRow

SEATS = """
languages = ["zh", "en"]
[defaults]
wrap_up_s = 30
ring_timeout_s = 15
[skills.report]
[[seat]]
extension = "8001"
pin = "1111"
languages = ["zh", "en"]  # an English caller can reach it
skills = { report = 1 }
"""
NUMBERS = r"1[3-9]\d{9}"  # callback_number_pattern: mobile numbers only
CITIZEN = "13900001111"
CITIZEN_DIAL = OutboundDial("PJSIP/citizens/sip:{number}@127.0.0.1:5999")
MUSIC_ON = "SET MUSIC ON default"


class Seen:
    """The engine's call listeners: what was bridged and when it ended."""

    def __init__(self) -> None:
        self.bridged: list[ConnectedCall] = []
        self.ended: list[ConnectedCall] = []

    async def connected(self, call: ConnectedCall) -> None:
        self.bridged.append(call)

    async def finished(self, call: ConnectedCall) -> None:
        self.ended.append(call)


class PromptNames:
    async def speak(self, prompt: Prompt) -> Path:
        return Path(f"{prompt.id}.{prompt.language}")


class NoAmi:
    async def action(self, *_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the route under test must not use AMI")


@dataclass
class Parts:
    acd: Acd
    dispatcher: Dispatcher
    dials: DialWatch
    seen: Seen
    stopped: list[str] = field(default_factory=list)  # channels whose announcement was cut

    def queue_route(self, **options: Any) -> QueueRoute:
        async def stop_playback(channel: str, _who: str) -> None:
            self.stopped.append(channel)

        defaults: dict[str, Any] = {"announce_interval_s": 3600.0,
                                    "callback_numbers": callback_number_rule(NUMBERS)}  # fmt: skip
        return QueueRoute(
            self.acd, self.dispatcher, self.dials, Announcer(PromptNames()),
            Listeners([self.seen]), QueueOptions(**{**defaults, **options}), stop_playback,
            wake,
        )  # fmt: skip

    def callback_route(self, recordings: Path, schedule: CallbackSchedule) -> CallbackRinger:
        return CallbackRinger(
            self.acd, cast(AmiClient, NoAmi()), self.dispatcher, self.dials,
            Listeners([self.seen]),
            CallbackOptions(dial=CITIZEN_DIAL, numbers=callback_number_rule(NUMBERS),
                            hotline_number="12345", recordings_dir=recordings),
            schedule,
        )  # fmt: skip

    def answers(self, call: AgiCall, channel: str, status: str = "ANSWER") -> Callable[[], None]:
        """Asterisk's DialEnd for the channel ``call`` dials (``channel`` answered or not)."""

        def dial_end() -> None:
            assert self.dials.confirm(DialEnd(call.uniqueid, channel, channel + ".id", status))

        return dial_end


@pytest.fixture
async def parts() -> AsyncIterator[Parts]:
    redis = Redis.from_url(TEST_REDIS_URL, socket_timeout=5)
    prefix = f"test-routes-{uuid.uuid4().hex[:10]}:"
    try:
        acd = Acd(redis, parse_seats(SEATS), prefix=prefix)
        await acd.register_seats()
        yield Parts(acd, Dispatcher(acd), DialWatch(), Seen())
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


@pytest.fixture
async def schedule(parts: Parts, tmp_path: Path) -> AsyncIterator[CallbackSchedule]:
    """The outbound dialer's record of callbacks, in a SQLite file."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'callbacks.db'}")
    await create_schema(engine)
    yield CallbackSchedule(make_sessions(engine), parts.acd, parts.dispatcher.kick,
                           CallbackRetryOptions(), "engine-a")  # fmt: skip
    await engine.dispose()


def caller(uniqueid: str, number: str = CITIZEN) -> AgiCall:
    return agi_call(uniqueid, caller=number, dialed="report", script="queue")


def waiting_with_music(language: str) -> list[Step]:
    """The caller joins the queue, hears music and is polled for a key."""
    return [
        get_variable("HOTLINE_LANGUAGE", language),
        command(MUSIC_ON),
        command(WAIT, repeat=True, delay_s=0.05),
    ]


def dial_seat(seat: str) -> re.Pattern[str]:
    return re.compile(rf"EXEC Dial PJSIP/{seat},\d+,mt")  # t: the seat may transfer


async def test_a_free_seat_is_dialled_at_once_and_the_call_completes(parts: Parts) -> None:
    await parts.acd.login("8001", "1111")
    call = agi_call(
        "1800000001.1", caller=CITIZEN, dialed="report", script="queue", args=("zh",)
    )  # the dialplan passes the language: no AGI turn for it
    channel = FakeChannel(call, [
        command(dial_seat("8001"), then=parts.answers(call, "PJSIP/8001-00000002"),
                delay_s=0.2),  # the conversation
        set_variable("HOTLINE_QUEUE_RESULT", "completed"),
    ])  # fmt: skip
    await parts.queue_route().run(channel)
    channel.check()
    [bridged] = parts.seen.bridged
    assert (bridged.seat, bridged.caller_number, bridged.seat_channel) == (
        "8001", CITIZEN, "PJSIP/8001-00000002",
    )  # fmt: skip
    assert [c.ended_at is not None for c in parts.seen.ended] == [True]
    assert (await parts.acd.seat("8001")).state is SeatState.WRAP_UP
    assert await parts.acd.entry(call.uniqueid) is None


async def test_a_routing_step_between_enqueue_and_wait_keeps_the_decision(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's routing loop may decide for a caller as soon as the Lua enqueued it,
    before the caller's session waits: the decision is kept for that session, not cancelled
    as if the caller were held nowhere."""
    await parts.acd.login("8001", "1111")
    enter = parts.acd.enter

    async def enter_then_route(*args: Any, **kwargs: Any) -> Entered:
        entered = await enter(*args, **kwargs, limit=0)  # its own step decides nothing here
        assert await parts.dispatcher.step() == 1  # the loop's tick lands here
        return entered

    monkeypatch.setattr(parts.acd, "enter", enter_then_route)
    call = caller("1800000001.9")
    channel = FakeChannel(call, [
        get_variable("HOTLINE_LANGUAGE", "zh"),
        command(dial_seat("8001"), then=parts.answers(call, "PJSIP/8001-00000009")),
        set_variable("HOTLINE_QUEUE_RESULT", "completed"),
    ])  # fmt: skip
    await asyncio.wait_for(parts.queue_route().run(channel), 5)
    channel.check()
    assert [c.seat for c in parts.seen.bridged] == ["8001"]


async def test_a_caller_waits_with_music_until_a_seat_logs_in(parts: Parts) -> None:
    call = caller("1800000001.2")
    channel = FakeChannel(call, [
        *waiting_with_music("en"),
        command("SET MUSIC OFF"),
        command(dial_seat("8001"), then=parts.answers(call, "PJSIP/8001-00000003")),
        set_variable("HOTLINE_QUEUE_RESULT", "completed"),
    ])  # fmt: skip
    running = asyncio.create_task(parts.queue_route().run(channel))

    async def waiting() -> bool:
        return len(channel.operations("command")) >= 4  # music and a few polls

    await eventually(waiting, 5, "the caller to wait")
    assert await parts.acd.position(call.uniqueid) == 1
    assert (await parts.acd.entry(call.uniqueid) or {}).get("lang") == "en"
    await parts.acd.login("8001", "1111")
    await parts.dispatcher.step()  # what the engine's routing loop does on its next tick
    await asyncio.wait_for(running, 5)
    channel.check()
    assert [c.seat for c in parts.seen.bridged] == ["8001"]


async def test_a_waiting_caller_rings_the_moment_a_seat_is_chosen(parts: Parts) -> None:
    """The caller waits in one long WAIT FOR DIGIT (no polling): the routing step that picks
    a seat ends it at once (the engine's wake digit), and the seat is dialled."""
    call = caller("1800000001.8")
    channel = FakeChannel(call, [
        get_variable("HOTLINE_LANGUAGE", "zh"),
        command(MUSIC_ON),
        command(WAIT, repeat=True, delay_s=60),  # would hold the caller a minute
        command("SET MUSIC OFF"),
        command(dial_seat("8001"), then=parts.answers(call, "PJSIP/8001-00000009"),
                delay_s=0.1),
        set_variable("HOTLINE_QUEUE_RESULT", "completed"),
    ])  # fmt: skip
    running = asyncio.create_task(parts.queue_route().run(channel))
    await eventually(lambda: _waits(channel), 5, "the caller to wait")
    await parts.acd.login("8001", "1111")
    await parts.dispatcher.step()
    await asyncio.wait_for(running, 5)
    channel.check()
    assert channel.woken == ["D"] and len(channel.operations("command")) == 4
    assert [c.seat for c in parts.seen.bridged] == ["8001"]


async def _waits(channel: FakeChannel) -> bool:
    return any(op.startswith("WAIT FOR DIGIT") for op in channel.operations("command"))


async def test_a_seat_that_does_not_answer_is_paused_and_the_caller_keeps_the_head(
    parts: Parts,
) -> None:
    await parts.acd.login("8001", "1111")
    call = caller("1800000001.3")
    channel = FakeChannel(call, [
        get_variable("HOTLINE_LANGUAGE", "zh"),
        command(dial_seat("8001"), then=parts.answers(call, "PJSIP/8001-00000004", "NOANSWER")),
        get_variable("DIALSTATUS", "NOANSWER"),
        command(MUSIC_ON),
        *polls(5, delay_s=0.05),
        hang_up(),
    ])  # fmt: skip
    route = parts.queue_route()
    running = asyncio.create_task(route.run(channel))

    async def requeued() -> bool:
        return len(channel.operations("command")) >= 4

    await eventually(requeued, 5, "the caller to be queued again")
    assert await parts.acd.position(call.uniqueid) == 1
    seat = await parts.acd.seat("8001")
    assert (seat.state, seat.reason) == (SeatState.PAUSED, NO_ANSWER_REASON)
    await asyncio.wait_for(running, 5)
    channel.check()
    assert parts.seen.bridged == [] and await parts.acd.entry(call.uniqueid) is None


async def test_a_caller_who_presses_1_at_the_offer_books_a_callback(parts: Parts) -> None:
    call = caller("1800000001.4")
    channel = FakeChannel(call, [
        *waiting_with_music("zh"),
        command("SET MUSIC OFF"),
        command('CONTROL STREAM FILE "acd-callback-offer.zh" "1"', ("49", "")),  # 1 pressed
        command(MUSIC_ON),
        command("SET MUSIC OFF"),
        command('STREAM FILE "acd-callback-booked.zh" ""'),
        set_variable("HOTLINE_QUEUE_RESULT", "callback"),
    ])  # fmt: skip
    await asyncio.wait_for(parts.queue_route(callback_after_s=0.3).run(channel), 5)
    channel.check()
    entry = await parts.acd.entry(call.uniqueid) or {}
    assert (entry.get("kind"), entry.get("caller"), entry.get("state")) == (
        "callback", CITIZEN, "waiting",
    )  # fmt: skip
    await parts.acd.login("8001", "1111")
    [turn] = await parts.acd.dispatch_once()  # its turn: a seat is rung first (AMI Originate)
    assert (turn.kind, turn.caller, turn.seat) == (CallKind.CALLBACK, CITIZEN, "8001")


@pytest.mark.parametrize("number", ["01062345678", "8001", ""])
async def test_a_number_the_pattern_refuses_is_never_offered_a_callback(
    parts: Parts, number: str
) -> None:
    call = caller("1800000001.5", number)
    channel = FakeChannel(call, [
        get_variable("HOTLINE_LANGUAGE", "zh"),
        command(MUSIC_ON),
        *polls(12, delay_s=0.05),  # twice the time after which a callback is offered
        hang_up(),
    ])  # fmt: skip
    await asyncio.wait_for(parts.queue_route(callback_after_s=0.3).run(channel), 5)
    channel.check()
    assert await parts.acd.entry(call.uniqueid) is None  # abandoned, nothing kept


async def booked_callback(parts: Parts, call_id: str, number: str) -> None:
    """A caller who booked a callback, whose turn has come: seat 8001 rings for it."""
    await parts.acd.enqueue(call_id, "report", caller=number)
    await parts.acd.to_callback(call_id, number)
    await parts.acd.login("8001", "1111")
    [turn] = await parts.acd.dispatch_once()
    assert (turn.call_id, turn.kind, turn.seat) == (call_id, CallKind.CALLBACK, "8001")


async def test_the_callback_route_dials_the_citizens_number_from_the_seat(
    parts: Parts, schedule: CallbackSchedule, tmp_path: Path
) -> None:
    await booked_callback(parts, "1800000002.1", CITIZEN)
    seat = agi_call("1800000002.9", channel="PJSIP/8001-0000000a", caller="8001",
                    script="callback", args=("1800000002.1", CITIZEN, "report"))  # fmt: skip
    citizen = "PJSIP/citizens-0000000b"
    dial = CITIZEN_DIAL.channel(CITIZEN)
    channel = FakeChannel(seat, [
        set_variable("CALLERID(num)", "12345"),  # the citizen sees the hotline's number
        command(re.compile(r"EXEC MixMonitor .*/1800000002\.1-mix\.wav,b.*")),
        command(re.compile(rf"EXEC Dial {re.escape(dial)},\d+"),
                then=parts.answers(seat, citizen), delay_s=0.2),
    ])  # fmt: skip
    await asyncio.wait_for(parts.callback_route(tmp_path, schedule).run(channel), 5)
    channel.check()
    assert channel.operations("command")[-1].startswith(f"EXEC Dial {dial},")
    async with schedule.sessions() as session:  # on the outbound dialer's record: answered
        assert await session.scalar(select(CallbackRow.state)) == "done"
        assert await lines_in_use(session) == 0
    [bridged] = parts.seen.bridged
    assert (bridged.call_id, bridged.caller_number, bridged.caller_channel) == (
        "1800000002.1", CITIZEN, citizen,
    )  # fmt: skip
    assert (bridged.seat, bridged.seat_channel) == ("8001", "PJSIP/8001-0000000a")
    assert [c.ended_at is not None for c in parts.seen.ended] == [True]
    assert (await parts.acd.seat("8001")).state is SeatState.WRAP_UP
    assert await parts.acd.entry("1800000002.1") is None


@pytest.mark.parametrize(
    "number", ["01062345678", "+8613900001111", "13900001111&PJSIP/evil", "1390000111", ""]
)
async def test_the_callback_route_dials_no_number_the_pattern_refuses(
    parts: Parts, schedule: CallbackSchedule, tmp_path: Path, number: str
) -> None:
    await booked_callback(parts, "1800000003.1", CITIZEN)
    seat = agi_call("1800000003.9", channel="PJSIP/8001-0000000c", caller="8001",
                    script="callback", args=("1800000003.1", number, "report"))  # fmt: skip
    channel = FakeChannel(seat, [])  # any AGI command at all fails the test
    await asyncio.wait_for(parts.callback_route(tmp_path, schedule).run(channel), 5)
    channel.check()
    assert channel.done == [] and parts.seen.bridged == []
    assert (await parts.acd.seat("8001")).state is SeatState.RINGING  # not answered for it


def feature_code(args: tuple[str, ...]) -> AgiCall:
    return agi_call("1800000004.1", channel="PJSIP/8001-0000000d", caller="8001",
                    dialed="*21", script="seat", args=args)  # fmt: skip


@pytest.mark.parametrize(
    ("pin", "said", "state"),
    [
        ("1111", "seat-login.zh", SeatState.AVAILABLE),
        ("1357", "seat-refused.zh", SeatState.LOGGED_OUT),  # a wrong PIN
    ],
)
async def test_a_seat_logs_in_with_its_pin_keyed_after_star_21(
    parts: Parts, pin: str, said: str, state: SeatState
) -> None:
    channel = FakeChannel(feature_code(("login",)), [
        command("ANSWER"),
        get_data(pin, ["seat-pin.zh"]),
        stream([said]),
    ])  # fmt: skip
    await asyncio.wait_for(FeatureCodes(parts.acd, Announcer(PromptNames())).run(channel), 5)
    channel.check()
    assert (await parts.acd.seat("8001")).state is state


async def test_star_23_with_a_reason_pauses_the_seat(parts: Parts) -> None:
    await parts.acd.login("8001", "1111")
    channel = FakeChannel(feature_code(("pause", "2")), [
        command("ANSWER"),
        stream(["seat-pause.zh"]),
    ])  # fmt: skip
    await asyncio.wait_for(FeatureCodes(parts.acd, Announcer(PromptNames())).run(channel), 5)
    channel.check()
    seat = await parts.acd.seat("8001")
    assert (seat.state, seat.reason) == (SeatState.PAUSED, "lunch")
