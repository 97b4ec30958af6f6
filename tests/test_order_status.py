"""What a caller hears after 3 + number + #: the shipped texts, in each menu language."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from ivr.menu import load_menu
from ivr.order_status import DEFAULT_FILE, StatusTextError, StatusTexts
from workorders.service import PhoneStatus
from workorders.states import LABELS_FILE, LABELS_ZH, State

MENU = Path(__file__).resolve().parent.parent / "ivr" / "menu.toml"
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


@pytest.fixture(scope="module")
def texts() -> StatusTexts:
    return StatusTexts.load(DEFAULT_FILE, languages=load_menu(MENU).languages, states=State)


def test_english_callers_hear_no_chinese_for_any_state(texts: StatusTexts) -> None:
    for state in State:
        facts = PhoneStatus(state, "20261123000001", date(2026, 12, 4))
        english = texts.speak(facts, "en")
        assert not CJK.search(english), english
        assert CJK.search(texts.speak(facts, "zh"))


def test_callers_hear_the_state_names_the_web_pages_show(texts: StatusTexts) -> None:
    for state in State:
        facts = PhoneStatus(state, None, None)
        assert texts.speak(facts, "zh") == f"您查询的工单{LABELS_ZH[state]}。"


def test_a_dispatched_order_with_its_time_limit(texts: StatusTexts) -> None:
    facts = PhoneStatus(State.DISPATCHED, None, date(2026, 11, 30))
    assert texts.speak(facts, "zh") == "您查询的工单已派单，待部门签收，办理期限2026年11月30日。"
    assert texts.speak(facts, "en") == (
        "Your work order is with a department, waiting to be accepted, due by November 30, 2026."
    )


def test_a_merged_order_names_the_other_digit_by_digit(texts: StatusTexts) -> None:
    facts = PhoneStatus(State.MERGED, "2026", None)
    assert texts.speak(facts, "en") == (
        "Your work order is handled together with another order, merged into work order 2 0 2 6."
    )


def test_a_language_or_state_without_words_is_refused_at_start(tmp_path: Path) -> None:
    labels = tmp_path / "state_labels.toml"
    labels.write_text(
        LABELS_FILE.read_text(encoding="utf-8").replace('en = "being handled"\n', ""),
        encoding="utf-8",
    )
    with pytest.raises(StatusTextError, match=r"\[states.in_progress\] has no text for 'en'"):
        StatusTexts.load(DEFAULT_FILE, languages=("zh", "en"), states=State, labels=labels)
    text = DEFAULT_FILE.read_text(encoding="utf-8")
    broken = tmp_path / "order_status.toml"
    with pytest.raises(StatusTextError, match=r"\[sentence\] has no text for 'ko'"):
        StatusTexts.load(DEFAULT_FILE, languages=("zh", "ko"), states=State)
    with pytest.raises(StatusTextError, match="no such work-order state"):
        StatusTexts.load(DEFAULT_FILE, languages=("zh",), states=["registered"])
    broken.write_text(text.replace("{state}{merged}", "{status}{merged}"), encoding="utf-8")
    with pytest.raises(StatusTextError, match="unknown placeholder 'status'"):
        StatusTexts.load(broken, languages=("zh", "en"), states=State)
