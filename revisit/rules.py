"""The revisit schedule's rules, pure: when a revisit is first due, when calls may be placed
(calling hours on the holiday calendar's working days), when a failed call is retried, who
is never called, and how a call's end is classified. No I/O: tests drive them directly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class RevisitState(StrEnum):
    DUE = "due"  # waiting for its time (due_at) and a free line
    DIALING = "dialing"  # an attempt in flight, held by one engine (owner, lease_until)
    DONE = "done"  # the result is on the work order
    MANUAL = "manual"  # an operator calls and records the result by hand


class Outcome(StrEnum):
    """How one call ended."""

    COMPLETED = "completed"  # both questions answered, stored on the order
    NO_SURVEY = "no_survey"  # reached, but no valid key to a question (no answer to the survey)
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    HUNG_UP = "hung_up"  # answered, hung up before the survey's end
    INTERRUPTED = "interrupted"  # in flight when its engine died; not counted as an attempt


RETRIED = frozenset({Outcome.BUSY, Outcome.NO_ANSWER, Outcome.FAILED, Outcome.HUNG_UP})


class ManualReason(StrEnum):
    OPTED_OUT = "opted_out"  # the citizen asked not to be called (confidential by default)
    NO_VOICE_NUMBER = "no_voice_number"  # SMS-only, or a number we may not dial
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    NO_SURVEY = "no_survey"


def outcome_of_hangup(cause: int | None, answered: bool) -> Outcome:
    """A call that ended before the survey did, by its Q.850 cause."""
    if answered:
        return Outcome.HUNG_UP
    if cause == 17:  # user busy
        return Outcome.BUSY
    if cause in (18, 19, 21, 16):  # no user responding, no answer, rejected, cleared unanswered
        return Outcome.NO_ANSWER
    return Outcome.FAILED


@dataclass(frozen=True)
class CallingHours:
    """When citizens may be called: local time of day, on working days (the calendar) or on
    every day."""

    start: time = time(9, 0)
    end: time = time(20, 0)
    working_days_only: bool = True

    @classmethod
    def parse(cls, hours: str, days: str = "working") -> CallingHours:
        """``"09:00-20:00"`` and ``"working"`` or ``"all"``."""
        try:
            first, _, last = hours.partition("-")
            start, end = time.fromisoformat(first.strip()), time.fromisoformat(last.strip())
        except ValueError as exc:
            raise ValueError(f"calling hours {hours!r}: want HH:MM-HH:MM") from exc
        if end <= start:
            raise ValueError(f"calling hours {hours!r}: the end must be after the start")
        if days not in ("working", "all"):
            raise ValueError(f"calling days {days!r}: 'working' or 'all'")
        return cls(start, end, days == "working")


@dataclass(frozen=True)
class RevisitPolicy:
    hours: CallingHours = field(default_factory=CallingHours)
    timezone: ZoneInfo = ZoneInfo("Asia/Shanghai")
    at_once: bool = False  # first call as soon as calling hours allow (tests), not next day
    calls: bool = True  # False: revisits are scheduled and listed, but no call is placed
    max_attempts: int = 3
    retry_interval: timedelta = timedelta(hours=2)
    concurrency: int = 4
    ring_s: int = 30
    # How long one engine holds an attempt (ring, survey) before others count it as dead.
    lease: timedelta = timedelta(minutes=10)
    # Orders closed longer ago than this are not revisited (e.g. when revisits are switched on).
    window: timedelta = timedelta(days=7)
    summary_chars: int = 80  # the department's reply, cut to this many characters


WorkingDay = Callable[[date], bool]


def in_hours(moment: datetime, policy: RevisitPolicy, working_day: WorkingDay) -> bool:
    local = moment.astimezone(policy.timezone)
    hours = policy.hours
    if hours.working_days_only and not working_day(local.date()):
        return False
    return hours.start <= local.time() < hours.end


def open_at(moment: datetime, policy: RevisitPolicy, working_day: WorkingDay) -> datetime:
    """The first moment at or after ``moment`` inside calling hours."""
    if in_hours(moment, policy, working_day):
        return moment
    local = moment.astimezone(policy.timezone)
    day = local.date() if local.time() < policy.hours.start else local.date() + timedelta(days=1)
    for _ in range(400):
        if not policy.hours.working_days_only or working_day(day):
            return datetime.combine(day, policy.hours.start, policy.timezone).astimezone(UTC)
        day += timedelta(days=1)
    raise ValueError("no calling day within 400 days: check the calendar")


def first_due(closed_at: datetime, policy: RevisitPolicy, working_day: WorkingDay) -> datetime:
    """When a revisit is first due: the next working day's opening (by default), or the first
    moment inside calling hours (``at_once``)."""
    if policy.at_once:
        return open_at(closed_at, policy, working_day)
    day = closed_at.astimezone(policy.timezone).date() + timedelta(days=1)
    while not working_day(day):
        day += timedelta(days=1)
    start = datetime.combine(day, policy.hours.start, policy.timezone).astimezone(UTC)
    return open_at(start, policy, working_day)


def retry_due(ended_at: datetime, policy: RevisitPolicy, working_day: WorkingDay) -> datetime:
    return open_at(ended_at + policy.retry_interval, policy, working_day)


def after_attempt(attempts: int, outcome: Outcome, policy: RevisitPolicy) -> RevisitState:
    """Where a revisit goes after a call that ended with ``outcome`` (``attempts`` counted)."""
    if outcome is Outcome.COMPLETED:
        return RevisitState.DONE
    if outcome is Outcome.NO_SURVEY:
        return RevisitState.MANUAL
    if outcome is Outcome.INTERRUPTED or attempts < policy.max_attempts:
        return RevisitState.DUE
    return RevisitState.MANUAL


def manual_reason(
    *,
    phone: str,
    confidential: bool,
    attributes: dict[str, object],
    may_dial: Callable[[str], bool],
) -> ManualReason | None:
    """Why an order's citizen is not called by the dialer (None: they are). ``no_revisit`` in
    the order's attributes is the citizen's wish at intake; a confidential reporter is not
    called unless they said ``no_revisit = false``; ``voice = false`` marks an SMS-only one."""
    wish = attributes.get("no_revisit")
    if wish is True or (confidential and wish is not False):
        return ManualReason.OPTED_OUT
    if attributes.get("voice") is False or not phone or not may_dial(phone):
        return ManualReason.NO_VOICE_NUMBER
    return None


def cut(text: str, limit: int) -> str:
    """A reply summary cut to ``limit`` characters, at a sentence or word end if one is near."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[:limit]
    for mark in ("。", "；", "，", ". ", "; ", ", ", " "):
        at = head.rfind(mark)
        if at >= limit // 2:
            return head[:at].rstrip(" ,;.，；。")
    return head


def digits(number: str) -> str:
    """A work-order number read digit by digit."""
    return " ".join(number)
