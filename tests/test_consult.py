"""Attended transfers through Asterisk (issue 10): seat 8001's operator consults a target while
the citizen is held (``POST /api/seats/8001/consult``: AMI Atxfer on the seat's channel),
then completes (``consult-complete``: the seat's channel leaves, Asterisk puts the citizen
through) or cancels (``consult-cancel``: AMI CancelAtxfer, back to the citizen). sipp plays
the citizen, the seats and the emergency service's phone behind the carrier trunk; what
happened is read from Asterisk's own AMI events (bridges), the sipp phones and the call
record."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import CALLBACK_PORT, AmiEvents, eventually
from seat_calls import call_events, caller_at_8001, tone

# the e2e seats fixture and the helpers of the ACD's and the blind transfers' tests
from test_acd_calls import StartSeats, seats  # noqa: F401
from test_transfers import _not_on_call, _pressing_seat, _sip_user, intake_of, operator_auth
from web_client import next_event

from accounts.users import AccountRole, User
from agents.states import SeatState
from hotline.engine import Hotline
from hotline.secrets import stored_secret
from sipsim.seat import run_uas, uas_scenario, unregister

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def consult(
    hotline: Hotline, ext: str, action: str, auth: dict[str, str], to: str = ""
) -> tuple[int, Any]:
    s = hotline.settings
    url = f"http://{s.web_host}:{s.web_port}/api/seats/{ext}/{action}"
    async with aiohttp.ClientSession() as http, http.post(url, json={"to": to} if to else {},
                                                           headers=auth) as response:  # fmt: skip
        return response.status, await response.json()


async def journey(hotline: Hotline, call_id: str) -> list[tuple[str, str, str]]:
    record = await hotline.calls.get(call_id)
    assert record is not None
    return [(s["kind"], s["node"], s["detail"]) for s in record["journey"]
            if s["kind"] in ("consult", "transfer")]  # fmt: skip


async def consulted_then_transferred(hotline: Hotline, call_id: str) -> list[tuple[str, str, str]]:
    """The call record's two steps of an attended transfer (the second one is written when
    Asterisk's AttendedTransfer event arrives)."""

    async def steps() -> list[tuple[str, str, str]] | None:
        found = await journey(hotline, call_id)
        return found if len(found) == 2 else None

    found: list[tuple[str, str, str]] = await eventually(steps, 10, "the transfer on the record")
    return found


def bridges_of(events: AmiEvents, uniqueid: str) -> set[str]:
    return {e.get("BridgeUniqueid", "") for e in events.seen
            if e.get("Event") == "BridgeEnter" and e.get("Uniqueid") == uniqueid}  # fmt: skip


def talking(events: AmiEvents, a: str, b: str) -> bool:
    """Whether channels ``a`` and ``b`` (uniqueids) are connected now, as AMI's BridgeEnter
    and BridgeLeave tell: in one bridge, or through the two halves of a Local channel (an
    attended transfer's consultation, which Asterisk may keep after completing)."""
    members: dict[str, set[str]] = {}
    halves: dict[str, set[str]] = {}
    for e in events.seen:
        kind, uniqueid = e.get("Event"), e.get("Uniqueid", "")
        if kind not in ("BridgeEnter", "BridgeLeave"):
            continue
        bridge = members.setdefault(e.get("BridgeUniqueid", ""), set())
        (bridge.add if kind == "BridgeEnter" else bridge.discard)(uniqueid)
        name = e.get("Channel", "")
        if name.startswith("Local/"):
            halves.setdefault(name.rpartition(";")[0], set()).add(uniqueid)
    reached, todo = {a}, [a]
    groups = [*members.values(), *halves.values()]
    while todo:
        here = todo.pop()
        for group in groups:
            if here in group:
                todo.extend(group - reached)
                reached |= group
    return b in reached


def dialled(events: AmiEvents, number: str, since: int) -> str:
    """The uniqueid of the channel Asterisk dialled ``number`` on (DialBegin), among the
    events from index ``since`` on."""
    return next((e.get("DestUniqueid", "") for e in events.seen[since:]
                 if e.get("Event") == "DialBegin" and f"sip:{number}@" in e.get("DialString", "")),
                "")  # fmt: skip


