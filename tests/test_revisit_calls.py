"""Revisit calls end to end: the engine's own dialer places them through the real Asterisk
(AMI Originate with the callback's dial string into [hotline-revisit]) to a sipp UAS playing
the citizen's phone, whose answered call runs the FastAGI ``revisit`` route; the phone sends
its keys as RFC 4733 DTMF. Calling hours run on a test clock (no waiting for the morning), and
retries on a short interval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from citizen_phones import dialled, start_phone
from conftest import AmiEvents, eventually, new_caller
from sqlalchemy import select
from staff import staff_token, supervisor_auth

from accounts.users import AccountRole
from hotline.engine import Hotline
from revisit.models import RevisitAttemptRow, RevisitRow
from revisit.rules import CallingHours
from sipsim.citizen import audio_sdp
from sipsim.dtmf import sequence_duration_ms, write_dtmf_pcap
from sipsim.seat import uas_scenario
from workorders.errors import NotFound
from workorders.orders import Actor, NewWorkOrder, Role
from workorders.states import State

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LEAD = Actor("e2e-supervisor", Role.SUPERVISOR)  # acts for the department too
KEYS = "1" * 90  # the phone keeps pressing 1 (lost while the summary plays): 1, then 1


def answering_phone(pcap: Path) -> str:
    """A phone that rings, answers, keeps pressing 1 and waits for the hotline's BYE."""
    body = uas_scenario(True, 300)
    ack = '  <recv request="ACK"/>\n'
    play = f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
    assert ack in body and audio_sdp("seat") in body
    return body.replace(ack, ack + play, 1)


@pytest_asyncio.fixture(loop_scope="session")
async def revisiting(hotline: Hotline) -> AsyncIterator[Hotline]:
    """The engine's revisits at once, retried 3 s apart, ringing 6 s, on a clock that stands
    at 10:00 on a working Monday in Beijing and runs on from there."""
    service = hotline.revisits
    policy, clock = service.policy, service.clock
    shift = datetime(2026, 11, 23, 2, 0, tzinfo=UTC) - datetime.now(UTC)
    service.clock = lambda: datetime.now(UTC) + shift
    service.policy = replace(
        policy, at_once=True, calls=True, retry_interval=timedelta(seconds=3), ring_s=6,
        hours=CallingHours.parse("09:00-20:00", "working"),
    )  # fmt: skip
    try:
        yield hotline
    finally:
        service.policy, service.clock = policy, clock


async def reviewed_order(hotline: Hotline, phone: str, **fields: Any) -> str:
    orders = hotline.work_orders
    new = NewWorkOrder(
        channel="phone", caller_phone=phone, category="complaint", description="路灯坏了",
        lead_department="市城管局", **fields,
    )  # fmt: skip
    number = (await orders.create(new, LEAD)).number
    await orders.dispatch(number, LEAD)
    await orders.sign(number, LEAD)
    await orders.reply(number, LEAD, "已更换路灯。")
    await orders.review(number, LEAD, passed=True)
    return number


async def revisit_state(hotline: Hotline, number: str) -> dict[str, Any]:
    hotline.revisit_dialer.kick()
    try:
        return await hotline.revisits.show(number)
    except NotFound:  # not scheduled yet: the dialer's next round
        return {"state": "", "attempts": 0}


async def revisit_when(
    hotline: Hotline,
    number: str,
    wanted: Callable[[dict[str, Any]], bool],
    what: str,
    timeout_s: float = 90,
) -> dict[str, Any]:
    """The revisit's view once ``wanted`` holds for it (up to ``timeout_s``)."""

    async def reached() -> dict[str, Any] | None:
        view = await revisit_state(hotline, number)
        return view if wanted(view) else None

    return await eventually(reached, timeout_s, what)


async def revisit_done(hotline: Hotline, number: str, what: str) -> dict[str, Any]:
    return await revisit_when(hotline, number, lambda view: view["state"] == "done", what)


