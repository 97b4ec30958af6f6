"""The IVR route (:class:`ivr.session.IvrSession`) driven by a scripted caller, no Asterisk.

Each test scripts one call on :class:`fake_channel.FakeChannel`: the prompts the route must
play (``<prompt id>.<language>``, the test's own menu below, so that the shipped texts can
change), the keys the caller presses, the variables the route hands back to the dialplan.
The call record goes to a real SQLite database through the engine's :class:`CallStore`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fake_channel import FakeChannel, agi_call, get_data, hang_up, set_variable, stream
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from calls.store import CallStore
from hotline.database import create_schema, make_sessions
from ivr.menu import Menu, parse_menu
from ivr.session import IvrSession
from ivr.walk import Prompt

MENU = """
[menu]
start = "language"
main = "main"
intro = ["welcome"]
invalid_prompt = "invalid"
transfer_prompt = "transfer"
languages = ["zh", "en"]
default_language = "zh"
timeout_s = 3
max_tries = 3
operator_route = "queue:operator"

[voices]
zh = "cmn"
en = "en"

[prompts.welcome]
zh = "欢迎。"
en = "Welcome."
[prompts.invalid]
zh = "输入有误。"
en = "Not a valid choice."
[prompts.transfer]
zh = "正在转接。"
en = "Connecting you."
[prompts.order-unknown]
zh = "未查询到该工单。"
en = "No such work order."

[nodes.language]
zh = "普通话请按1。"
en = "For English, press 2."
all_languages = true
on_no_input = "main"
[[nodes.language.options]]
key = "1"
language = "zh"
goto = "main"
[[nodes.language.options]]
key = "2"
language = "en"
goto = "main"

[nodes.main]
zh = "投诉按1，咨询按2，查询工单按3。"
en = "Complaints 1, questions 2, work orders 3."
[[nodes.main.options]]
key = "1"
route = "queue:report"
[[nodes.main.options]]
key = "2"
goto = "questions"
[[nodes.main.options]]
key = "3"
goto = "workorder"

[nodes.questions]
zh = "政策咨询按1。"
en = "Policy questions 1."
[[nodes.questions.options]]
key = "1"
route = "queue:consultation"

[nodes.workorder]
zh = "请输入工单编号，以井号键结束。"
en = "Enter the work order number, then hash."
route = "action:workorder-status"
max_digits = 20
terminator = "#"
"""

START = ["welcome.zh", "language.zh", "language.en"]


class PromptNames:
    """Prompt files named ``<id>.<language>``; spoken statuses are kept for the test."""

    def __init__(self) -> None:
        self.spoken: list[Prompt] = []

    def path_for(self, prompt: Prompt) -> Path:
        return Path(f"{prompt.id}.{prompt.language}")

    async def speak(self, prompt: Prompt) -> Path:
        self.spoken.append(prompt)
        return Path(f"spoken-{prompt.id}.{prompt.language}")


@pytest.fixture
def menu() -> Menu:
    return parse_menu(MENU, "test-menu")


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    await create_schema(engine)
    yield make_sessions(engine)
    await engine.dispose()


@pytest.fixture
def store(sessions: async_sessionmaker[AsyncSession]) -> CallStore:
    return CallStore(sessions)


async def run_call(
    menu: Menu, store: CallStore, script: list[Any], *, orders: dict[str, str] | None = None
) -> tuple[dict[str, Any], PromptNames]:
    """Run the engine's IVR route on one scripted call; its call record and prompts."""

    async def lookup(number: str, language: str) -> str | None:
        return (orders or {}).get(number)

    prompts = PromptNames()
    channel = FakeChannel(agi_call("1800000000.7"), script)
    await IvrSession(menu, prompts, store, lookup).run(channel)
    channel.check()
    record = await store.get("1800000000.7")
    assert record is not None
    return record, prompts


def leaves_to(route: str, language: str) -> list[Any]:
    kind, name = route.split(":")
    return [
        set_variable("HOTLINE_ROUTE_KIND", kind),
        set_variable("HOTLINE_ROUTE_NAME", name),
        set_variable("HOTLINE_LANGUAGE", language),
    ]


