"""The work-order state machine, without a database."""

from __future__ import annotations

import pytest

from workorders.errors import IllegalTransition
from workorders.states import (
    CLOSED,
    TERMINAL,
    TRANSITIONS,
    Action,
    State,
    allowed_actions,
    next_state,
)

HAPPY_PATH = [
    (Action.DISPATCH, State.DISPATCHED),
    (Action.SIGN, State.SIGNED),
    (Action.START, State.IN_PROGRESS),
    (Action.REQUEST_EXTENSION, State.EXTENSION_REQUESTED),
    (Action.APPROVE_EXTENSION, State.IN_PROGRESS),
    (Action.REPLY, State.REPLIED),
    (Action.REVIEW, State.REVIEWED),
    (Action.REVISIT, State.REVISITED),
    (Action.ARCHIVE, State.ARCHIVED),
]


def test_the_closed_loop() -> None:
    state = State.REGISTERED
    for action, expected in HAPPY_PATH:
        state = next_state(state, action)
        assert state is expected


def test_return_reassign_rework_and_refusals() -> None:
    assert next_state(State.DISPATCHED, Action.RETURN) is State.RETURNED
    assert next_state(State.SIGNED, Action.RETURN) is State.RETURNED
    assert next_state(State.RETURNED, Action.REASSIGN) is State.DISPATCHED
    assert next_state(State.EXTENSION_REQUESTED, Action.REFUSE_EXTENSION) is State.IN_PROGRESS
    assert next_state(State.REPLIED, Action.REJECT_REPLY) is State.IN_PROGRESS
    assert next_state(State.REVISITED, Action.REWORK) is State.DISPATCHED
    assert next_state(State.REGISTERED, Action.ANSWER) is State.ANSWERED
    assert next_state(State.ANSWERED, Action.ARCHIVE) is State.ARCHIVED


def test_illegal_transition_names_the_current_state() -> None:
    with pytest.raises(IllegalTransition) as refused:
        next_state(State.REGISTERED, Action.SIGN)
    assert str(refused.value) == "cannot sign a work order that is registered"
    assert refused.value.state == "registered" and refused.value.code == "illegal_transition"


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_allow_nothing(state: State) -> None:
    assert allowed_actions(state) == []
    for action in Action:
        with pytest.raises(IllegalTransition, match=state.value):
            next_state(state, action)


def test_merge_only_while_open() -> None:
    assert next_state(State.IN_PROGRESS, Action.MERGE) is State.MERGED
    with pytest.raises(IllegalTransition):
        next_state(State.REPLIED, Action.MERGE)


def test_every_state_is_reachable_and_closed_is_consistent() -> None:
    reached = {State.REGISTERED} | set(TRANSITIONS.values())
    assert reached == set(State)
    assert TERMINAL <= CLOSED