async def test_an_operator_consults_110_then_puts_the_caller_through(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    ami_events: AmiEvents,
    tmp_path: Path,
) -> None:
    """While 110 rings and answers the citizen is held, still in the seat's conversation (not
    bridged with 110); completing leaves the citizen and 110 in one bridge, seat 8001's part
    over (wrap-up), and the call record says consulted, then transferred (attended)."""
    police = await run_uas(tmp_path, "110", CALLBACK_PORT, uas_scenario(True, 1500))
    try:
        await seats("8001")
        voice = await tone(tmp_path)
        caller, call_id, call = await caller_at_8001(hotline, tmp_path, 25_000, speak=voice)
        auth = await operator_auth(hotline, "8001")
        status, body = await consult(hotline, "8001", "consult-complete", auth)
        assert status == 409, body  # nobody consulted yet
        status, body = await consult(hotline, "8001", "consult", auth, "queue:business")
        assert status == 409 and body["error"]["code"] == "no_free_seat", body  # 8001 only
        since = len(ami_events.seen)
        status, body = await consult(hotline, "8001", "consult", auth, "emergency:110")
        assert status == 200, body
        assert body["call_id"] == call_id and body["consulting"] == "emergency:110"

        async def answered() -> str:
            police_leg = dialled(ami_events, "110", since)
            return police_leg if police_leg and bridges_of(ami_events, police_leg) else ""

        police_leg = await eventually(answered, 20, "110 to answer the consulting seat")
        [invite] = police.invites()
        assert _sip_user(invite.splitlines()[0]) == "110", invite
        # consulting: 110 talks to the seat, the citizen is held apart
        assert not talking(ami_events, call_id, police_leg)
        assert (await hotline.acd.seat("8001")).call_id == call_id

        status, body = await consult(hotline, "8001", "consult-complete", auth)
        assert status == 200, body
        assert body == {"call_id": call_id, "from": "8001", "to": "emergency:110",
                        "by": "e2e-op-8001"}  # fmt: skip

        async def put_through() -> bool:
            return talking(ami_events, call_id, police_leg)

        await eventually(put_through, 15, "the citizen put through to 110")
        put_through_at = time.time()

        async def seat_free() -> bool:
            seat = await hotline.acd.seat("8001")
            return seat.state is not SeatState.ON_CALL and seat.call_id != call_id

        await eventually(seat_free, 10, "seat 8001's part to end")
        await call.hang_up()  # the citizen, talking to 110, hangs up: sipp's scenario completes
        with_110_s = time.time() - put_through_at
        # one recording of the whole call, 110's part in it, drafted when the citizen left
        recorded = await intake_of(hotline, call_id)
        assert recorded.duration_s is not None and recorded.duration_s > with_110_s

        assert await consulted_then_transferred(hotline, call_id) == [
            ("consult", "emergency:110", "from seat 8001 by e2e-op-8001"),
            ("transfer", "emergency:110", "from seat 8001 by e2e-op-8001 (attended)"),
        ]
        kinds = [(e.type, e.seat) for e in await call_events(hotline, caller)]
        assert kinds.count(("complete", "8001")) == 1, kinds
    finally:
        await police.stop()


async def test_an_operator_consults_a_seat_then_cancels_and_talks_to_the_caller_again(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    ami_events: AmiEvents,
    tmp_path: Path,
) -> None:
    """Seat 8003's phone rings and answers the consultation; cancelling ends that leg (8003
    gets its BYE) and puts seat 8001 back in the citizen's bridge; nothing is transferred."""
    phones = await seats("8001", "8003")
    caller, call_id, call = await caller_at_8001(hotline, tmp_path, 20_000)
    auth = await operator_auth(hotline, "8001")
    status, body = await consult(hotline, "8001", "consult", auth, "seat:8001")
    assert status == 400, body  # not itself
    status, body = await consult(hotline, "8001", "consult", auth, "seat:8003")
    assert status == 200, body

    seat_leg = next(e.get("Uniqueid", "") for e in ami_events.seen
                    if e.get("Event") == "BridgeEnter"
                    and e.get("Channel", "").startswith("PJSIP/8001-")
                    and e.get("BridgeUniqueid") in bridges_of(ami_events, call_id))  # fmt: skip

    async def rung() -> bool:
        return bool(phones["8003"].invites())

    await eventually(rung, 15, "seat 8003's phone to ring for the consultation")
    assert not talking(ami_events, call_id, seat_leg)  # the citizen held apart
    status, body = await consult(hotline, "8001", "consult-cancel", auth)
    assert status == 200, body
    assert body == {"call_id": call_id, "seat": "8001", "cancelled": "seat:8003"}

    async def back_with_caller() -> bool:
        return talking(ami_events, call_id, seat_leg)

    await eventually(back_with_caller, 15, "seat 8001 back with the citizen")
    status, body = await consult(hotline, "8001", "consult-cancel", auth)
    assert status == 409, body  # nothing left to cancel
    seat = await hotline.acd.seat("8001")
    assert (seat.state, seat.call_id) == (SeatState.ON_CALL, call_id)
    await call.hang_up()
    assert await journey(hotline, call_id) == [
        ("consult", "seat:8003", "from seat 8001 by e2e-op-8001"),
        ("consult", "seat:8003", "cancelled by seat 8001 (e2e-op-8001)"),
    ]
    kinds = [(e.type, e.seat) for e in await call_events(hotline, caller)]
    assert [k for k in kinds if k[0] == "connect"] == [("connect", "8001")]


