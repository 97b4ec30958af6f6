"""The report's periods: days, ISO weeks (Monday first) or calendar months between two local
dates, each as a half-open span of UTC instants in the hotline's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

MAX_DAYS = 1100  # about three years in one report
MAX_PERIODS = 400  # rows of one report (a daily report covers at most 400 days)
EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)  # dates a report may name


class Period(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class BadRange(ValueError):
    """A date range a report cannot cover, with the reason."""


@dataclass(frozen=True)
class Span:
    label: str  # 2026-12-06, 2026-W49, 2026-12
    first: date  # local dates, inclusive
    last: date
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive


def _next(day: date, period: Period) -> date:
    if period is Period.DAILY:
        return day + timedelta(days=1)
    if period is Period.WEEKLY:
        return day + timedelta(days=7 - day.weekday())
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _label(day: date, period: Period) -> str:
    if period is Period.DAILY:
        return day.isoformat()
    if period is Period.WEEKLY:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def local_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant of ``day``'s local midnight."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def spans(first: date, last: date, period: Period, zone: ZoneInfo) -> list[Span]:
    """The periods from ``first`` to ``last`` (local dates, both included); a week or month
    cut by the range's ends covers only the days inside it."""
    if not (EARLIEST <= first <= LATEST and EARLIEST <= last <= LATEST):
        raise BadRange(f"dates from {EARLIEST} to {LATEST} only")
    if last < first:
        raise BadRange(f"to ({last}) is before from ({first})")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadRange(f"at most {MAX_DAYS} days in one report")
    out: list[Span] = []
    day = first
    while day <= last:
        following = min(_next(day, period), last + timedelta(days=1))
        out.append(Span(_label(day, period), day, following - timedelta(days=1),
                        local_start(day, zone), local_start(following, zone)))  # fmt: skip
        if len(out) > MAX_PERIODS:
            raise BadRange(f"more than {MAX_PERIODS} {period.value} periods: take a longer one")
        day = following
    return out
