"""Seat states: the table of transitions (agents/states.py) and what the ACD's Lua does with
it — timers, idle order, pause reasons — in the test Redis."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from agents.seats import parse_seats
from agents.states import TRANSITIONS, SeatEvent, SeatState, SeatStateError
from queueing.acd import Acd

S = SeatState
T0 = 1_800_000_000.0
SEATS = """
languages = ["zh"]
[defaults]
wrap_up_s = 30
ring_timeout_s = 15
[skills.report]
[skills.consultation]
wrap_up_s = 0
[[seat]]
extension = "8001"
pin = "1111"
languages = ["zh"]
skills = { report = 1, consultation = 1 }
"""


@pytest.fixture
async def acd(redis: Redis, prefix: str) -> Acd:
    acd = Acd(redis, parse_seats(SEATS), prefix=prefix)
    await acd.register_seats(now=T0)
    return acd


async def _ringing(acd: Acd, call: str, at: float, skill: str = "report") -> None:
    await acd.enqueue(call, skill, now=at)
    [offer] = await acd.dispatch_once(now=at)
    assert offer.seat == "8001"


def test_every_event_has_a_rule() -> None:
    assert set(TRANSITIONS) == set(SeatEvent)


async def test_a_call_through_a_seat(acd: Acd) -> None:
    await acd.login("8001", "1111", now=T0 + 100)
    seat = await acd.seat("8001")
    assert (seat.state, seat.idle_since) == (S.AVAILABLE, T0 + 100)
    await _ringing(acd, "c1", T0 + 110)
    seat = await acd.seat("8001")
    assert (seat.state, seat.call_id, seat.ring_until) == (S.RINGING, "c1", T0 + 125)
    await acd.answered("c1", now=T0 + 112)
    seat = await acd.seat("8001")
    assert (seat.state, seat.call_id, seat.ring_until) == (S.ON_CALL, "c1", 0)
    await acd.hangup("c1", now=T0 + 200)
    seat = await acd.seat("8001")
    assert (seat.state, seat.wrap_until, seat.call_id) == (S.WRAP_UP, T0 + 230, "")
    await acd.end_wrap_up("8001", now=T0 + 240)  # ended after the timer: idle from its end
    seat = await acd.seat("8001")
    assert (seat.state, seat.idle_since) == (S.AVAILABLE, T0 + 230)


async def test_hangup_without_wrap_up_is_available_at_once(acd: Acd) -> None:
    await acd.login("8001", "1111", now=T0)
    await _ringing(acd, "c1", T0 + 10, skill="consultation")  # wrap_up_s = 0
    await acd.answered("c1", now=T0 + 11)
    await acd.hangup("c1", now=T0 + 50)
    seat = await acd.seat("8001")
    assert (seat.state, seat.idle_since) == (S.AVAILABLE, T0 + 50)


async def test_rona_pauses_with_no_answer(acd: Acd) -> None:
    await acd.login("8001", "1111", now=T0)
    await _ringing(acd, "c1", T0 + 5)
    assert await acd.expire_rings(now=T0 + 19.9) == []
    await acd.expire_rings(now=T0 + 20)
    seat = await acd.seat("8001")
    assert (seat.state, seat.reason, seat.call_id) == (S.PAUSED, "no-answer", "")


async def test_ring_cancel_keeps_the_seat_s_place(acd: Acd) -> None:
    await acd.login("8001", "1111", now=T0 + 5)
    await _ringing(acd, "c1", T0 + 20)
    await acd.hangup("c1", now=T0 + 30)  # the caller gave up while the seat rang
    seat = await acd.seat("8001")
    assert (seat.state, seat.idle_since) == (S.AVAILABLE, T0 + 5)


async def test_pause_needs_a_reason_code_and_resume(acd: Acd) -> None:
    await acd.login("8001", "1111", now=T0)
    with pytest.raises(ValueError):
        await acd.pause("8001", "Lunch Break!", now=T0 + 1)
    await acd.pause("8001", "lunch", now=T0 + 1)
    seat = await acd.seat("8001")
    assert (seat.state, seat.reason) == (S.PAUSED, "lunch")
    await acd.resume("8001", now=T0 + 2)
    seat = await acd.seat("8001")
    assert (seat.state, seat.reason, seat.idle_since) == (S.AVAILABLE, "", T0 + 2)


async def test_unregistered_pauses(acd: Acd) -> None:
    await acd.login("8001", "1111", now=T0)
    await acd.unregistered("8001", now=T0 + 3)
    seat = await acd.seat("8001")
    assert (seat.state, seat.reason) == (S.PAUSED, "unregistered")


async def test_refused_transitions_say_why(acd: Acd) -> None:
    with pytest.raises(SeatStateError) as info:
        await acd.pause("8001", "break", now=T0)
    assert info.value.code == "seat_state"
    assert str(info.value) == "seat 8001: cannot pause while logged_out"
    await acd.login("8001", "1111", now=T0)
    with pytest.raises(SeatStateError, match="cannot login while available"):
        await acd.login("8001", "1111", now=T0 + 1)
    with pytest.raises(SeatStateError, match="cannot resume while available"):
        await acd.resume("8001", now=T0 + 1)
    await _ringing(acd, "c1", T0 + 2)
    with pytest.raises(SeatStateError, match="cannot pause while ringing"):
        await acd.pause("8001", "break", now=T0 + 3)
    await acd.answered("c1", now=T0 + 3)
    with pytest.raises(SeatStateError, match="cannot logout while on_call"):
        await acd.logout("8001", now=T0 + 4)
    with pytest.raises(SeatStateError, match="cannot wrap_up_done while on_call"):
        await acd.end_wrap_up("8001", now=T0 + 4)
    assert (await acd.seat("8001")).state is S.ON_CALL
