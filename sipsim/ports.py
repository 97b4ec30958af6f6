"""Ports of the engines the tests and the benchmarks start side by side on one machine.

Each engine gets the test bases of its SIP, AMI, FastAGI, web and AudioSocket ports moved by a
shift of its own (:data:`SHIFTS`, the one list of them) and by ``HOTLINE_TEST_PORT_OFFSET``
(:data:`PORT_OFFSET`: two test runs on one machine). tests/test_ports.py checks that no two
engines of the list share a port.
"""

from __future__ import annotations

import os

#: shifts every test and benchmark port, so two runs on one machine do not collide
PORT_OFFSET = int(os.environ.get("HOTLINE_TEST_PORT_OFFSET", "0"))

#: the ports of the engine of shift 0 (the tests' session engine), before PORT_OFFSET
BASES = {"sip_port": 5160, "ami_port": 5138, "agi_port": 4673, "web_port": 8445,
         "audiosocket_port": 9600}  # fmt: skip

#: every engine's shift, by who starts it (a test module, a benchmark)
SHIFTS = {
    "e2e": 0,  # tests/conftest.py's session engine
    "intake-kill": 40,  # tests/test_intake_kill.py, and test_transcription_jobs.py's
    "api-fuzz": 41,
    "accounts-web": 57,
    "live": 61,
    "metrics": 67,
    "recorded-prompts": 73,
    "portal": 87,
    "reports": 93,
    "wallboard-revisits": 107,
    "first-start": 113,
    "wallboard-announcements": 127,
    "wallboard-engines": 139,  # engine B beside the session engine
    "live-transcription": 151,
    "transcription-jobs": 163,
    "recorded-call": 200,
    "revisit-faults": 300,
    "revisit-faults-b": 307,  # the second engine on revisit-faults' Asterisk
    "bench-desk-pop": 400,
}


def engine_ports(shift: int) -> dict[str, int]:
    """The SIP, AMI, FastAGI, web and AudioSocket ports of the engine ``shift`` off the
    session engine's (shift 0), all moved by :data:`PORT_OFFSET` too."""
    return {name: base + shift + PORT_OFFSET for name, base in BASES.items()}
