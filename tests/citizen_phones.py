"""The citizen's phone as the engine's outbound calls reach it: a sipp UAS at
``CALLBACK_PORT``, where the test engine's ``callback_dial`` points (queue callbacks and
revisit calls alike), logging every message it receives."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from conftest import CALLBACK_PORT

from sipsim.citizen import free_media_port
from sipsim.seat import Seat


async def start_phone(workdir: Path, scenario: str, name: str) -> Seat:
    """Run ``scenario`` (sipp XML) as the phone; stop it with ``Seat.stop``."""
    phone = Seat(name, CALLBACK_PORT, workdir)
    path = workdir / f"{name}.xml"
    path.write_text(scenario, encoding="ISO-8859-1")
    phone.process = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(path), "-i", "127.0.0.1", "-p", str(CALLBACK_PORT),
        "-mi", "127.0.0.1", "-mp", str(free_media_port()), "-nostdin",
        "-trace_msg", "-message_file", str(phone.trace),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(0.5)
    return phone


def dialled(phone: Seat) -> list[str]:
    """The numbers in the Request-URI of each INVITE the phone received."""
    numbers = []
    for invite in phone.invites():
        match = re.match(r"INVITE sip:([^@]+)@", invite.lstrip())
        numbers.append(match.group(1) if match else "")
    return numbers