async def test_a_seat_consulted_then_put_through_gets_the_call_on_its_desk(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    ami_events: AmiEvents,
    tmp_path: Path,
) -> None:
    """Completed, a consultation of seat 8003 puts the citizen through to it outside the ACD:
    8003's operator's live events (what its desk shows) pop with the call, then its end, and
    the order opened at 8001's desk goes to 8003."""
    await seats("8001", "8003")
    desk_8003 = User(0, "e2e-op-8003", AccountRole.OPERATOR, extension="8003")
    seen = hotline.live.subscribe(desk_8003, frozenset({"call", "call-ended"}))
    try:
        caller, call_id, call = await caller_at_8001(hotline, tmp_path, 25_000)
        auth = await operator_auth(hotline, "8001")
        since = len(ami_events.seen)
        status, body = await consult(hotline, "8001", "consult", auth, "seat:8003")
        assert status == 200, body

        async def answered() -> bool:
            return any(e.get("Event") == "BridgeEnter" and e.get("Channel", "").startswith(
                "PJSIP/8003-") for e in ami_events.seen[since:])  # fmt: skip

        await eventually(answered, 20, "seat 8003 to answer the consultation")
        status, body = await consult(hotline, "8001", "consult-complete", auth)
        assert status == 200, body
        popped = await asyncio.wait_for(seen.queue.get(), 15)
        assert popped is not None and popped.topic == "call", popped
        assert (popped.data["call_id"], popped.data["seat"]) == (call_id, "8003")
        order = await hotline.work_orders.by_call(call_id)
        assert order is not None and order.seat == "8003"
        on_8003 = await hotline.acd.seat("8003")  # the ACD keeps it (its desk may transfer)
        assert (on_8003.state, on_8003.call_id) == (SeatState.ON_CALL, call_id)
        await call.hang_up()
        ended = await asyncio.wait_for(seen.queue.get(), 15)
        assert ended is not None and ended.topic == "call-ended", ended
        assert (ended.data["call_id"], ended.data["seat"]) == (call_id, "8003")
    finally:
        hotline.live.unsubscribe(seen)


async def test_a_softphone_consults_110_with_hash_2_and_hangs_up_to_put_the_caller_through(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    ami_events: AmiEvents,
    tmp_path: Path,
) -> None:
    """Seat 8001's softphone (sipp) keys #2 and 110 during the call (Asterisk's attended
    transfer, features.conf), talks to 110 while the citizen is held, then hangs up: the
    citizen is put through to 110, and the engine writes the transfer from Asterisk's
    AttendedTransfer event and ends the seat's part in the ACD."""
    s = hotline.settings
    password = stored_secret(s.data_dir, "seat-8001")
    police = await run_uas(tmp_path, "110", CALLBACK_PORT, uas_scenario(True, 1000))
    first = await _pressing_seat(tmp_path, "8001", password, s.sip_port, "#2110",
                                 hangup_after_ms=5000)  # fmt: skip
    try:
        await hotline.acd.login("8001", "2468")
        hotline.dispatcher.kick()
        since = len(ami_events.seen)
        caller, call_id, call = await caller_at_8001(hotline, tmp_path, 25_000)

        async def put_through() -> bool:
            police_leg = dialled(ami_events, "110", since)
            return bool(police_leg) and talking(ami_events, call_id, police_leg)

        await eventually(put_through, 30, "the citizen put through to 110 by the softphone")
        [invite] = police.invites()
        assert _sip_user(invite.splitlines()[0]) == "110", invite
        await call.hang_up()
        assert await journey(hotline, call_id) == [
            ("transfer", "emergency:110", "from seat 8001 by softphone (#2) (attended)")
        ], [dict(e) for e in ami_events.seen if e.get("Event") == "AttendedTransfer"]
        kinds = [(e.type, e.seat) for e in await call_events(hotline, caller)]
        assert kinds.count(("complete", "8001")) == 1, kinds
    finally:
        await eventually(lambda: _not_on_call(hotline, "8001"), 30, "seat 8001 to be free")
        await hotline.acd.logout("8001")
        await unregister(first, password, sip_port=s.sip_port)
        await first.stop()
        await police.stop()


