"""The revisit schedule's rules, pure: first call the next working day (the holiday calendar)
inside calling hours, or at once; retries within calling hours; who goes to the manual list;
how a call's end is classified; the summary's words."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr.menu import load_menu
from revisit.rules import (
    CallingHours,
    ManualReason,
    Outcome,
    RevisitPolicy,
    RevisitState,
    after_attempt,
    cut,
    first_due,
    in_hours,
    manual_reason,
    open_at,
    outcome_of_hangup,
    retry_due,
)
from revisit.texts import DEFAULT_FILE, RevisitTextError, RevisitTexts
from workorders.dispatch import CATEGORIES
from workorders.timelimits import HolidayCalendar

BEIJING = ZoneInfo("Asia/Shanghai")
CALENDAR = HolidayCalendar.load()
WORKING = CALENDAR.is_working_day
POLICY = RevisitPolicy()


def local(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BEIJING)


def test_first_call_is_the_next_working_day_at_opening() -> None:
    # Reviewed on Wednesday 30 September 2026 afternoon: National Day week is off, and the
    # calendar makes Thursday 8 October the next working day.
    due = first_due(local(2026, 9, 30, 15), POLICY, WORKING)
    assert due == local(2026, 10, 8, 9).astimezone(UTC)
    # Reviewed on a Friday: Monday, 09:00.
    assert first_due(local(2026, 11, 27, 11), POLICY, WORKING) == local(2026, 11, 30, 9)
    # Saturday 10 October 2026 is a make-up working day, so Friday's order is called then.
    assert first_due(local(2026, 10, 9, 18), POLICY, WORKING) == local(2026, 10, 10, 9)


def test_at_once_waits_only_for_calling_hours() -> None:
    policy = RevisitPolicy(at_once=True)
    assert first_due(local(2026, 11, 23, 10, 30), policy, WORKING) == local(2026, 11, 23, 10, 30)
    assert first_due(local(2026, 11, 23, 20, 0), policy, WORKING) == local(2026, 11, 24, 9)
    assert first_due(local(2026, 11, 24, 7, 59), policy, WORKING) == local(2026, 11, 24, 9)
    assert first_due(local(2026, 10, 3, 12), policy, WORKING) == local(2026, 10, 8, 9)
    every_day = RevisitPolicy(at_once=True, hours=CallingHours.parse("08:30-21:00", "all"))
    assert first_due(local(2026, 10, 3, 12), every_day, WORKING) == local(2026, 10, 3, 12)
    assert open_at(local(2026, 10, 3, 21), every_day, WORKING) == local(2026, 10, 4, 8, 30)


def test_calling_hours_bounds() -> None:
    assert in_hours(local(2026, 11, 23, 9), POLICY, WORKING)
    assert in_hours(local(2026, 11, 23, 19, 59), POLICY, WORKING)
    assert not in_hours(local(2026, 11, 23, 20), POLICY, WORKING)
    assert not in_hours(local(2026, 11, 23, 8, 59), POLICY, WORKING)
    assert not in_hours(local(2026, 11, 28, 12), POLICY, WORKING)  # a Saturday
    assert CallingHours.parse("09:00-20:00") == CallingHours(time(9), time(20), True)
    for bad in ("9-20", "20:00-09:00", "09:00"):
        with pytest.raises(ValueError):
            CallingHours.parse(bad)
    with pytest.raises(ValueError):
        CallingHours.parse("09:00-20:00", "weekends")


def test_retries_are_two_hours_apart_within_calling_hours() -> None:
    assert retry_due(local(2026, 11, 23, 10), POLICY, WORKING) == local(2026, 11, 23, 12)
    # 19:00 + 2 h is past closing: the next working day's opening.
    assert retry_due(local(2026, 11, 27, 19), POLICY, WORKING) == local(2026, 11, 30, 9)
    short = RevisitPolicy(retry_interval=timedelta(seconds=5))
    assert retry_due(local(2026, 11, 23, 10), short, WORKING) == local(
        2026, 11, 23, 10
    ) + timedelta(seconds=5)


def test_after_each_attempt() -> None:
    assert after_attempt(1, Outcome.COMPLETED, POLICY) is RevisitState.DONE
    assert after_attempt(1, Outcome.NO_SURVEY, POLICY) is RevisitState.MANUAL
    for outcome in (Outcome.BUSY, Outcome.NO_ANSWER, Outcome.FAILED, Outcome.HUNG_UP):
        assert after_attempt(1, outcome, POLICY) is RevisitState.DUE
        assert after_attempt(2, outcome, POLICY) is RevisitState.DUE
        assert after_attempt(3, outcome, POLICY) is RevisitState.MANUAL
    assert after_attempt(3, Outcome.INTERRUPTED, POLICY) is RevisitState.DUE


def test_hangup_causes() -> None:
    assert outcome_of_hangup(17, answered=False) is Outcome.BUSY
    assert outcome_of_hangup(19, answered=False) is Outcome.NO_ANSWER
    assert outcome_of_hangup(21, answered=False) is Outcome.NO_ANSWER
    assert outcome_of_hangup(34, answered=False) is Outcome.FAILED
    assert outcome_of_hangup(None, answered=False) is Outcome.FAILED
    assert outcome_of_hangup(16, answered=True) is Outcome.HUNG_UP


def test_who_is_never_called() -> None:
    def dial(number: str) -> bool:
        return number.startswith("139")

    def why(phone: str = "13900001111", confidential: bool = False, **attrs: object) -> object:
        return manual_reason(
            phone=phone, confidential=confidential, attributes=attrs, may_dial=dial
        )

    assert why() is None
    assert why(no_revisit=True) is ManualReason.OPTED_OUT
    assert why(confidential=True) is ManualReason.OPTED_OUT  # confidential: opted out by default
    assert why(confidential=True, no_revisit=False) is None  # ...unless they agreed
    assert why(phone="") is ManualReason.NO_VOICE_NUMBER
    assert why(voice=False) is ManualReason.NO_VOICE_NUMBER  # SMS only
    assert why(phone="0044123456") is ManualReason.NO_VOICE_NUMBER  # not a number we dial


def test_summary_is_cut_and_read_digit_by_digit() -> None:
    assert cut("短", 10) == "短"
    reply = "已责令施工方夜间停工，并安排城管队员每晚巡查，发现违规施工将依法处罚，请您继续监督。"
    short = cut(reply, 30)
    assert len(short) <= 30 and reply.startswith(short) and short.endswith("巡查")
    assert cut("word " * 40, 20) == "word word word word"
    menu = load_menu(DEFAULT_FILE.with_name("menu.toml"))
    texts = RevisitTexts.load(DEFAULT_FILE, languages=menu.languages, categories=CATEGORIES)
    zh = texts.summary_text("zh", "20261123000001", "complaint", reply, 30)
    assert "2 0 2 6 1 1 2 3 0 0 0 0 0 1" in zh and "投诉" in zh and short in zh
    assert reply not in zh
    en = texts.summary("en", "20261123000001", "help", "Fixed.")
    assert "request for help" in en.text and en.language == "en"
    assert texts.language("en") == "en" and texts.language(None) == "zh"
    assert texts.language("fr") == "zh"


def test_texts_file_is_checked(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "revisit.toml"
    text = DEFAULT_FILE.read_text(encoding="utf-8")
    path.write_text(text.replace('en = "If the matter', 'xx = "If the matter'), encoding="utf-8")
    with pytest.raises(RevisitTextError, match=r"\[resolved\] has no text for 'en'"):
        RevisitTexts.load(path, languages=("zh", "en"), categories=CATEGORIES)
    path.write_text(text.replace("{reply}", "{answer}"), encoding="utf-8")
    with pytest.raises(RevisitTextError, match="placeholder"):
        RevisitTexts.load(path, languages=("zh", "en"), categories=CATEGORIES)
    with pytest.raises(RevisitTextError, match="categories.unknown"):
        RevisitTexts.load(DEFAULT_FILE, languages=("zh",), categories=(*CATEGORIES, "unknown"))


def test_working_day_used_is_the_calendar() -> None:
    assert not WORKING(date(2026, 10, 5)) and WORKING(date(2026, 10, 10))
