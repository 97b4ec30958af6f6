"""Routing rules: the data (validation, the JSON the Lua reads) without a network, and how
the ACD's Lua applies them (level bands, longest idle, relax steps) in the test Redis."""

from __future__ import annotations

import json
import math

import pytest
from redis.asyncio import Redis

from agents.seats import parse_seats
from queueing.acd import Acd
from queueing.rules import PriorityRules, RelaxStep, RoutingRules, estimated_wait_s

T0 = 1_800_000_000.0
RULES = RoutingRules(
    steps=(
        RelaxStep(0, max_level=3),
        RelaxStep(60, max_level=10),
        RelaxStep(120, max_level=10, any_skill=True),
    )
)
A, B, C, X, Y = "8101", "8102", "8103", "8104", "8105"  # levels 3, 1, 4 in report; X, Y none
SEATS = """
languages = ["zh", "en"]
[defaults]
wrap_up_s = 0
ring_timeout_s = 15
[skills.report]
[skills.other]
[[seat]]
extension = "8101"
pin = "1111"
languages = ["zh"]
skills = { report = 3 }
[[seat]]
extension = "8102"
pin = "1111"
languages = ["zh"]
skills = { report = 1 }
[[seat]]
extension = "8103"
pin = "1111"
languages = ["zh"]
skills = { report = 4 }
[[seat]]
extension = "8104"
pin = "1111"
languages = ["zh"]
skills = { other = 1 }
[[seat]]
extension = "8105"
pin = "1111"
languages = ["en"]
skills = { other = 1 }
"""


async def _acd(redis: Redis, prefix: str, rules: RoutingRules, *logins: tuple[str, float]) -> Acd:
    """An ACD under ``prefix`` with ``rules``; each seat logged in at its time (= idle since)."""
    acd = Acd(redis, parse_seats(SEATS), prefix=prefix, rules=rules)
    await acd.register_seats(now=T0)
    for ext, at in logins:
        await acd.login(ext, "1111", now=at)
    return acd


async def _seat_for(acd: Acd, call: str, *, waited_s: float, language: str = "zh") -> str | None:
    """The seat the Lua offers a report caller who waited ``waited_s``; None if nobody.
    The offer is withdrawn afterwards (the caller hangs up), the seats keep their idle order."""
    await acd.enqueue(call, "report", language=language, now=T0 + 1000)
    offers = await acd.dispatch_once(now=T0 + 1000 + waited_s)
    await acd.cancel(call, now=T0 + 1000 + waited_s)
    return offers[0].seat if offers else None


def test_caller_priority_rules() -> None:
    p = PriorityRules()
    assert p.priority() == 0
    assert p.priority(repeat_caller=True) == 1
    assert p.priority(elderly_line=True) == 2
    assert p.priority(repeat_caller=True, elderly_line=True) == 3
    assert p.is_repeat(1000.0, 1000.0 + 23 * 3600)
    assert not p.is_repeat(1000.0, 1000.0 + 25 * 3600) and not p.is_repeat(None, 5)


async def test_lowest_band_first_then_longest_idle(redis: Redis, prefix: str) -> None:
    acd = await _acd(redis, prefix, RULES, (C, T0 + 10), (A, T0 + 50), (B, T0 + 80))
    # A and B share band 1-3: the one idle longest (A) wins over the better level (B)
    assert await _seat_for(acd, "c1", waited_s=0) == A
    await acd.pause(A, "break", now=T0 + 1001)
    await acd.pause(B, "break", now=T0 + 1001)
    # C (level 4) is past the first step's max level 3 until the wait reaches 60 s
    assert await _seat_for(acd, "c2", waited_s=59.999) is None
    assert await _seat_for(acd, "c3", waited_s=60) == C


async def test_any_seat_with_the_language_last(redis: Redis, prefix: str) -> None:
    acd = await _acd(redis, prefix, RULES, (X, T0 + 1), (Y, T0))
    assert await _seat_for(acd, "c1", waited_s=119.999) is None
    assert await _seat_for(acd, "c2", waited_s=120) == X  # Y idles longer but speaks en
    assert await _seat_for(acd, "c3", waited_s=999, language="fr") is None


async def test_the_lua_applies_the_bands_it_is_given(redis: Redis, prefix: str) -> None:
    """Bands 1-2 then 3-10: B (level 1) before A (level 3), however long A has idled."""
    rules = RoutingRules.from_mapping(
        {"bands": [[1, 2], [3, 10]], "relax": [{"after_s": 0, "max_level": 10}]}
    )
    acd = await _acd(redis, prefix, rules, (A, T0), (B, T0 + 500))
    assert await _seat_for(acd, "c1", waited_s=0) == B
    default = await _acd(redis, prefix + "d:", RULES, (A, T0), (B, T0 + 500))
    assert await _seat_for(default, "c2", waited_s=0) == A  # 1-3 is one band there


def test_rules_from_mapping_and_validation() -> None:
    rules = RoutingRules.from_mapping(
        {
            "bands": [[1, 2], [3, 10]],
            "relax": [{"after_s": 0, "max_level": 2}, {"after_s": 30, "any_skill": True}],
            "priority": {"elderly_line": 5},
        }
    )
    assert rules.band_of(2) == 0 and rules.band_of(3) == 1
    assert rules.steps[1] == RelaxStep(30, 10, True) and rules.priority.elderly_line == 5
    assert json.loads(rules.to_json()) == {
        "bands": [{"lo": 1, "hi": 2}, {"lo": 3, "hi": 10}],
        "steps": [
            {"after_ms": 0, "max_level": 2, "any_skill": False},
            {"after_ms": 30000, "max_level": 10, "any_skill": True},
        ],
    }
    with pytest.raises(ValueError):
        RoutingRules(steps=(RelaxStep(10),))
    with pytest.raises(ValueError):
        RoutingRules(steps=(RelaxStep(0), RelaxStep(60), RelaxStep(30)))
    with pytest.raises(ValueError):
        RoutingRules(bands=((1, 3), (5, 10)))


def test_estimated_wait() -> None:
    assert estimated_wait_s(0, 3, 180) == 0
    assert estimated_wait_s(6, 3, 180) == 360
    assert math.isinf(estimated_wait_s(1, 0, 180))