async def test_a_consultation_the_target_hangs_up_cannot_be_completed(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    ami_events: AmiEvents,
    tmp_path: Path,
) -> None:
    """110 answers the consultation and hangs up a second later: the seat is back with its
    caller, and "put through" is refused (409) rather than hanging up the seat's call with
    the caller; the record says the consultation ended."""
    police = await run_uas(tmp_path, "110", CALLBACK_PORT,
                           uas_scenario(True, 500, hangup_after_ms=1000))  # fmt: skip
    try:
        await seats("8001")
        caller, call_id, call = await caller_at_8001(hotline, tmp_path, 20_000)
        auth = await operator_auth(hotline, "8001")
        seat_leg = next(e.get("Uniqueid", "") for e in ami_events.seen
                        if e.get("Event") == "BridgeEnter"
                        and e.get("Channel", "").startswith("PJSIP/8001-")
                        and e.get("BridgeUniqueid") in bridges_of(ami_events, call_id))  # fmt: skip
        since = len(ami_events.seen)
        status, body = await consult(hotline, "8001", "consult", auth, "emergency:110")
        assert status == 200, body

        async def police_gone() -> bool:
            leg = dialled(ami_events, "110", since)
            return bool(leg) and any(e.get("Event") == "Hangup" and e.get("Uniqueid") == leg
                                     for e in ami_events.seen[since:])  # fmt: skip

        await eventually(police_gone, 20, "110 to answer and hang up")

        async def refused() -> bool:
            status, _body = await consult(hotline, "8001", "consult-complete", auth)
            return status == 409

        await eventually(refused, 10, "put through to be refused")
        await eventually(lambda: _talking_now(ami_events, call_id, seat_leg), 10,
                         "seat 8001 back with the caller")  # fmt: skip
        seat = await hotline.acd.seat("8001")
        assert (seat.state, seat.call_id) == (SeatState.ON_CALL, call_id)
        await call.hang_up()
        steps = await journey(hotline, call_id)
        assert steps[0] == ("consult", "emergency:110", "from seat 8001 by e2e-op-8001")
        assert steps[1][:2] == ("consult", "emergency:110") and steps[1][2].startswith("ended")
        assert len(steps) == 2, steps
    finally:
        await police.stop()


async def _talking_now(events: AmiEvents, a: str, b: str) -> bool:
    return talking(events, a, b)


