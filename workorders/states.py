"""The work order's state machine: pure data (the states' names read from state_labels.toml).

``registered → answered`` (answered directly by the operator) or ``→ dispatched → signed →
in_progress (⇄ extension_requested) → replied → reviewed → revisited → archived``. A department
may return a dispatched or signed order (``returned``); the operator reassigns it, which makes
it ``dispatched`` again to the new department. A reply that fails review goes back to
``in_progress``; a dissatisfied revisit is reworked (``dispatched`` again, new time limit).
A duplicate is merged into another order and stops there.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path

from workorders.errors import IllegalTransition


class State(StrEnum):
    REGISTERED = "registered"
    ANSWERED = "answered"
    DISPATCHED = "dispatched"
    SIGNED = "signed"
    RETURNED = "returned"
    IN_PROGRESS = "in_progress"
    EXTENSION_REQUESTED = "extension_requested"
    REPLIED = "replied"
    REVIEWED = "reviewed"
    REVISITED = "revisited"
    ARCHIVED = "archived"
    MERGED = "merged"


class Action(StrEnum):
    ANSWER = "answer"
    DISPATCH = "dispatch"
    SIGN = "sign"
    RETURN = "return"
    REASSIGN = "reassign"
    START = "start"
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    REFUSE_EXTENSION = "refuse_extension"
    REPLY = "reply"
    REVIEW = "review"
    REJECT_REPLY = "reject_reply"
    REVISIT = "revisit"
    REWORK = "rework"
    ARCHIVE = "archive"
    MERGE = "merge"


S, A = State, Action
_OPEN = (S.REGISTERED, S.DISPATCHED, S.SIGNED, S.RETURNED, S.IN_PROGRESS, S.EXTENSION_REQUESTED)

TRANSITIONS: dict[tuple[State, Action], State] = {
    (S.REGISTERED, A.ANSWER): S.ANSWERED,
    (S.REGISTERED, A.DISPATCH): S.DISPATCHED,
    (S.DISPATCHED, A.SIGN): S.SIGNED,
    (S.DISPATCHED, A.RETURN): S.RETURNED,
    (S.SIGNED, A.RETURN): S.RETURNED,
    (S.RETURNED, A.REASSIGN): S.DISPATCHED,
    (S.SIGNED, A.START): S.IN_PROGRESS,
    (S.SIGNED, A.REPLY): S.REPLIED,
    (S.IN_PROGRESS, A.REQUEST_EXTENSION): S.EXTENSION_REQUESTED,
    (S.EXTENSION_REQUESTED, A.APPROVE_EXTENSION): S.IN_PROGRESS,
    (S.EXTENSION_REQUESTED, A.REFUSE_EXTENSION): S.IN_PROGRESS,
    (S.IN_PROGRESS, A.REPLY): S.REPLIED,
    (S.REPLIED, A.REVIEW): S.REVIEWED,
    (S.REPLIED, A.REJECT_REPLY): S.IN_PROGRESS,
    (S.ANSWERED, A.REVISIT): S.REVISITED,
    (S.REVIEWED, A.REVISIT): S.REVISITED,
    (S.REVISITED, A.REWORK): S.DISPATCHED,
    (S.ANSWERED, A.ARCHIVE): S.ARCHIVED,
    (S.REVIEWED, A.ARCHIVE): S.ARCHIVED,
    (S.REVISITED, A.ARCHIVE): S.ARCHIVED,
    **{(state, A.MERGE): S.MERGED for state in _OPEN},
}

TERMINAL = frozenset({S.ARCHIVED, S.MERGED})
# Orders a department still owes an answer on: the ones supervision watches.
SUPERVISED = frozenset({S.DISPATCHED, S.SIGNED, S.IN_PROGRESS, S.EXTENSION_REQUESTED})
# Open311's two statuses: closed once the citizen has an answer.
CLOSED = frozenset({S.ANSWERED, S.REVIEWED, S.REVISITED, S.ARCHIVED, S.MERGED})

LABELS_FILE = Path(__file__).with_name("state_labels.toml")


def _labels(language: str) -> dict[State, str]:
    """Each state's name in ``language`` (``[states.<state>]`` of state_labels.toml); the IVR
    checks the file against the menu's languages at start (ivr/order_status.py)."""
    names = tomllib.loads(LABELS_FILE.read_text(encoding="utf-8"))["states"]
    return {state: names[state.value][language] for state in State}


# the names the web pages and Open311 show
LABELS_ZH = _labels("zh")


def next_state(state: State, action: Action) -> State:
    """The state after ``action``; :class:`IllegalTransition` names the current state if refused."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(action.value, state.value) from None


def allowed_actions(state: State) -> list[Action]:
    return [action for (source, action) in TRANSITIONS if source == state]
