"""The State Council's holidays and make-up working days (调休), from ``chinesecalendar``.

The schedule is published each year (usually in November, for the next year) and maintained
in the library; update the package to get a new year. A date past the library's coverage has
no official answer: :func:`official_working_day` says None and the caller decides (with a
clear warning), rather than guessing silently. ``tests/test_timelimits.py`` checks the
library against PyPI's ``holidays`` for every year both cover.
"""

from __future__ import annotations

from datetime import date
from functools import cache

import chinese_calendar
from chinese_calendar import constants

SOURCE = f"chinesecalendar {getattr(chinese_calendar, '__version__', '')}".strip()


@cache
def covered_years() -> range:
    years = {day.year for day in (*constants.holidays, *constants.workdays)}
    return range(min(years), max(years) + 1)


def official_working_day(day: date) -> bool | None:
    """Whether ``day`` is a working day by the State Council; None past the covered years."""
    if day.year not in covered_years():
        return None
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # the library's own "not covered" answer
        return None