async def surveyed(
    hotline: Hotline, tmp_path: Path, keys: str, until: str = "done"
) -> tuple[str, dict[str, Any]]:
    """A reviewed order whose revisit call a phone answers, pressing ``keys`` (one key every
    0.4 s, those sent while the summary plays are lost; none: the phone stays silent): the
    order's number and its revisit's view once in state ``until``. The phone was called
    once, at the citizen's number."""
    if keys:
        assert sequence_duration_ms(keys) > 30_000  # long enough for the summary and questions
        scenario = answering_phone(write_dtmf_pcap(tmp_path / "keys.pcap", keys))
    else:
        scenario = uas_scenario(True, 300)  # answers, then waits for the hotline's BYE
    phone = await start_phone(tmp_path, scenario, "citizen")
    try:
        citizen = new_caller()
        number = await reviewed_order(hotline, citizen)

        view = await revisit_when(
            hotline, number, lambda view: view["state"] == until, f"the revisit's {until} state"
        )
    finally:
        await phone.stop()
    assert dialled(phone) == [citizen]
    return number, view


def revisits_url(hotline: Hotline) -> str:
    return f"http://{hotline.settings.web_host}:{hotline.settings.web_port}/api/revisits"


async def supervisors_rows(hotline: Hotline, query: str = "") -> dict[str, dict[str, Any]]:
    """GET /api/revisits (``query``: e.g. "?state=manual") as a supervisor: its rows by
    order number."""
    async with aiohttp.ClientSession() as web:
        url = revisits_url(hotline) + query
        async with web.get(url, headers=await supervisor_auth(hotline)) as response:
            assert response.status == 200
            return {row["order_number"]: row for row in (await response.json())["revisits"]}


async def test_resolved_and_very_satisfied_is_stored_and_closes_the_order(
    revisiting: Hotline, tmp_path: Path
) -> None:
    hotline = revisiting
    number, view = await surveyed(hotline, tmp_path, KEYS)
    assert view["attempts"] == 1 and view["result_by"] == "call"
    assert view["resolved"] is True and view["satisfaction"] == "very_satisfied"
    assert [h["outcome"] for h in view["history"]] == ["completed"]
    order = await hotline.work_orders.get(number)
    assert order.state is State.REVISITED and order.resolved is True
    assert order.satisfaction == "very_satisfied" and order.history[-1].actor == "revisit-call"
    # The supervisors' view, through the engine's web service and its access table.
    url = revisits_url(hotline)
    async with aiohttp.ClientSession() as web:
        async with web.get(url, headers=await supervisor_auth(hotline)) as response:
            assert response.status == 200
            body = await response.json()
        assert body["figures"]["reach_rate"] > 0 and body["figures"]["results"] >= 1
        assert number in [r["order_number"] for r in body["revisits"]]
        async with web.get(url) as response:
            assert response.status == 401


async def test_no_answer_twice_then_answered_on_the_third_call(
    revisiting: Hotline, tmp_path: Path
) -> None:
    hotline = revisiting
    silent = await start_phone(tmp_path, uas_scenario(False, 0), "silent")
    try:
        citizen = new_caller()
        number = await reviewed_order(hotline, citizen)

        view = await revisit_when(
            hotline,
            number,
            lambda view: view["attempts"] >= 2 and view["state"] == "due",
            "two unanswered attempts to end",
        )
        for attempt in view["history"]:
            assert attempt["outcome"] in ("no_answer", "failed") and not attempt["answered"]
    finally:
        await silent.stop()
    assert dialled(silent) == [citizen, citizen]
    pcap = write_dtmf_pcap(tmp_path / "ones.pcap", KEYS)
    phone = await start_phone(tmp_path, answering_phone(pcap), "citizen")
    try:
        view = await revisit_done(hotline, number, "the third attempt's result")
    finally:
        await phone.stop()
    assert dialled(phone) == [citizen]
    assert view["attempts"] == 3
    assert [h["outcome"] for h in view["history"]][2:] == ["completed"]
    assert (await hotline.work_orders.get(number)).state is State.REVISITED


