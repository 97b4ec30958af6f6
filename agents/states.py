"""Seat states as pure rules: which event moves a seat from which state to which.

The ACD in Redis (:mod:`queueing.acd`) enforces this table inside its Lua scripts: it
passes :func:`allowed_from` and the target state of each event, so the rules live here once
and their effects (timers, idle order) in the Lua alone.

::

    logged_out --login--> available --offer--> ringing --answer--> on_call --hangup--> wrap_up
        ^                  |   ^                 |  |                                    |
        +------logout------+   +--ring_cancel----+  +--no_answer (RONA)--> paused        |
                           +--pause--> paused --resume--> available <--wrap_up_done-----+
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import DomainError


class SeatState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class SeatEvent(StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    PAUSE = "pause"
    RESUME = "resume"
    OFFER = "offer"  # the ACD chose this seat: its phone rings
    ANSWER = "answer"
    NO_ANSWER = "no_answer"  # RONA: ring timeout, or the phone refused
    RING_CANCEL = "ring_cancel"  # the caller hung up while the seat rang
    HANGUP = "hangup"
    WRAP_UP_DONE = "wrap_up_done"  # timer expired, or the operator ended it early
    UNREGISTERED = "unregistered"  # the softphone's contact went away (AMI ContactStatus)


S, E = SeatState, SeatEvent

#: event -> (states it may start from, state it leads to)
TRANSITIONS: dict[SeatEvent, tuple[frozenset[SeatState], SeatState]] = {
    E.LOGIN: (frozenset({S.LOGGED_OUT}), S.AVAILABLE),
    E.LOGOUT: (frozenset({S.AVAILABLE, S.PAUSED, S.WRAP_UP, S.LOGGED_OUT}), S.LOGGED_OUT),
    E.PAUSE: (frozenset({S.AVAILABLE, S.WRAP_UP, S.PAUSED}), S.PAUSED),
    E.RESUME: (frozenset({S.PAUSED}), S.AVAILABLE),
    E.OFFER: (frozenset({S.AVAILABLE}), S.RINGING),
    E.ANSWER: (frozenset({S.RINGING}), S.ON_CALL),
    E.NO_ANSWER: (frozenset({S.RINGING}), S.PAUSED),
    E.RING_CANCEL: (frozenset({S.RINGING}), S.AVAILABLE),
    E.HANGUP: (frozenset({S.ON_CALL}), S.WRAP_UP),
    E.WRAP_UP_DONE: (frozenset({S.WRAP_UP}), S.AVAILABLE),
    E.UNREGISTERED: (frozenset({S.AVAILABLE, S.RINGING, S.WRAP_UP, S.PAUSED}), S.PAUSED),
}

#: pause reasons the system itself sets
NO_ANSWER_REASON = "no-answer"
UNREGISTERED_REASON = "unregistered"
#: reasons an operator may give (feature code *23<n> picks by index); any code matching
#: ``REASON_PATTERN`` is accepted, these are the ones the web and IVR offer
PAUSE_REASONS: tuple[str, ...] = ("break", "lunch", "meeting", "training", "coaching", "other")
REASON_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


class SeatStateError(DomainError, ValueError):
    """A seat event not allowed in the seat's current state."""

    code = "seat_state"
    status = 409

    def __init__(self, extension: str, state: SeatState | str, event: SeatEvent | str) -> None:
        super().__init__(f"seat {extension}: cannot {event} while {state}")
        self.extension, self.state, self.event = extension, str(state), str(event)


def allowed_from(event: SeatEvent) -> frozenset[SeatState]:
    return TRANSITIONS[event][0]


def target(event: SeatEvent) -> SeatState:
    return TRANSITIONS[event][1]


def check_reason(reason: str) -> str:
    if not REASON_PATTERN.match(reason):
        raise ValueError(f"pause reason {reason!r}: lower case code such as 'break' or 'lunch'")
    return reason


@dataclass(frozen=True)
class SeatStatus:
    """One seat's state at a moment. Times are epoch seconds."""

    extension: str
    state: SeatState = SeatState.LOGGED_OUT
    since: float = 0.0
    reason: str = ""  # pause reason code
    call_id: str = ""  # the call ringing or connected at this seat
    idle_since: float = 0.0  # "longest idle" orders available seats by this
    ring_until: float = 0.0  # RONA deadline while ringing
    wrap_until: float = 0.0  # end of wrap-up
