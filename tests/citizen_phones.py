"""The citizen's phone as the engine's outbound calls reach it: a sipp UAS at
``CALLBACK_PORT``, where the test engine's ``callback_dial`` points (queue callbacks and
revisit calls alike), logging every message it receives."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from conftest import CALLBACK_PORT

from sipsim.seat import Seat, run_uas


async def start_phone(workdir: Path, scenario: str, name: str) -> Seat:
    """Run ``scenario`` (sipp XML) as the phone; stop it with ``Seat.stop``."""
    phone = await run_uas(workdir, name, CALLBACK_PORT, scenario)
    await asyncio.sleep(0.5)
    return phone


def dialled(phone: Seat) -> list[str]:
    """The numbers in the Request-URI of each INVITE the phone received."""
    numbers = []
    for invite in phone.invites():
        match = re.match(r"INVITE sip:([^@]+)@", invite.lstrip())
        numbers.append(match.group(1) if match else "")
    return numbers