async def test_no_answer_three_times_goes_to_the_manual_list(
    revisiting: Hotline, tmp_path: Path
) -> None:
    hotline = revisiting
    silent = await start_phone(tmp_path, uas_scenario(False, 0), "silent")
    try:
        citizen = new_caller()
        number = await reviewed_order(hotline, citizen)

        view = await revisit_when(
            hotline,
            number,
            lambda view: view["state"] == "manual",
            "the revisit on the manual list",
            120,
        )
        for _ in range(3):  # the dialer goes on: no fourth call
            await hotline.revisit_dialer.tick()
        await asyncio.sleep(2)
    finally:
        await silent.stop()
    assert dialled(silent) == [citizen] * 3
    assert view["attempts"] == 3 and view["manual_reason"] == "attempts_exhausted"
    assert number in await supervisors_rows(hotline, "?state=manual")


async def test_not_resolved_goes_back_for_rework_and_onto_the_supervisors_list(
    revisiting: Hotline, tmp_path: Path
) -> None:
    """The phone keeps pressing 2: not resolved, satisfied. The order goes back to its
    department, and the revisit is flagged for the supervisors."""
    hotline = revisiting
    number, view = await surveyed(hotline, tmp_path, "2" * 90)
    assert view["resolved"] is False and view["attention"] is True
    order = await hotline.work_orders.get(number)
    assert order.state is State.DISPATCHED and order.rework_count == 1
    assert (await supervisors_rows(hotline))[number]["attention"] is True


async def test_resolved_but_dissatisfied_goes_back_for_rework(
    revisiting: Hotline, tmp_path: Path
) -> None:
    """The phone presses 1, 3, 1, 3, ...: the resolved question takes a 1 (a 3 there is a
    wrong key, asked again), and the key after it, 3, answers the satisfaction question:
    resolved, dissatisfied. The result is stored with its attempt, the order goes back to its
    department and the revisit onto the supervisors' list."""
    hotline = revisiting
    number, view = await surveyed(hotline, tmp_path, "13" * 45)
    assert view["resolved"] is True and view["satisfaction"] == "dissatisfied"
    assert view["attempts"] == 1 and view["result_by"] == "call"
    assert [(h["outcome"], h["answered"]) for h in view["history"]] == [("completed", True)]
    assert view["attention"] is True
    order = await hotline.work_orders.get(number)
    assert order.state is State.DISPATCHED and order.rework_count == 1
    assert order.resolved is True and order.satisfaction == "dissatisfied"
    assert order.history[-1].actor == "revisit-call"
    assert order.history[-1].note.startswith("dissatisfied revisit")
    assert (await supervisors_rows(hotline))[number]["attention"] is True


async def test_due_outside_calling_hours_waits_until_they_open(
    revisiting: Hotline, tmp_path: Path
) -> None:
    hotline = revisiting
    service = hotline.revisits
    running = service.clock
    evening = datetime(2026, 11, 23, 13, 0, tzinfo=UTC) - datetime.now(UTC)  # 21:00 Beijing
    service.clock = lambda: datetime.now(UTC) + evening
    pcap = write_dtmf_pcap(tmp_path / "ones.pcap", KEYS)
    phone = await start_phone(tmp_path, answering_phone(pcap), "citizen")
    try:
        citizen = new_caller()
        number = await reviewed_order(hotline, citizen)

        async def scheduled() -> dict[str, Any] | None:
            view = await revisit_state(hotline, number)
            return view if view["state"] == "due" else None

        view = await eventually(scheduled, 30, "the revisit to be scheduled")
        assert view["due_at"] == "2026-11-24T01:00:00+00:00"  # Tuesday 09:00 in Beijing
        for _ in range(3):
            await hotline.revisit_dialer.tick()
        await asyncio.sleep(2)
        assert citizen not in dialled(phone)  # the line is closed
        # The test clock reaches the next morning's opening: the call goes out.
        morning = datetime(2026, 11, 24, 1, 0, 5, tzinfo=UTC) - datetime.now(UTC)
        service.clock = lambda: datetime.now(UTC) + morning

        view = await revisit_done(hotline, number, "the morning's revisit call")
    finally:
        service.clock = running
        await phone.stop()
    assert dialled(phone) == [citizen] and view["attempts"] == 1