async def test_an_operator_consults_a_queue_whose_seat_the_acd_chooses_then_cancels(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Seat 8001 consults queue business: with 8003 paused nobody is free (409 no_free_seat,
    nothing rings); available, 8003 is the ACD's choice: it rings for the consultation, held
    from callers, and its desk hears of a consultation, not of a call; cancelled, 8003 is
    available at once."""
    phones = await seats("8001", "8003")
    caller, call_id, call = await caller_at_8001(hotline, tmp_path, 15_000)
    auth = await operator_auth(hotline, "8001")
    await hotline.acd.pause("8003", "break")
    status, body = await consult(hotline, "8001", "consult", auth, "queue:business")
    assert status == 409 and body["error"]["code"] == "no_free_seat", body
    await hotline.acd.resume("8003")
    async with aiohttp.ClientSession() as http, http.get(
        live_url(hotline, "consult,call"), headers=await operator_auth(hotline, "8003")
    ) as desk_8003:  # fmt: skip
        status, body = await consult(hotline, "8001", "consult", auth, "queue:business")
        assert status == 200, body
        assert (body["consulting"], body["chosen_seat"]) == ("queue:business", "8003")
        told = await next_event(desk_8003, "consult")
        assert (told["call_id"], told["from_seat"], told["queue"]) == (call_id, "8001",
                                                                       "business")  # fmt: skip
        chosen = await hotline.acd.seat("8003")
        assert (chosen.state, chosen.reason, chosen.call_id) == (SeatState.RINGING, "consult",
                                                                 call_id)  # fmt: skip

        async def rung() -> bool:
            return bool(phones["8003"].invites())

        await eventually(rung, 15, "seat 8003's phone to ring for the consultation")
        status, body = await consult(hotline, "8001", "consult-cancel", auth)
        assert status == 200, body
        assert (await hotline.acd.seat("8003")).state is SeatState.AVAILABLE  # at once
    await call.hang_up()
    assert await journey(hotline, call_id) == [
        ("consult", "queue:business", "from seat 8001 by e2e-op-8001: seat 8003"),
        ("consult", "queue:business", "cancelled by seat 8001 (e2e-op-8001)"),
    ]
    kinds = [(e.type, e.seat) for e in await call_events(hotline, caller)]
    assert [k for k in kinds if k[0] == "connect"] == [("connect", "8001")]


async def test_an_operator_consults_a_queue_then_puts_the_caller_through_to_its_seat(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    ami_events: AmiEvents,
    tmp_path: Path,
) -> None:
    """Seat 8001 consults queue business, 8003 (the ACD's choice) answers; put through, 8003
    is the call's seat in the ACD (8001 wraps up), its desk pops with the call, and the
    citizen's hangup ends 8003's part."""
    await seats("8001", "8003")
    caller, call_id, call = await caller_at_8001(hotline, tmp_path, 25_000)
    auth = await operator_auth(hotline, "8001")
    async with aiohttp.ClientSession() as http, http.get(
        live_url(hotline, "call"), headers=await operator_auth(hotline, "8003")
    ) as desk_8003:  # fmt: skip
        since = len(ami_events.seen)
        status, body = await consult(hotline, "8001", "consult", auth, "queue:business")
        assert status == 200 and body["chosen_seat"] == "8003", body

        async def answered() -> bool:
            return any(e.get("Event") == "BridgeEnter" and e.get("Channel", "").startswith(
                "PJSIP/8003-") for e in ami_events.seen[since:])  # fmt: skip

        await eventually(answered, 15, "seat 8003 to answer the consultation")
        status, body = await consult(hotline, "8001", "consult-complete", auth)
        assert status == 200 and body["to"] == "queue:business", body

        async def handed_over() -> bool:
            seat = await hotline.acd.seat("8003")
            return seat.state is SeatState.ON_CALL and seat.call_id == call_id

        await eventually(handed_over, 15, "seat 8003 to be the call's seat")
        popped = await next_event(desk_8003, "call")
        assert (popped["call_id"], popped["seat"]) == (call_id, "8003")
        assert popped["caller_number"] == caller and popped["order"]["call_id"] == call_id
        first = await hotline.acd.seat("8001")
        assert not (first.state is SeatState.ON_CALL and first.call_id == call_id)
    await call.hang_up()  # the citizen, talking to 8003, hangs up

    async def released() -> bool:
        return (await hotline.acd.seat("8003")).state is not SeatState.ON_CALL

    await eventually(released, 15, "seat 8003's part to end with the citizen's hangup")
    assert await journey(hotline, call_id) == [
        ("consult", "queue:business", "from seat 8001 by e2e-op-8001: seat 8003"),
        ("transfer", "queue:business", "from seat 8001 by e2e-op-8001 (attended): seat 8003"),
    ]
    kinds = [(e.type, e.seat) for e in await call_events(hotline, caller)
             if e.type in ("connect", "complete")]  # fmt: skip
    assert kinds == [("connect", "8001"), ("complete", "8001"), ("connect", "8003"),
                     ("complete", "8003")]  # fmt: skip


def live_url(hotline: Hotline, topics: str) -> str:
    s = hotline.settings
    return f"http://{s.web_host}:{s.web_port}/api/live?topics={topics}"
