"""Working-day time limits: weekends, holidays, make-up working days (调休), extensions; the
State Council's calendar from chinesecalendar, checked against PyPI's holidays."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, time, timedelta
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


def test_official_calendar_has_holidays_and_makeup_days(limits: TimeLimits) -> None:
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
            "official": False,
        }  # fmt: skip
    )
    assert cal.is_working_day(date(2026, 1, 10))  # Saturday is not a weekend day here
    assert not cal.is_working_day(date(2026, 1, 5)) and cal.is_working_day(date(2026, 1, 11))
    assert cal.working_days_between(date(2026, 1, 4), date(2026, 1, 11)) == 5
    with pytest.raises(ValueError):
        HolidayCalendar.from_mapping({"holiday": [{"name": "no date"}]})


def test_chinesecalendar_agrees_with_the_holidays_package_for_every_year_both_cover() -> None:
    import chinese_calendar
    import holidays

    from workorders.official_calendar import covered_years

    years = covered_years()
    assert years.start <= 2026 < years.stop
    calendar = HolidayCalendar()
    disagree: set[date] = set()
    for year in years:
        rest = holidays.China(years=year)
        for day, name in rest.items():
            assert not calendar.is_working_day(day), f"{day} ({name}) is a rest day"
            moved = re.search(r"substituted from (\d\d)/(\d\d)/(\d{4})", name)
            if moved:  # the weekend day worked instead of it (调休)
                month, dom, y = (int(g) for g in moved.groups())
                if not calendar.is_working_day(date(y, month, dom)):
                    disagree.add(date(y, month, dom))
        for day in chinese_calendar.constants.holidays:
            if day.year == year and day.isoweekday() < 6:
                assert day in rest, f"{day}: a weekday holiday only chinesecalendar knows"
    # The one known difference: the 2006 notice's make-up Saturday falls in 2005, which
    # chinesecalendar's 2005 data lacks (holidays has it). Any new difference fails here.
    assert disagree == {date(2005, 12, 31)}


def test_local_overrides_win_and_a_year_past_coverage_is_a_clear_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from workorders.official_calendar import covered_years

    local_day = date(2026, 7, 1)  # a Wednesday, a working day by the State Council
    cal = HolidayCalendar.from_mapping({"holiday": [{"name": "本市", "date": local_day}]})
    assert not cal.is_working_day(local_day)
    assert HolidayCalendar().is_working_day(local_day)
    beyond = covered_years().stop + 1  # a year no package version covers yet
    monday = date(beyond, 3, 1) + timedelta(days=(7 - date(beyond, 3, 1).weekday()) % 7)
    with caplog.at_level(logging.WARNING, logger="workorders.timelimits"):
        assert cal.is_working_day(monday) and not cal.is_working_day(monday + timedelta(days=5))
    assert f"not {beyond}" in caplog.text and "chinesecalendar" in caplog.text
