"""Routing rules as data, and their pure reference, without a network."""

from __future__ import annotations

import math

import pytest

from queueing.rules import (
    Candidate,
    PriorityRules,
    RelaxStep,
    RoutingRules,
    choose_seat,
    estimated_wait_s,
    queue_score,
)

ZH = frozenset({"zh"})
RULES = RoutingRules(
    steps=(
        RelaxStep(0, max_level=3),
        RelaxStep(60, max_level=10),
        RelaxStep(120, max_level=10, any_skill=True),
    )
)


def test_priority_then_fifo_scores() -> None:
    assert queue_score(2, 50) < queue_score(1, 10) < queue_score(0, 1) < queue_score(0, 2)
    with pytest.raises(ValueError):
        queue_score(10, 1)


def test_caller_priority_rules() -> None:
    p = PriorityRules()
    assert p.priority() == 0
    assert p.priority(repeat_caller=True) == 1
    assert p.priority(elderly_line=True) == 2
    assert p.priority(repeat_caller=True, elderly_line=True) == 3
    assert p.is_repeat(1000.0, 1000.0 + 23 * 3600)
    assert not p.is_repeat(1000.0, 1000.0 + 25 * 3600) and not p.is_repeat(None, 5)


def test_relax_step_by_wait() -> None:
    assert [RULES.step_at(w) for w in (0, 59.9, 60, 119, 120, 9999)] == [0, 0, 1, 1, 2, 2]


def test_lowest_band_first_then_longest_idle() -> None:
    seats = [
        Candidate("a", level=3, idle_since=50, languages=ZH),
        Candidate("b", level=1, idle_since=80, languages=ZH),
        Candidate("c", level=4, idle_since=10, languages=ZH),
    ]
    # a and b share band 1-3: the one idle longest (a) wins over the better level (b)
    assert choose_seat(RULES, seats, language="zh", wait_s=0) == "a"
    assert choose_seat(RULES, seats[2:], language="zh", wait_s=0) is None
    assert choose_seat(RULES, seats[2:], language="zh", wait_s=60) == "c"


def test_any_seat_with_the_language_last() -> None:
    seats = [
        Candidate("x", level=None, idle_since=1, languages=ZH),
        Candidate("y", level=None, idle_since=0, languages=frozenset({"en"})),
    ]
    assert choose_seat(RULES, seats, language="zh", wait_s=119) is None
    assert choose_seat(RULES, seats, language="zh", wait_s=120) == "x"
    assert choose_seat(RULES, seats, language="fr", wait_s=999) is None


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
    assert '"steps": [[0, 2, 0], [30000, 10, 1]]' in rules.to_json()
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
