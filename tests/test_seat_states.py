"""Seat states as pure rules, without a network."""

from __future__ import annotations

import pytest

from agents.states import (
    TRANSITIONS,
    SeatEvent,
    SeatState,
    SeatStateError,
    SeatStatus,
    next_state,
)

E, S = SeatEvent, SeatState


def test_every_event_has_a_rule() -> None:
    assert set(TRANSITIONS) == set(SeatEvent)


def test_a_call_through_a_seat() -> None:
    seat = SeatStatus("8001").apply(E.LOGIN, 100)
    assert (seat.state, seat.idle_since) == (S.AVAILABLE, 100)
    seat = seat.apply(E.OFFER, 110, call_id="c1", ring_timeout_s=15)
    assert (seat.state, seat.call_id, seat.ring_until) == (S.RINGING, "c1", 125)
    seat = seat.apply(E.ANSWER, 112)
    assert seat.state is S.ON_CALL and seat.call_id == "c1"
    seat = seat.apply(E.HANGUP, 200, wrap_up_s=30)
    assert (seat.state, seat.wrap_until, seat.call_id) == (S.WRAP_UP, 230, "")
    seat = seat.apply(E.WRAP_UP_DONE, 240)
    assert (seat.state, seat.idle_since) == (S.AVAILABLE, 230)  # idle from the timer's end


def test_hangup_without_wrap_up_is_available_at_once() -> None:
    seat = SeatStatus("8001", S.ON_CALL, call_id="c1").apply(E.HANGUP, 50, wrap_up_s=0)
    assert (seat.state, seat.idle_since) == (S.AVAILABLE, 50)


def test_rona_pauses_with_no_answer() -> None:
    seat = SeatStatus("8001", S.RINGING, call_id="c1", ring_until=20).apply(E.NO_ANSWER, 20)
    assert (seat.state, seat.reason, seat.call_id) == (S.PAUSED, "no-answer", "")


def test_ring_cancel_keeps_the_seat_s_place() -> None:
    seat = SeatStatus("8001", S.RINGING, call_id="c1", idle_since=5).apply(E.RING_CANCEL, 30)
    assert (seat.state, seat.idle_since) == (S.AVAILABLE, 5)


def test_pause_needs_a_reason_code_and_resume() -> None:
    seat = SeatStatus("8001", S.AVAILABLE)
    with pytest.raises(ValueError):
        seat.apply(E.PAUSE, 1, reason="Lunch Break!")
    paused = seat.apply(E.PAUSE, 1, reason="lunch")
    assert (paused.state, paused.reason) == (S.PAUSED, "lunch")
    assert paused.apply(E.RESUME, 2).reason == ""


def test_unregistered_pauses() -> None:
    seat = SeatStatus("8001", S.AVAILABLE).apply(E.UNREGISTERED, 3)
    assert (seat.state, seat.reason) == (S.PAUSED, "unregistered")


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.LOGGED_OUT, E.OFFER),
        (S.PAUSED, E.OFFER),
        (S.WRAP_UP, E.OFFER),
        (S.ON_CALL, E.LOGOUT),
        (S.RINGING, E.PAUSE),
        (S.AVAILABLE, E.LOGIN),
        (S.AVAILABLE, E.ANSWER),
        (S.ON_CALL, E.UNREGISTERED),
    ],
)
def test_refused_transitions_say_why(state: SeatState, event: SeatEvent) -> None:
    with pytest.raises(SeatStateError) as info:
        next_state("8001", state, event)
    assert info.value.code == "seat_state"
    assert str(info.value) == f"seat 8001: cannot {event} while {state}"
