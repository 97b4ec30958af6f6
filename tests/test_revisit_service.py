"""The revisit schedule in SQL (SQLite and PostgreSQL) and the FastAGI ``revisit`` route on
the scripted channel: scheduling, the manual list, atomic claims by two engines, calling hours
on a test clock, retries, attempts interrupted by a dead engine, the survey and its result
on the work order (resolved + very satisfied closes it; not resolved sends it to rework)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_channel import FakeChannel, agi_call, get_data, hang_up, stream
from sql_databases import KINDS, fresh_database
from sqlalchemy.ext.asyncio import AsyncEngine
from test_workorder_service import Clock

from hotline.database import create_schema, make_sessions
from ivr.menu import load_menu
from ivr.prompts import PromptLibrary
from ivr.tree import Prompt
from pbx.outbound import OutboundDial
from revisit.route import RevisitRoute
from revisit.rules import Outcome, RevisitPolicy
from revisit.service import RevisitService
from revisit.texts import DEFAULT_FILE, RevisitTexts
from workorders.dispatch import CATEGORIES, DispatchRules
from workorders.errors import InvalidInput, NotFound
from workorders.orders import Actor, NewWorkOrder, Role, Satisfaction
from workorders.service import WorkOrderService
from workorders.states import State
from workorders.timelimits import TimeLimits

OPERATOR = Actor("王敏", Role.OPERATOR)
YANTA = Actor("雁塔区值班员", Role.DEPARTMENT, "雁塔区人民政府")
CITIZEN_DIAL = OutboundDial("PJSIP/citizens/sip:{number}@127.0.0.1:5999")
NOISE = "我要投诉，小寨附近的工地晚上施工噪音太吵了，我家住在长安南路88号"
REPLY = "已责令施工方夜间停工，并安排城管队员每晚巡查，发现违规施工将依法处罚，请您继续监督。"


@pytest.fixture(params=KINDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with fresh_database(request.param, tmp_path) as engine:
        await create_schema(engine)
        yield engine


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # Monday 10:00 in Beijing


@pytest.fixture
def orders(engine: AsyncEngine, clock: Clock) -> WorkOrderService:
    return WorkOrderService(
        make_sessions(engine), DispatchRules.load(), TimeLimits.load(), clock=clock
    )


def revisit_service(orders: WorkOrderService, clock: Clock, **policy: Any) -> RevisitService:
    return RevisitService(
        orders.sessions,
        orders,
        RevisitPolicy(**{"at_once": True, **policy}),
        may_dial=lambda number: number.startswith("1"),
        clock=clock,
    )


@pytest.fixture
def revisits(orders: WorkOrderService, clock: Clock) -> RevisitService:
    return revisit_service(orders, clock)


async def reviewed(orders: WorkOrderService, phone: str = "13900001111", **fields: Any) -> str:
    new = NewWorkOrder(channel="phone", description=NOISE, caller_phone=phone, **fields)
    number = (await orders.create(new, OPERATOR)).number
    await orders.dispatch(number, OPERATOR)
    await orders.sign(number, YANTA)
    await orders.reply(number, YANTA, REPLY)
    await orders.review(number, OPERATOR, passed=True)
    return number


async def test_closed_orders_are_scheduled_or_listed_for_an_operator(
    orders: WorkOrderService, revisits: RevisitService, clock: Clock
) -> None:
    called = await reviewed(orders)
    confidential = await reviewed(orders, "13900002222", confidential=True)
    sms_only = await reviewed(orders, "13900003333", attributes={"voice": False})
    direct = (
        await orders.create(
            NewWorkOrder(channel="web", description="请问", caller_phone="13900004444"), OPERATOR
        )
    ).number
    await orders.answer(direct, OPERATOR, "办理时间为工作日")
    open_order = (
        await orders.create(NewWorkOrder(channel="web", description="x"), OPERATOR)
    ).number
    assert await revisits.schedule_closed() == 4
    assert await revisits.schedule_closed() == 0  # once per order and round
    by_number = {r["order_number"]: r for r in await revisits.listing()}
    assert open_order not in by_number
    assert by_number[called]["state"] == "due" and by_number[direct]["state"] == "due"
    assert by_number[called]["due_at"] == clock.now.isoformat()  # at once: inside hours
    assert by_number[confidential]["state"] == "manual"
    assert by_number[confidential]["manual_reason"] == "opted_out"
    assert by_number[sms_only]["manual_reason"] == "no_voice_number"
    assert by_number[called]["phone"] != "13900001111"  # masked
    # The default policy: the next working day at 09:00 (Tuesday 24 November, Beijing).
    later = revisit_service(orders, clock, at_once=False)
    await orders.update(called, OPERATOR, {"subject": "x"})  # no state change
    nextday = await reviewed(orders, "13900005555")
    await later.schedule_closed()
    assert (await later.show(nextday))["due_at"] == "2026-11-24T01:00:00+00:00"


async def test_two_engines_claim_each_revisit_once_within_the_limit(
    orders: WorkOrderService, clock: Clock
) -> None:
    a = revisit_service(orders, clock, concurrency=3)
    b = revisit_service(orders, clock, concurrency=3)
    numbers = [await reviewed(orders, f"1390000{i:04d}") for i in range(5)]
    await a.schedule_closed()
    first = await asyncio.gather(a.claim("engine-a"), b.claim("engine-b"))
    claimed = [c.order_number for batch in first for c in batch]
    assert len(claimed) == len(set(claimed)) == 3
    assert await a.claim("engine-a") == [] and await b.claim("engine-b") == []  # the limit
    figures = await a.figures()
    assert figures["by_state"]["dialing"] == len(claimed)
    assert figures["by_state"]["due"] == len(numbers) - len(claimed)


async def test_calling_hours_on_a_test_clock(
    orders: WorkOrderService, revisits: RevisitService, clock: Clock
) -> None:
    clock.now = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)  # 20:30 in Beijing
    number = await reviewed(orders)
    await revisits.schedule_closed()
    assert (await revisits.show(number))["due_at"] == "2026-11-24T01:00:00+00:00"
    assert await revisits.claim("me") == []
    assert await revisits.run_now() == 1  # due now, but calling hours still apply
    assert await revisits.claim("me") == []
    clock.now = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # Tuesday 09:00: the line opens
    assert [c.order_number for c in await revisits.claim("me")] == [number]


async def test_unanswered_calls_are_retried_then_listed(
    orders: WorkOrderService, revisits: RevisitService, clock: Clock
) -> None:
    number = await reviewed(orders)
    await revisits.schedule_closed()
    for attempt, outcome in enumerate((Outcome.BUSY, Outcome.NO_ANSWER), start=1):
        (call,) = await revisits.claim("me")
        assert await revisits.finish(call.channel_id, outcome)
        assert not await revisits.finish(call.channel_id, Outcome.FAILED)  # reported once
        view = await revisits.show(number)
        assert view["state"] == "due" and view["attempts"] == attempt
        assert await revisits.claim("me") == []  # two hours apart
        clock.now += timedelta(hours=2)
    (call,) = await revisits.claim("me")
    await revisits.finish(call.channel_id, Outcome.FAILED)
    view = await revisits.show(number)
    assert view["state"] == "manual" and view["manual_reason"] == "attempts_exhausted"
    assert [h["outcome"] for h in view["history"]] == ["busy", "no_answer", "failed"]
    clock.now += timedelta(hours=2)
    assert await revisits.claim("me") == []
    # An operator calls and records the result by hand.
    view = await revisits.record_by_hand(
        number, OPERATOR, resolved=True, satisfaction=Satisfaction.SATISFIED, note="电话回访"
    )
    assert view["state"] == "done" and view["result_by"] == "王敏"
    order = await orders.get(number)
    assert order.state is State.REVISITED and order.satisfaction == "satisfied"
    with pytest.raises(InvalidInput):
        await revisits.record_by_hand(
            number, OPERATOR, resolved=True, satisfaction=Satisfaction.SATISFIED, note=""
        )


async def test_an_attempt_of_a_dead_engine_is_interrupted_and_retried(
    orders: WorkOrderService, revisits: RevisitService, clock: Clock
) -> None:
    number = await reviewed(orders)
    await revisits.schedule_closed()
    (call,) = await revisits.claim("engine-a")
    assert await revisits.recover("engine-b", at_start=True) == 0  # not b's, lease running
    assert await revisits.recover("engine-a", at_start=True) == 1  # a restarted
    view = await revisits.show(number)
    assert view["state"] == "due" and view["attempts"] == 0
    assert view["history"][0]["outcome"] == "interrupted"
    clock.now += revisits.policy.retry_interval
    (again,) = await revisits.claim("engine-b")
    clock.now += revisits.policy.lease + timedelta(seconds=1)  # b died silently
    assert await revisits.recover("engine-a") == 1
    assert (await revisits.show(number))["state"] == "due"
    assert not await revisits.finish(again.channel_id, Outcome.BUSY)  # too late to count


# -- the FastAGI route on the scripted channel --------------------------------------------------


@pytest.fixture
def texts() -> RevisitTexts:
    menu = load_menu(DEFAULT_FILE.with_name("menu.toml"))
    return RevisitTexts.load(DEFAULT_FILE, languages=menu.languages, categories=CATEGORIES)


@pytest.fixture
def prompts(tmp_path: Path) -> PromptLibrary:
    menu = load_menu(DEFAULT_FILE.with_name("menu.toml"))
    return PromptLibrary(tmp_path / "prompts", menu.voices)


def ready(prompts: PromptLibrary, *wanted: Prompt) -> list[str]:
    """Stand-in sound files (the synthesis itself is tested in test_prompts.py)."""
    for prompt in wanted:
        wav = prompts.wav_for(prompt)
        wav.parent.mkdir(parents=True, exist_ok=True)
        wav.write_bytes(b"RIFF" + bytes(400))
    return [str(prompts.path_for(p)) for p in wanted]


async def answered_call(
    orders: WorkOrderService, revisits: RevisitService, texts: RevisitTexts,
    prompts: PromptLibrary, script: list[Any], language: str = "zh",
) -> tuple[str, FakeChannel]:  # fmt: skip
    number = await reviewed(orders)
    await revisits.schedule_closed()
    (call,) = await revisits.claim("me")
    order = await orders.get(number)
    summary = texts.summary(language, number, order.category, order.reply)
    ready(prompts, summary, *texts.all_fixed())
    steps = [stream([str(prompts.path_for(summary))]), *script]
    channel = FakeChannel(agi_call(call.channel_id, script="revisit"), steps)
    await RevisitRoute(revisits, texts, prompts).run(channel)
    return number, channel


def asks(texts: RevisitTexts, prompts: PromptLibrary, part: str, keys: str) -> Any:
    return get_data(keys, [str(prompts.path_for(texts.fixed(part, "zh")))])


def survey(texts: RevisitTexts, prompts: PromptLibrary, resolved: str, satisfied: str) -> list[Any]:
    """Both questions answered at once, then the thanks."""
    return [
        asks(texts, prompts, "resolved", resolved),
        asks(texts, prompts, "satisfaction", satisfied),
        stream([str(prompts.path_for(texts.fixed("thanks", "zh")))]),
    ]


async def test_resolved_and_very_satisfied_closes_the_order(
    orders: WorkOrderService, revisits: RevisitService, texts: RevisitTexts,
    prompts: PromptLibrary,
) -> None:  # fmt: skip
    script = [
        asks(texts, prompts, "resolved", ""),  # silence: asked again
        asks(texts, prompts, "resolved", "7"),  # a wrong key: asked again
        asks(texts, prompts, "resolved", "1"),
        asks(texts, prompts, "satisfaction", "1"),
        stream([str(prompts.path_for(texts.fixed("thanks", "zh")))]),
    ]
    number, channel = await answered_call(orders, revisits, texts, prompts, script)
    channel.check()
    order = await orders.get(number)
    assert order.state is State.REVISITED
    assert order.resolved is True and order.satisfaction == "very_satisfied"
    assert order.history[-1].actor == "revisit-call"
    view = await revisits.show(number)
    assert view["state"] == "done" and view["attempts"] == 1 and view["result_by"] == "call"
    assert view["history"][0]["answered"] and view["history"][0]["outcome"] == "completed"
    figures = await revisits.figures()
    assert figures["reach_rate"] == 1.0 and figures["resolved_rate"] == 1.0
    assert figures["satisfaction_rate"] == 1.0


async def test_not_resolved_goes_back_for_rework(
    orders: WorkOrderService, revisits: RevisitService, texts: RevisitTexts,
    prompts: PromptLibrary,
) -> None:  # fmt: skip
    script = survey(texts, prompts, "2", "2")
    number, channel = await answered_call(orders, revisits, texts, prompts, script)
    channel.check()
    order = await orders.get(number)
    assert order.state is State.DISPATCHED and order.rework_count == 1
    assert [h.action for h in order.history][-2:] == ["revisit", "rework"]
    assert (await revisits.show(number))["attention"] is True
    assert (await revisits.figures())["resolved_rate"] == 0.0


async def test_no_answer_to_the_survey_after_three_tries(
    orders: WorkOrderService, revisits: RevisitService, texts: RevisitTexts,
    prompts: PromptLibrary,
) -> None:  # fmt: skip
    script = [
        asks(texts, prompts, "resolved", "1"),
        asks(texts, prompts, "satisfaction", ""),
        asks(texts, prompts, "satisfaction", "#"),
        asks(texts, prompts, "satisfaction", "9"),
        stream([str(prompts.path_for(texts.fixed("no_answer", "zh")))]),
    ]
    number, channel = await answered_call(orders, revisits, texts, prompts, script)
    channel.check()
    assert (await orders.get(number)).state is State.REVIEWED  # nothing stored
    view = await revisits.show(number)
    assert view["state"] == "manual" and view["manual_reason"] == "no_survey"


async def test_hung_up_during_the_summary_is_retried(
    orders: WorkOrderService, revisits: RevisitService, texts: RevisitTexts,
    prompts: PromptLibrary,
) -> None:  # fmt: skip
    orders_clock = revisits.clock
    number, channel = await answered_call(orders, revisits, texts, prompts, [hang_up()])
    view = await revisits.show(number)
    assert view["state"] == "due" and view["history"][0]["outcome"] == "hung_up"
    assert view["due_at"] == (orders_clock() + timedelta(hours=2)).isoformat()
    # The channel's Hangup, read after the route ended it, changes nothing.
    channel_id = channel.call.uniqueid
    assert not await revisits.finish(channel_id, Outcome.NO_ANSWER, unanswered_only=True)


async def test_an_unknown_channel_is_ignored(
    revisits: RevisitService, texts: RevisitTexts, prompts: PromptLibrary
) -> None:
    channel = FakeChannel(agi_call("rv-0-unknown", script="revisit"), [])
    await RevisitRoute(revisits, texts, prompts).run(channel)
    channel.check()
    assert channel.done == []


def test_policy_is_frozen() -> None:
    assert replace(RevisitPolicy(), concurrency=1).concurrency == 1


async def test_the_revisits_command(
    orders: WorkOrderService,
    revisits: RevisitService,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from argparse import Namespace

    from revisit.cli import revisits_command

    def args(action: str, number: str = "", state: str | None = None) -> Namespace:
        return Namespace(action=action, number=number, state=state, json=False)

    clock.now = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # 21:00 in Beijing: closed
    number = await reviewed(orders)
    listed = await reviewed(orders, "13900002222", confidential=True)
    await revisits.schedule_closed()
    assert await revisits_command(revisits, args("list")) == 0
    out = capsys.readouterr().out
    assert f"{number}  due" in out and "(opted_out)" in out and "manual 1" in out
    assert await revisits_command(revisits, args("list", state="manual")) == 0
    out = capsys.readouterr().out
    assert listed in out and number not in out
    assert await revisits_command(revisits, args("run-now")) == 0
    assert "1 due revisit(s) due now" in capsys.readouterr().out
    assert (await revisits.show(number))["due_at"] == clock.now.isoformat()
    assert await revisits_command(revisits, args("show", number)) == 0
    assert "attempts: 0" in capsys.readouterr().out
    assert await revisits_command(revisits, args("show", "1")) == 1


async def test_dissatisfied_goes_back_for_rework(
    orders: WorkOrderService,
    revisits: RevisitService,
    texts: RevisitTexts,
    prompts: PromptLibrary,
) -> None:
    script = survey(texts, prompts, "1", "3")
    number, channel = await answered_call(orders, revisits, texts, prompts, script)
    channel.check()
    order = await orders.get(number)
    assert order.state is State.DISPATCHED and order.satisfaction == "dissatisfied"
    assert order.history[-1].note.startswith("dissatisfied revisit")
    assert (await revisits.figures())["satisfaction_rate"] == 0.0
    # Reworked, replied and reviewed again: a second round of revisit.
    await orders.sign(number, YANTA)
    await orders.reply(number, YANTA, "已再次处理")
    await orders.review(number, OPERATOR, passed=True)
    assert await revisits.schedule_closed() == 1
    view = await revisits.show(number)
    assert view["round"] == 1 and view["state"] == "due"


async def test_the_citizen_hears_the_language_of_their_call(
    orders: WorkOrderService,
    revisits: RevisitService,
    texts: RevisitTexts,
    prompts: PromptLibrary,
) -> None:
    from calls.models import CallRecord

    async with orders.sessions.begin() as session:
        session.add(CallRecord(uniqueid="1800000000.77", channel="PJSIP/citizens-1",
                               caller_number="13900001111", caller_raw="13900001111",
                               started_at=revisits.clock(), language="en"))  # fmt: skip
    number = await reviewed(orders, call_id="1800000000.77")
    await revisits.schedule_closed()
    (call,) = await revisits.claim("me")
    assert call.language == "en"
    order = await orders.get(number)
    summary = texts.summary("en", number, order.category, order.reply)
    ready(prompts, summary, *texts.all_fixed())
    assert "work order " + " ".join(number) in summary.text and "complaint" in summary.text

    def en(part: str, keys: str) -> Any:
        return get_data(keys, [str(prompts.path_for(texts.fixed(part, "en")))])

    channel = FakeChannel(
        agi_call(call.channel_id, script="revisit"),
        [
            stream([str(prompts.path_for(summary))]),
            en("resolved", "1"),
            en("satisfaction", "2"),
            stream([str(prompts.path_for(texts.fixed("thanks", "en")))]),
        ],
    )
    await RevisitRoute(revisits, texts, prompts).run(channel)
    channel.check()
    assert (await orders.get(number)).satisfaction == "satisfied"


class NoAmi:
    """The dialer must not place this call: any AMI action fails the test."""

    connected = True

    async def action(self, action: dict[str, str]) -> Any:
        raise AssertionError(f"AMI used: {action}")


async def test_old_orders_are_not_revisited_and_closed_ones_not_called(
    orders: WorkOrderService,
    revisits: RevisitService,
    clock: Clock,
    texts: RevisitTexts,
    prompts: PromptLibrary,
) -> None:
    from revisit.dialer import DialOptions, RevisitDialer

    old = await reviewed(orders, "13900007777")
    clock.now += timedelta(days=8)  # revisits switched on a week later: not that one
    assert await revisits.schedule_closed() == 0
    number = await reviewed(orders)
    assert await revisits.schedule_closed() == 1
    (call,) = await revisits.claim("me")
    await orders.archive(number, OPERATOR)  # closed by hand before the call went out
    dialer = RevisitDialer(revisits, NoAmi(), prompts, texts,  # type: ignore[arg-type]
                           DialOptions(dial=CITIZEN_DIAL), "me")  # fmt: skip
    await dialer.place(call)
    view = await revisits.show(number)
    assert view["state"] == "done" and view["result_by"] == "not needed: order archived"
    assert view["history"][0]["outcome"] == "interrupted" and view["attempts"] == 0
    with pytest.raises(NotFound):
        await revisits.show(old)


async def test_calls_switched_off_schedule_but_place_nothing(
    orders: WorkOrderService, clock: Clock
) -> None:
    quiet = revisit_service(orders, clock, calls=False)
    number = await reviewed(orders)
    assert await quiet.schedule_closed() == 1
    assert await quiet.claim("me") == []
    assert (await quiet.show(number))["state"] == "due"
    assert [c.order_number for c in await revisit_service(orders, clock).claim("me")] == [number]


async def test_callbacks_ringing_citizens_hold_lines_of_the_one_limit(
    orders: WorkOrderService, clock: Clock
) -> None:
    """One outbound dialer, one limit: queue callbacks whose citizen's phone rings (on the
    dialer's record) leave fewer lines to revisits."""
    from queueing.callback_retries import CallbackState, lines_in_use
    from queueing.tables import CallbackRow

    service = RevisitService(orders.sessions, orders, RevisitPolicy(at_once=True, concurrency=4),
                             may_dial=lambda n: True, clock=clock,
                             other_lines=lines_in_use)  # fmt: skip
    for i in range(4):
        await reviewed(orders, f"1390000{i:04d}")
    assert await service.schedule_closed() == 4
    async with orders.sessions.begin() as session:
        session.add_all(
            CallbackRow(call_id=f"cb-{i}", number="13900009999", skill="report", attempts=0,
                        state=CallbackState.DIALING.value, last_status="", owner="x")
            for i in range(3)
        )  # fmt: skip
    assert len(await service.claim("me")) == 1
    assert await service.claim("me") == []
