"""Working-day time limits: weekends, holidays, make-up working days (调休), extensions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from workorders.errors import InvalidInput
from workorders.timelimits import HolidayCalendar, TimeLimits

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def limits() -> TimeLimits:
    return TimeLimits.load()


def local(y: int, m: int, d: int, hh: int = 10) -> datetime:
    return datetime(y, m, d, hh, tzinfo=SHANGHAI)


def test_calendar_file_has_holidays_and_makeup_days(limits: TimeLimits) -> None:
    cal = limits.calendar
    assert not cal.is_working_day(date(2026, 10, 1))  # 国庆节, a Thursday
    assert not cal.is_working_day(date(2026, 2, 16))  # 春节, a Monday
    assert cal.is_working_day(date(2026, 2, 14))  # 春节调休, a Saturday
    assert cal.is_working_day(date(2026, 10, 10))  # 国庆节调休, a Saturday
    assert not cal.is_working_day(date(2026, 11, 28))  # an ordinary Saturday
    assert cal.is_working_day(date(2026, 11, 27))


def test_weekends_are_skipped(limits: TimeLimits) -> None:
    # Accepted Friday 27 Nov: 3 working days → Wed 2 Dec, end of day local time.
    due = limits.due_for(local(2026, 11, 27), "consultation")
    assert due.astimezone(SHANGHAI) == datetime.combine(
        date(2026, 12, 2), time(23, 59, 59), SHANGHAI
    )
    assert limits.due_for(local(2026, 11, 23), "complaint").astimezone(SHANGHAI).date() == date(
        2026, 11, 30
    )


def test_holidays_and_makeup_days(limits: TimeLimits) -> None:
    # Accepted Wed 30 Sep; 1-7 Oct off, Sat 10 Oct worked: 5 days → 8, 9, 10, 12, 13 Oct.
    assert limits.local_date(limits.due_for(local(2026, 9, 30), "complaint")) == date(2026, 10, 13)
    # Accepted Fri 13 Feb; Sat 14 worked, 15-23 off: 3 days → 14, 24, 25 Feb.
    assert limits.local_date(limits.due_for(local(2026, 2, 13), "help")) == date(2026, 2, 25)


def test_urgent_is_same_day_and_late_evening_counts_locally(limits: TimeLimits) -> None:
    due = limits.due_for(datetime(2026, 11, 23, 15, 0, tzinfo=UTC), "help", urgent=True)
    # 15:00 UTC is 23:00 in Beijing on the 23rd: due that same local day.
    assert due == datetime(2026, 11, 23, 15, 59, 59, tzinfo=UTC)


def test_extensions_are_capped(limits: TimeLimits) -> None:
    due = limits.due_for(local(2026, 11, 23), "complaint")
    extended = limits.extend(due, 10, already_granted=0)
    assert limits.local_date(extended) == date(2026, 12, 14)
    with pytest.raises(InvalidInput, match="30 in all, 5 left"):
        limits.extend(extended, 6, already_granted=25)
    with pytest.raises(InvalidInput):
        limits.extend(extended, 0, already_granted=0)


def test_return_window(limits: TimeLimits) -> None:
    dispatched = local(2026, 11, 27)  # Friday
    assert limits.may_return(dispatched, local(2026, 12, 1))  # Mon, Tue: 2 working days
    assert not limits.may_return(dispatched, local(2026, 12, 2))


def test_calendar_format_and_errors() -> None:
    cal = HolidayCalendar.from_mapping(
        {
            "weekend": [7],
            "holiday": [{"name": "x", "from": date(2026, 1, 5), "to": date(2026, 1, 6)}],
            "workday": [{"name": "y", "date": date(2026, 1, 11)}],
        }  # fmt: skip
    )
    assert cal.is_working_day(date(2026, 1, 10))  # Saturday is not a weekend day here
    assert not cal.is_working_day(date(2026, 1, 5)) and cal.is_working_day(date(2026, 1, 11))
    assert cal.working_days_between(date(2026, 1, 4), date(2026, 1, 11)) == 5
    with pytest.raises(ValueError):
        HolidayCalendar.from_mapping({"holiday": [{"name": "no date"}]})
