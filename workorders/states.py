"""The work order's state machine: pure data, no I/O.

``registered → answered`` (answered directly by the operator) or ``→ dispatched → signed →
in_progress (⇄ extension_requested) → replied → reviewed → revisited → archived``. A department
may return a dispatched or signed order (``returned``); the operator reassigns it, which makes
it ``dispatched`` again to the new department. A reply that fails review goes back to
``in_progress``; a dissatisfied revisit is reworked (``dispatched`` again, new time limit).
A duplicate is merged into another order and stops there.
"""

from __future__ import annotations

from enum import StrEnum

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

LABELS_ZH: dict[State, str] = {
    S.REGISTERED: "已受理，待派单",
    S.ANSWERED: "已直接答复",
    S.DISPATCHED: "已派单，待部门签收",
    S.SIGNED: "部门已签收，办理中",
    S.RETURNED: "已退回，正在重新派单",
    S.IN_PROGRESS: "办理中",
    S.EXTENSION_REQUESTED: "办理中，已申请延期",
    S.REPLIED: "部门已答复，审核中",
    S.REVIEWED: "已办结，待回访",
    S.REVISITED: "已办结，已回访",
    S.ARCHIVED: "已办结归档",
    S.MERGED: "已合并办理",
}


def next_state(state: State, action: Action) -> State:
    """The state after ``action``; :class:`IllegalTransition` names the current state if refused."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(action.value, state.value) from None


def allowed_actions(state: State) -> list[Action]:
    return [action for (source, action) in TRANSITIONS if source == state]
