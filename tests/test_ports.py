"""The test and benchmark engines' ports (sipsim/ports.py): no two engines share one."""

from __future__ import annotations

from itertools import combinations

from sipsim.ports import SHIFTS, engine_ports


def test_no_two_engines_share_a_port() -> None:
    ports = {name: set(engine_ports(shift).values()) for name, shift in SHIFTS.items()}
    shared = [(a, b, ports[a] & ports[b]) for a, b in combinations(ports, 2) if ports[a] & ports[b]]
    assert not shared, shared