def keys(record: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return [(e["kind"], e["node"], e["detail"]) for e in record["journey"] if e["kind"] != "menu"]


async def test_key_choices_reach_their_queue(menu: Menu, store: CallStore) -> None:
    record, _ = await run_call(menu, store, [
        get_data("1", START),
        get_data("2", ["main.zh"]),
        get_data("1", ["questions.zh"]),
        *leaves_to("queue:consultation", "zh"),
    ])  # fmt: skip
    assert (record["route"], record["route_reason"], record["language"]) == (
        "queue:consultation", "selected", "zh",
    )  # fmt: skip
    assert keys(record)[:3] == [
        ("key", "language", "1"), ("key", "main", "2"), ("key", "questions", "1"),
    ]  # fmt: skip


async def test_a_wrong_key_hears_invalid_and_the_menu_again(menu: Menu, store: CallStore) -> None:
    record, _ = await run_call(menu, store, [
        get_data("1", START),
        get_data("7", ["main.zh"]),
        get_data("1", ["invalid.zh", "main.zh"]),
        *leaves_to("queue:report", "zh"),
    ])  # fmt: skip
    assert (record["route"], record["route_reason"]) == ("queue:report", "selected")


async def test_three_wrong_keys_go_to_the_operator(menu: Menu, store: CallStore) -> None:
    record, _ = await run_call(menu, store, [
        get_data("1", START),
        get_data("7", ["main.zh"]),
        get_data("8", ["invalid.zh", "main.zh"]),
        get_data("6", ["invalid.zh", "main.zh"]),
        stream(["transfer.zh"]),
        *leaves_to("queue:operator", "zh"),
    ])  # fmt: skip
    assert (record["route"], record["route_reason"]) == ("queue:operator", "invalid")


async def test_a_silent_caller_reaches_the_operator(menu: Menu, store: CallStore) -> None:
    """However many timeouts the menu allows, silence ends at the operator, never a hangup."""
    record, _ = await run_call(menu, store, [
        get_data("", START),  # the language choice's timeout keeps Mandarin
        get_data("", ["main.zh"], repeat=True),
        stream(["transfer.zh"]),
        *leaves_to("queue:operator", "zh"),
    ])  # fmt: skip
    assert (record["route"], record["route_reason"]) == ("queue:operator", "no-input")
    silences = [k for k, _, _ in keys(record)][:-1]
    assert silences == ["no-input"] * len(silences) and 2 <= len(silences) <= menu.max_tries + 1


async def test_english_is_chosen_once_and_kept(menu: Menu, store: CallStore) -> None:
    record, _ = await run_call(menu, store, [
        get_data("2", START),
        get_data("2", ["main.en"]),
        get_data("1", ["questions.en"]),
        *leaves_to("queue:consultation", "en"),
    ])  # fmt: skip
    assert record["language"] == "en"


async def test_star_goes_back_and_9_repeats(menu: Menu, store: CallStore) -> None:
    record, _ = await run_call(menu, store, [
        get_data("1", START),
        get_data("2", ["main.zh"]),
        get_data("*", ["questions.zh"]),
        get_data("9", ["main.zh"]),  # back in the main menu
        get_data("1", ["main.zh"]),  # heard again
        *leaves_to("queue:report", "zh"),
    ])  # fmt: skip
    assert record["route"] == "queue:report"
    assert keys(record)[:4] == [
        ("key", "language", "1"), ("key", "main", "2"), ("key", "questions", "*"),
        ("key", "main", "9"),
    ]  # fmt: skip


async def test_0_is_the_operator_from_any_node(menu: Menu, store: CallStore) -> None:
    record, _ = await run_call(menu, store, [
        get_data("2", START),
        get_data("2", ["main.en"]),
        get_data("0", ["questions.en"]),
        stream(["transfer.en"]),
        *leaves_to("queue:operator", "en"),
    ])  # fmt: skip
    assert (record["route"], record["route_reason"]) == ("queue:operator", "operator")


async def test_a_work_order_status_is_read_in_the_callers_language(
    menu: Menu, store: CallStore
) -> None:
    record, prompts = await run_call(menu, store, [
        get_data("2", START),
        get_data("3", ["main.en"]),
        get_data("2026120001#", ["workorder.en"]),
        stream(["spoken-order-2026120001.en"]),
        *leaves_to("action:hangup", "en"),
    ], orders={"2026120001": "In progress."})  # fmt: skip
    assert record["entered_number"] == "2026120001"
    assert [(p.language, p.text) for p in prompts.spoken] == [("en", "In progress.")]


async def test_an_unknown_work_order_goes_to_the_operator(menu: Menu, store: CallStore) -> None:
    record, prompts = await run_call(menu, store, [
        get_data("1", START),
        get_data("3", ["main.zh"]),
        get_data("999#", ["workorder.zh"]),
        stream(["order-unknown.zh"]),
        *leaves_to("queue:operator", "zh"),
    ])  # fmt: skip
    assert record["route"] == "queue:operator" and prompts.spoken == []


async def test_a_caller_who_hangs_up_in_the_menu_is_recorded(menu: Menu, store: CallStore) -> None:
    record, _ = await run_call(menu, store, [get_data("1", START), hang_up()])
    assert record["route"] is None and record["route_reason"] == "hangup"
    assert keys(record)[-1] == ("hangup", "main", "caller hung up in the IVR")


async def test_the_fake_fails_on_a_command_the_script_did_not_expect(
    menu: Menu, store: CallStore
) -> None:
    """The seam itself: a route that strays from the script fails the test, clearly."""
    with pytest.raises(AssertionError, match=r"unexpected 'get_data main.zh'.*expected get_data"):
        await run_call(menu, store, [get_data("1", START), get_data("2", ["main.en"])])


class WatchingStore(CallStore):
    """A CallStore that notes whether the caller's channel was released before each write,
    and closes the record (the hangup) while the IVR is still writing it."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], channel: FakeChannel) -> None:
        super().__init__(sessions)
        self.channel = channel
        self.released_at_write: list[bool] = []
        self.done: list[str] = []
        self.hangup: asyncio.Task[bool] | None = None

    async def add_steps(self, call_id: int, steps: list[Any]) -> None:
        self.released_at_write.append(self.channel.released)
        # the caller hangs up as soon as the IVR let go (the dialplan's Hangup(), say)
        self.hangup = asyncio.create_task(self.close(self.channel.call.uniqueid, cause=16,
                                                     cause_text="Normal Clearing"))  # fmt: skip
        await asyncio.sleep(0.05)
        await super().add_steps(call_id, steps)

    async def finish_ivr(self, call_id: int, **values: Any) -> None:
        self.released_at_write.append(self.channel.released)
        await super().finish_ivr(call_id, **values)
        self.done.append("route written")

    async def close(self, uniqueid: str, **values: Any) -> bool:
        closed = await super().close(uniqueid, **values)
        self.done.append("closed")
        return closed


async def test_the_caller_leaves_before_the_record_is_written(
    menu: Menu, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The last key's way to the queue does not wait for SQL: the route releases the AGI
    channel (Asterisk goes on in the dialplan) and then writes the journey and the route;
    a hangup meanwhile closes the record only once they are written."""
    channel = FakeChannel(agi_call("1800000000.8"), [
        get_data("1", START), get_data("1", ["main.zh"]), *leaves_to("queue:report", "zh"),
    ])  # fmt: skip
    watching = WatchingStore(sessions, channel)
    await IvrSession(menu, PromptNames(), watching).run(channel)
    channel.check()
    assert channel.done[-1] == "release"
    assert watching.released_at_write == [True, True]
    assert watching.hangup is not None and await watching.hangup
    assert watching.done == ["route written", "closed"]
    record = await watching.get("1800000000.8")
    assert record is not None and record["route"] == "queue:report" and record["ended_at"]