async def test_opted_out_citizen_is_never_called(revisiting: Hotline, tmp_path: Path) -> None:
    hotline = revisiting
    pcap = write_dtmf_pcap(tmp_path / "ones.pcap", KEYS)
    phone = await start_phone(tmp_path, answering_phone(pcap), "citizen")
    try:
        citizen = new_caller()
        number = await reviewed_order(hotline, citizen, confidential=True)

        view = await revisit_when(
            hotline,
            number,
            lambda view: view["state"] == "manual",
            "the order on the manual list",
            30,
        )
        assert view["manual_reason"] == "opted_out" and view["attempts"] == 0
        for _ in range(3):  # several rounds of the dialer: still nobody is called
            await hotline.revisit_dialer.tick()
        await asyncio.sleep(3)
        assert citizen not in dialled(phone)
        # An operator records the result by hand from the manual list.
        base = revisits_url(hotline)
        token = await staff_token(hotline.accounts.accounts, "e2e-operator", AccountRole.OPERATOR,
                                  extension="8001")  # fmt: skip
        auth = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as web:
            async with web.get(f"{base}?state=manual", headers=auth) as response:
                assert response.status == 200
                manual = [r["order_number"] for r in (await response.json())["revisits"]]
                assert number in manual
            async with web.get(base, headers=auth) as response:
                assert response.status == 403  # the full view and figures: supervisors
            result = {"resolved": True, "satisfaction": "satisfied", "note": "回电"}
            async with web.post(f"{base}/{number}/result", json=result, headers=auth) as response:
                assert response.status == 200, await response.text()
            async with web.post(f"{base}/{number}/result", json={"resolved": "yes"},
                                headers=auth) as response:  # fmt: skip
                assert response.status == 400
                assert (await response.json())["error"]["code"] == "invalid_input"
    finally:
        await phone.stop()
    order = await hotline.work_orders.get(number)
    assert order.state is State.REVISITED and order.history[-1].actor == "e2e-operator"


@pytest.mark.parametrize("keys", ["9" * 90, ""], ids=["wrong-key", "no-key"])
async def test_no_key_or_a_wrong_key_three_times_is_no_answer_to_the_survey(
    revisiting: Hotline, ami_events: AmiEvents, tmp_path: Path, keys: str
) -> None:
    """The phone answers, then keeps pressing 9 (not a choice) or presses nothing: the
    resolved question is asked, then twice again, and the survey counts as not answered:
    the revisit goes to the manual list, the order keeps no result."""
    hotline = revisiting
    number, view = await surveyed(hotline, tmp_path, keys, until="manual")
    assert view["manual_reason"] == "no_survey" and view["attempts"] == 1
    assert [(h["outcome"], h["answered"]) for h in view["history"]] == [("no_survey", True)]
    assert view["resolved"] is None and view["satisfaction"] is None
    order = await hotline.work_orders.get(number)
    assert order.state is State.REVIEWED and not order.satisfaction and order.resolved is None
    async with hotline.revisits.sessions() as session:
        [channel_id] = await session.scalars(
            select(RevisitAttemptRow.channel_id)
            .join(RevisitRow)
            .where(RevisitRow.order_number == number)
        )
    asked = [
        e.get("CommandLine", "") or e.get("Command", "")
        for e in ami_events.of(channel_id, "AGIExecStart")
    ]
    questions = [c for c in asked if c.startswith("GET DATA") and "revisit-resolved" in c]
    assert len(questions) == 3, asked
    assert not any("revisit-satisfaction" in c for c in asked), asked
    assert any("revisit-no-answer" in c for c in asked), asked
