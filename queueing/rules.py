"""Routing rules as data; the ACD applies them in Redis (``queueing/lua/dispatch.lua``).

* **Caller priority**: a higher number is served first; a repeat caller within 24 h and the
  elderly-care line rank higher. Within one priority, first come first served.
* **Level bands**: skill levels run 1-10, 1 the most proficient. Seats are grouped in bands
  (default 1-3, 4-6, 7-10); a call goes to the best band that has an available seat, and
  within that band to the seat idle the longest. Bands, rather than exact levels, keep the
  work fair: a level-2 seat idle for five minutes is not starved by a level-1 seat just freed.
* **Relaxation while waiting**: each step says, from a wait of ``after_s`` on, which levels are
  acceptable (``max_level``), or that any available seat speaking the caller's language will
  do (``any_skill``). The caller's language is never relaxed.

The Lua dispatch script receives these rules as JSON with named fields
(:meth:`RoutingRules.to_json`); the queue order (priority, then arrival) is the score
``enqueue.lua`` gives each caller. The tests drive that Lua in a real Redis.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

#: the highest caller priority (``enqueue.lua`` orders callers by ``9 - priority``)
PRIORITY_MAX = 9


@dataclass(frozen=True)
class RelaxStep:
    after_s: float
    max_level: int = 10
    any_skill: bool = False


@dataclass(frozen=True)
class PriorityRules:
    repeat_caller: int = 1
    repeat_window_s: float = 24 * 3600
    elderly_line: int = 2

    def priority(self, *, repeat_caller: bool = False, elderly_line: bool = False) -> int:
        value = (self.repeat_caller if repeat_caller else 0) + (
            self.elderly_line if elderly_line else 0
        )
        return max(0, min(PRIORITY_MAX, value))

    def is_repeat(self, last_call_at: float | None, now: float) -> bool:
        return last_call_at is not None and 0 <= now - last_call_at <= self.repeat_window_s


@dataclass(frozen=True)
class RoutingRules:
    """The one default of the routing rules: the engine's ACD and Asterisk's fallback queues
    (``agents/pjsip.py``) are given the same instance."""

    bands: tuple[tuple[int, int], ...] = ((1, 3), (4, 6), (7, 10))
    steps: tuple[RelaxStep, ...] = (
        RelaxStep(after_s=0, max_level=6),
        RelaxStep(after_s=60, max_level=10),
        RelaxStep(after_s=120, max_level=10, any_skill=True),
    )
    priority: PriorityRules = PriorityRules()
    #: average handling time assumed for the estimated wait until the ACD has measured one
    default_aht_s: float = 180.0

    def __post_init__(self) -> None:
        if not self.steps or self.steps[0].after_s != 0:
            raise ValueError("routing rules: the first relax step must start at after_s = 0")
        if any(b.after_s <= a.after_s for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError("routing rules: relax steps must have increasing after_s")
        covered = sorted(level for lo, hi in self.bands for level in range(lo, hi + 1))
        if covered != list(range(1, 11)):
            raise ValueError("routing rules: bands must cover levels 1-10 once, in order")
        if [lo for lo, _ in self.bands] != sorted(lo for lo, _ in self.bands):
            raise ValueError("routing rules: bands must be ordered from the best level")

    def band_of(self, level: int) -> int:
        for i, (lo, hi) in enumerate(self.bands):
            if lo <= level <= hi:
                return i
        raise ValueError(f"level {level} outside 1-10")

    def to_json(self) -> str:
        """What ``dispatch.lua`` reads: ``bands`` as ``{lo, hi}``, ``steps`` as
        ``{after_ms, max_level, any_skill}``."""
        return json.dumps(
            {
                "bands": [{"lo": lo, "hi": hi} for lo, hi in self.bands],
                "steps": [
                    {
                        "after_ms": int(s.after_s * 1000),
                        "max_level": s.max_level,
                        "any_skill": s.any_skill,
                    }
                    for s in self.steps
                ],
            }
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> RoutingRules:
        """From a TOML table: ``bands = [[1,3],[4,6],[7,10]]`` and
        ``[[relax]] after_s = 60, max_level = 10, any_skill = false``."""
        kwargs: dict[str, object] = {}
        if "bands" in data:
            kwargs["bands"] = tuple((int(lo), int(hi)) for lo, hi in data["bands"])  # type: ignore[attr-defined]
        if "relax" in data:
            # only the keys given: RelaxStep's own defaults fill the rest
            casts = {"after_s": float, "max_level": int, "any_skill": bool}
            kwargs["steps"] = tuple(
                RelaxStep(**{k: casts[k](v) for k, v in s.items() if k in casts})
                for s in data["relax"]  # type: ignore[attr-defined]
            )
        if "priority" in data:
            kwargs["priority"] = PriorityRules(**data["priority"])  # type: ignore[arg-type]
        if "default_aht_s" in data:
            kwargs["default_aht_s"] = float(data["default_aht_s"])  # type: ignore[arg-type]
        return cls(**kwargs)  # type: ignore[arg-type]


def estimated_wait_s(position: int, staffed_seats: int, aht_s: float) -> float:
    """Expected wait of the caller at ``position`` (1 = next).

    ``staffed_seats`` counts logged-in seats holding the skill (not only the free ones): each
    of them frees up about once per ``aht_s``, so one caller leaves the queue about every
    ``aht_s / staffed_seats``. With nobody staffed the wait is unknown: ``inf``.
    """
    if position <= 0:
        return 0.0
    if staffed_seats <= 0:
        return math.inf
    return position * aht_s / staffed_seats
