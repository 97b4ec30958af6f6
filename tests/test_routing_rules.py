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


def _seats_with_fillers(fillers: int) -> str:
    """Four seats for the report queue (zh; 8100 also en), one en only, an "other" seat, plus
    ``fillers`` seats no report caller can have (other, yue only)."""
    lines = ['languages = ["zh", "en", "yue"]', "[defaults]", "wrap_up_s = 0",
             "ring_timeout_s = 15", "[skills.report]", "[skills.other]"]  # fmt: skip
    seats = [("8100", '["zh", "en"]', "report = 2"), ("8101", '["zh"]', "report = 3"),
             ("8102", '["zh"]', "report = 1"), ("8103", '["zh"]', "report = 4"),
             ("8104", '["zh"]', "other = 1"), ("8105", '["en"]', "report = 1")]  # fmt: skip
    seats += [(f"82{n:02d}", '["yue"]', "other = 1") for n in range(fillers)]
    for ext, langs, skills in seats:
        lines += ["[[seat]]", f'extension = "{ext}"', 'pin = "1111"', f"languages = {langs}",
                  f"skills = {{ {skills} }}"]  # fmt: skip
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("fillers", [0, 20])
async def test_same_offers_with_few_or_many_seats_free(
    redis: Redis, prefix: str, fillers: int
) -> None:
    """Up to 16 free seats the routing step searches them in Lua, with more it asks the
    avail:* indexes: the same callers get the same seats either way (band, then longest idle,
    then lowest extension; the relax steps; any seat with the language; no seat twice)."""
    acd = Acd(redis, parse_seats(_seats_with_fillers(fillers)), prefix=prefix, rules=RULES)
    await acd.register_seats(now=T0)
    logins = {"8100": 1, "8101": 1, "8102": 2, "8103": 0, "8104": 3, "8105": 0}
    logins |= {f"82{n:02d}": 10 + n for n in range(fillers)}
    for ext, at in logins.items():
        await acd.login(ext, "1111", now=T0 + at)
    now = T0 + 1000

    async def step(*callers: tuple[str, str, float]) -> list[tuple[str, str, int, int]]:
        for call, language, waited in callers:
            await acd.enqueue(call, "report", language=language, now=now - waited)
        return [(a.call_id, a.seat, a.level, a.relax_step) for a in await acd.dispatch_once(now)]

    assert await step(
        ("c6", "zh", 130),
        ("c5", "zh", 70),
        ("c8", "en", 65),
        ("c1", "zh", 5),
        ("c2", "en", 4),
        ("c3", "zh", 3),
    ) == [("c6", "8100", 2, 2), ("c5", "8101", 3, 1), ("c8", "8105", 1, 1), ("c1", "8102", 1, 0)]
    # no en seat is left: c2 waits; c3 (max level 3) cannot have 8103
    assert await step(("c10", "zh", 200), ("c11", "zh", 200), ("c12", "zh", 200)) == [
        ("c10", "8103", 4, 2),
        ("c11", "8104", 0, 2),  # no report seat left: any seat with the language
    ]


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
