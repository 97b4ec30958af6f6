"""Working-day deadlines: a holiday calendar (with make-up working days, 调休) and the policy.

The calendar is the State Council's, from a maintained library
(:mod:`workorders.official_calendar`); ``holidays.toml`` holds only local overrides (a city's
own rest or working days), which win. A date past the library's coverage is counted by
weekends alone, with a clear warning once per year, not a silent guess.

Day 1 of a time limit is the first working day after the day the order was accepted; the
deadline is the end of the last working day, local time. Urgent orders (0 days) are due at the
end of the day they were accepted.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from workorders.errors import InvalidInput
from workorders.official_calendar import SOURCE, covered_years, official_working_day

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent


_warned_years: set[int] = set()


@dataclass(frozen=True)
class HolidayCalendar:
    # Local overrides: rest days, and days worked (e.g. weekend days, 调休) in this city.
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    weekend: frozenset[int] = frozenset({6, 7})  # ISO weekdays, past the official coverage
    official: bool = True  # the State Council's schedule (chinesecalendar) under the overrides

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        if self.official:
            answer = official_working_day(day)
            if answer is not None:
                return answer
            if day.year not in _warned_years:
                _warned_years.add(day.year)
                years = covered_years()
                log.warning(
                    "holiday calendar: %s covers %d-%d, not %d: days of %d count as working "
                    "days except weekends until the package is updated (or add that year's "
                    "[[holiday]] and [[workday]] entries to holidays.toml)",
                    SOURCE, years.start, years.stop - 1, day.year, day.year,
                )  # fmt: skip
        return day.isoweekday() not in self.weekend

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself if ``days`` is 0)."""
        if days < 0:
            raise ValueError("days must not be negative")
        day = start
        while days > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                days -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in ``(start, end]``."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> HolidayCalendar:
        return cls(
            holidays=frozenset(_expand(data.get("holiday", []))),
            workdays=frozenset(_expand(data.get("workday", []))),
            weekend=frozenset(int(d) for d in data.get("weekend", [6, 7])),
            official=bool(data.get("official", True)),
        )

    @classmethod
    def load(cls, path: Path = PACKAGE_DIR / "holidays.toml") -> HolidayCalendar:
        return cls.from_mapping(tomllib.loads(path.read_text(encoding="utf-8")))


def _expand(entries: list[Mapping[str, Any]]) -> list[date]:
    days: list[date] = []
    for entry in entries:
        first = entry.get("from", entry.get("date"))
        last = entry.get("to", first)
        if not isinstance(first, date) or not isinstance(last, date) or last < first:
            raise ValueError(f"calendar entry needs a date or a from/to range: {dict(entry)}")
        days.extend(first + timedelta(days=n) for n in range((last - first).days + 1))
    return days


@dataclass(frozen=True)
class TimeLimits:
    """The city's time-limit policy over a holiday calendar."""

    calendar: HolidayCalendar = field(default_factory=HolidayCalendar)
    days_by_category: Mapping[str, int] = field(default_factory=dict)
    default_days: int = 5
    urgent_days: int = 0
    max_extension_days: int = 30
    return_window_days: int = 2
    urge_before: timedelta = timedelta(hours=24)
    timezone: ZoneInfo = ZoneInfo("Asia/Shanghai")
    day_end: time = time(23, 59, 59)

    def working_days_for(self, category: str, urgent: bool = False) -> int:
        if urgent:
            return self.urgent_days
        return self.days_by_category.get(category, self.default_days)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.timezone).date()

    def end_of(self, day: date) -> datetime:
        return datetime.combine(day, self.day_end, self.timezone).astimezone(UTC)

    def due_at(self, accepted: datetime, working_days: int) -> datetime:
        start = self.local_date(accepted)
        return self.end_of(self.calendar.add_working_days(start, working_days))

    def due_for(self, accepted: datetime, category: str, urgent: bool = False) -> datetime:
        return self.due_at(accepted, self.working_days_for(category, urgent))

    def extend(self, due: datetime, days: int, already_granted: int) -> datetime:
        """The deadline moved ``days`` working days on; refused past the extension ceiling."""
        if days <= 0:
            raise InvalidInput("an extension must be at least one working day")
        if already_granted + days > self.max_extension_days:
            left = self.max_extension_days - already_granted
            raise InvalidInput(
                f"extension of {days} working days exceeds the limit "
                f"({self.max_extension_days} in all, {left} left)"
            )
        return self.due_at(due, days)

    def may_return(self, dispatched: datetime, now: datetime) -> bool:
        """Whether a department is still within the window for returning a misrouted order."""
        elapsed = self.calendar.working_days_between(
            self.local_date(dispatched), self.local_date(now)
        )
        return elapsed <= self.return_window_days

    def format_day(self, moment: datetime) -> str:
        day = self.local_date(moment)
        return f"{day.year}年{day.month}月{day.day}日"

    @classmethod
    def load(
        cls,
        path: Path = PACKAGE_DIR / "timelimits.toml",
        calendar_path: Path = PACKAGE_DIR / "holidays.toml",
    ) -> TimeLimits:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return cls(
            calendar=HolidayCalendar.load(calendar_path),
            days_by_category={str(k): int(v) for k, v in data.get("days", {}).items()},
            default_days=int(data.get("default_days", 5)),
            urgent_days=int(data.get("urgent_days", 0)),
            max_extension_days=int(data.get("max_extension_days", 30)),
            return_window_days=int(data.get("return_window_days", 2)),
            urge_before=timedelta(hours=float(data.get("urge_before_hours", 24))),
            timezone=ZoneInfo(str(data.get("timezone", "Asia/Shanghai"))),
            day_end=time.fromisoformat(str(data.get("day_end", "23:59:59"))),
        )
