"""What the ACD hands out: frozen records, and its errors with stable codes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from agents.states import SeatStatus
from domain.errors import DomainError


class CallKind(StrEnum):
    VOICE = "voice"  # the citizen is on the line, waiting with music
    CALLBACK = "callback"  # the citizen hung up and keeps the place: ring a seat, then call back


@dataclass(frozen=True)
class WaitingCall:
    call_id: str  # the caller's Asterisk uniqueid (or any id unique per call)
    skill: str
    caller: str  # the number shown on the seat's phone; the number to call back for callbacks
    language: str
    priority: int
    enqueued_at: float
    kind: CallKind
    position: int  # 1 = next


@dataclass(frozen=True)
class Assignment:
    """One routing decision: ring ``seat`` for ``call_id``."""

    call_id: str
    seat: str
    skill: str
    language: str
    caller: str
    priority: int
    kind: CallKind
    waited_s: float
    relax_step: int  # index of the relax step that applied (0 = none relaxed)
    level: int  # the seat's level in the skill, 0 if matched by language only
    ring_until: float  # RONA deadline: call Acd.requeue_head / expire_rings after it


@dataclass(frozen=True)
class Released:
    """What happened when a call left: ``abandoned`` (with its wait), ``completed``, or
    ``unreached`` (a callback whose citizen did not answer the seat's call)."""

    call_id: str
    outcome: str  # "abandoned" | "completed" | "unreached" | "kept" | "unknown"
    seat: str  # the seat that rang (abandoned while ringing) or served the call
    duration_s: float  # wait for abandoned, talk time for completed, seat's time for unreached


@dataclass(frozen=True)
class Entered:
    """A voice caller in its queue (Acd.enter): its priority, its position (1 = next) and the
    routing step's decisions made on its entry."""

    priority: int
    position: int
    assignments: list[Assignment]


@dataclass(frozen=True)
class Requeued:
    call_id: str
    seat: str  # the seat that did not answer, now paused


@dataclass(frozen=True)
class QueueStats:
    skill: str
    waiting: int
    callbacks: int
    longest_wait_s: float
    staffed: int  # logged-in seats holding the skill
    available: int  # of those, available now
    aht_s: float


@dataclass(frozen=True)
class AcdSnapshot:
    at: float
    queues: tuple[QueueStats, ...]
    seats: tuple[SeatStatus, ...]
    seats_by_state: Mapping[str, int] = field(default_factory=dict)

    @property
    def waiting(self) -> int:
        return sum(q.waiting for q in self.queues)

    @property
    def longest_wait_s(self) -> float:
        return max((q.longest_wait_s for q in self.queues), default=0.0)


class AcdError(DomainError):
    """Base of the ACD's errors."""

    code = "acd"
    status = 409


class UnknownSeat(AcdError):
    code = "unknown_seat"
    status = 404


class UnknownSkill(AcdError):
    code = "unknown_skill"
    status = 404


class LoginRefused(AcdError):
    code = "login_refused"
    status = 403


class CallStateError(AcdError):
    code = "call_state"
