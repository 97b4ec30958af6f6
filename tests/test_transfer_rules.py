"""What a seat may transfer to (queueing/transfer.py), on the shipped seats file: the desk's
targets, the softphone's #1 codes, and the dialplan they render to (asterisk-config's
hotline-transfer, checked in the rendered extensions.conf)."""

from __future__ import annotations

import pytest

from agents.seats import load_seats
from hotline.settings import PROJECT_DIR, Settings
from queueing.callback import callback_number_rule
from queueing.transfer import (
    Target,
    emergency_numbers,
    parse_target,
    render_codes,
    transfer_codes,
)

SEATS = load_seats(PROJECT_DIR / "agents" / "seats.toml")
EMERGENCY = emergency_numbers("110, 119,120,122")


@pytest.mark.parametrize(
    ("text", "target", "dialplan"),
    [
        ("queue:business", Target("queue", "business"), ("hotline-queue", "business")),
        ("seat:8003", Target("seat", "8003"), ("hotline-transfer", "seat-8003")),
        ("emergency:120", Target("emergency", "120"), ("hotline-transfer", "emergency-120")),
    ],
)
def test_targets_and_where_the_caller_goes(
    text: str, target: Target, dialplan: tuple[str, str]
) -> None:
    assert parse_target(text, SEATS, EMERGENCY) == target
    assert target.text == text
    assert target.dialplan() == dialplan


@pytest.mark.parametrize(
    "text",
    ["queue:nowhere", "seat:9999", "emergency:999", "emergency:", "phone:110", "110", "",
     "queue:", "seat:8003;x"],
)  # fmt: skip
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_target(text, SEATS, EMERGENCY)


@pytest.mark.parametrize("kind", ["three-way", "number"])
def test_a_department_number_is_dialled_only_if_the_callback_rule_would_call_it(
    kind: str,
) -> None:
    """A three-way call, or a transfer (blind or attended) to a department's number."""
    rule = callback_number_rule(Settings().callback_number_pattern)
    assert parse_target(f"{kind}:02988886666", SEATS, EMERGENCY, rule) == Target(
        kind, "02988886666"
    )
    for number in ("0012025550100", "19001234567", "110", "", "88886666;x"):
        with pytest.raises(ValueError):
            parse_target(f"{kind}:{number}", SEATS, EMERGENCY, rule)
    with pytest.raises(ValueError):  # no rule: no department numbers at all
        parse_target(f"{kind}:02988886666", SEATS, EMERGENCY)


def test_the_emergency_setting_takes_digits_only() -> None:
    assert EMERGENCY == ("110", "119", "120", "122")
    with pytest.raises(ValueError, match="not a number"):
        emergency_numbers("110,1x9")


def test_softphone_codes_cover_every_skill_seat_and_emergency_number() -> None:
    codes = transfer_codes(SEATS, EMERGENCY)
    skills = [skill.name for skill in SEATS.skills]
    assert [codes[f"*4{n}"].name for n in range(1, len(skills) + 1)] == skills
    assert {codes[seat.extension] for seat in SEATS.seats} == {
        Target("seat", seat.extension) for seat in SEATS.seats
    }
    assert [codes[number] for number in EMERGENCY] == [Target("emergency", n) for n in EMERGENCY]
    lines = render_codes(codes).splitlines()
    assert len(lines) == len(codes)
    assert "exten => *43,1,Goto(hotline-queue,business,1) ; queue:business" in lines
    assert "exten => 110,1,Goto(hotline-transfer,emergency-110,1) ; emergency:110" in lines
