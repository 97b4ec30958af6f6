"""The seats file: parsing, refusals with line and reason, PINs, PJSIP/queues rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.pjsip import render_pjsip, render_queuerules, render_queues
from agents.seats import SeatsError, hash_pin, load_seats, parse_seats, verify_pin
from queueing.rules import RoutingRules

REPO = Path(__file__).resolve().parent.parent

BASE = """languages = ["zh", "en"]
[defaults]
wrap_up_s = 12
[skills.report]
wrap_up_s = 30
[skills.english]
[[seat]]
extension = "8001"
name = "Wang Fang"
pin = "1234"
languages = ["zh"]
skills = { report = 1 }
[[seat]]
extension = "8002"
pin = "5678"
languages = ["zh", "en"]
skills = { report = 4, english = 2 }
wrap_up_s = 5
"""


def test_default_seats_file_loads() -> None:
    seats = load_seats(REPO / "agents" / "seats.toml")
    assert len(seats.seats) == 6
    assert {s.name for s in seats.skills} >= {"report", "consultation", "business", "english"}
    assert all(seat.extension.startswith("80") for seat in seats.seats)


def test_parse_and_wrap_up_resolution() -> None:
    seats = parse_seats(BASE)
    first, second = seats.seats
    assert first.skill_levels == {"report": 1} and second.languages == ("zh", "en")
    assert seats.wrap_up_for(first, "report") == 30  # the skill's
    assert seats.wrap_up_for(first, "english") == 12  # the default
    assert seats.wrap_up_for(second, "report") == 5  # the seat's own wins
    assert first.check_pin("1234") and not first.check_pin("1235")


def _error(text: str) -> SeatsError:
    with pytest.raises(SeatsError) as info:
        parse_seats(text, source="seats.toml")
    return info.value


def test_duplicate_extension_refused_with_line() -> None:
    err = _error(BASE.replace('extension = "8002"', 'extension = "8001"'))
    assert err.line == 14 and "duplicate extension 8001" in err.reason
    assert str(err).startswith("seats.toml:14:")


def test_unknown_skill_refused_with_line() -> None:
    err = _error(BASE.replace("english = 2", "dialect = 2"))
    assert err.line == 17 and "unknown skill 'dialect'" in err.reason


@pytest.mark.parametrize("level", ["0", "11", '"3"', "true"])
def test_bad_level_refused(level: str) -> None:
    err = _error(BASE.replace("report = 1 }", f"report = {level} }}"))
    assert err.line == 12 and "report" in err.reason


def test_unknown_language_and_field_refused() -> None:
    assert (
        "unknown language 'fr'"
        in _error(BASE.replace('["zh", "en"]\nskills', '["fr"]\nskills')).reason
    )
    err = _error(BASE.replace('name = "Wang Fang"', 'nmae = "Wang Fang"'))
    assert err.line == 9 and "unknown seat field 'nmae'" in err.reason


def test_missing_pin_and_bad_toml_refused() -> None:
    assert "no pin" in _error(BASE.replace('pin = "1234"\n', "")).reason
    assert _error(BASE + "[[seat]\n").line == 19
    assert "not both" in _error(BASE.replace('pin = "1234"', 'pin = "1234"\npin_hash = "x"')).reason


def test_pin_hash_round_trip() -> None:
    stored = hash_pin("24680", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$")
    assert verify_pin(stored, "24680") and not verify_pin(stored, "24681")
    assert not verify_pin("md5$abc", "24680")
    with pytest.raises(ValueError):
        hash_pin("12")


def test_render_pjsip_one_endpoint_auth_and_aor_per_seat() -> None:
    seats = parse_seats(BASE)
    conf = render_pjsip(seats, {"8001": "s3cret-password-1", "8002": "s3cret-password-2"})
    assert conf.count("type=endpoint") == 2 and conf.count("type=aor") == 2
    assert (
        "[8001-auth]\ntype=auth\nauth_type=userpass\nusername=8001\npassword=s3cret-password-1"
        in conf
    )
    assert conf.count("max_contacts=1\nremove_existing=yes") == 2
    assert 'callerid="Wang Fang" <8001>' in conf
    with pytest.raises(ValueError):
        render_pjsip(seats, {"8001": "s3cret-password-1"})
    with pytest.raises(ValueError):
        render_pjsip(seats, {"8001": "short", "8002": "bad;password\n"})


def test_render_queues_members_per_skill_with_band_penalty() -> None:
    conf = render_queues(parse_seats(BASE), RoutingRules())
    report = conf.split("[hotline-report]")[1].split("[hotline-english]")[0]
    assert "member => PJSIP/8001,0,Wang Fang,PJSIP/8001" in report
    assert "member => PJSIP/8002,1,Seat 8002,PJSIP/8002" in report  # level 4: second band
    assert "wrapuptime=30" in report and "strategy=leastrecent" in report
    english = conf.split("[hotline-english]")[1]
    assert "PJSIP/8002,0" in english and "PJSIP/8001" not in english
    rules = render_queuerules(RoutingRules())
    assert "[hotline-relax]" in rules and "penaltychange => 60,2,0" in rules
