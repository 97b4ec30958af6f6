"""Citizens' calls reaching seats through the engine's own wiring (sipp citizen, Asterisk,
IVR, ACD): which seat a caller reached, read from the ACD's events, and the situation the
transfer, consultation and live transcription tests start from, a caller connected to seat
8001 (:func:`caller_at_8001`)."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from pathlib import Path
from typing import Any

from conftest import eventually, new_caller

from hotline.engine import Hotline
from queueing.events import AcdEvent, read_events
from sipsim.citizen import CitizenCall, Press, SippResult, Speak, start_call

REPORT = [Press("1", 2500), Press("1", 1500)]  # Mandarin, then 1: report or complain


async def events(hotline: Hotline) -> list[AcdEvent]:
    return await read_events(hotline.acd.redis, hotline.settings.acd_prefix, count=100_000)


async def call_events(hotline: Hotline, caller: str) -> list[AcdEvent]:
    """The ACD events of the call from ``caller`` (found by its ``enter`` event)."""
    all_events = await events(hotline)
    ids = {e.call_id for e in all_events if e.type == "enter" and e.data == caller}
    return [e for e in all_events if e.call_id in ids]


async def connected_seat(hotline: Hotline, caller: str) -> str:
    async def probe() -> str | None:
        return next((e.seat for e in await call_events(hotline, caller) if e.type == "connect"),
                    None)  # fmt: skip

    seat: str = await eventually(probe, 60, f"the call from {caller} to reach a seat")
    return seat


async def tone(workdir: Path, seconds: int = 60) -> Speak:
    """A caller's voice that is a 440 Hz tone from the moment the keys are pressed: sound for
    every moment the caller is bridged with somebody."""
    voice = workdir / "voice.wav"
    sox = await asyncio.create_subprocess_exec(
        "sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(voice), "synth", str(seconds),
        "sine", "440")  # fmt: skip
    assert await sox.wait() == 0
    return Speak(voice, 200)


class CallAt8001:
    """A citizen's call to seat 8001 under way: awaiting it waits until the citizen hangs up
    (after the call's hold, or at once after :meth:`hang_up`) and fails unless sipp's
    scenario completed."""

    def __init__(self, citizen: CitizenCall, caller: str) -> None:
        self.citizen = citizen
        self.caller = caller

    async def _ended(self) -> SippResult:
        result = await self.citizen
        failure = (result.errors or result.stdout)[-2500:]
        assert result.returncode == 0, f"sipp citizen {self.caller} failed:\n{failure}"
        return result

    def __await__(self) -> Generator[Any, None, SippResult]:
        return self._ended().__await__()

    async def hang_up(self) -> SippResult:
        """The citizen hangs up now rather than at the end of the call's hold."""
        self.citizen.tell_to_hang_up()
        return await self

    def done(self) -> bool:
        return self.citizen.done()

    def cancel(self) -> None:
        self.citizen.cancel()


async def caller_at_8001(
    hotline: Hotline, workdir: Path, hold_ms: int, *, speak: Speak | None = None
) -> tuple[str, str, CallAt8001]:
    """A sipp citizen who chose report and talks to seat 8001 (registered and logged in by
    the test), ``speak`` after the keys (a cued one once the seat answered): the caller's
    number, the call id and the running call, which hangs up after ``hold_ms`` (at the
    latest)."""
    s = hotline.settings
    caller = new_caller()
    citizen = await start_call(
        workdir, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=caller, presses=REPORT, hold_ms=hold_ms, speak=speak,
    )  # fmt: skip
    call = CallAt8001(citizen, caller)
    try:
        assert await connected_seat(hotline, caller) == "8001"
    except BaseException:
        call.cancel()
        raise
    if speak is not None and speak.cued:
        citizen.speak_now()  # bridged with the seat now: every word is heard there
    return caller, (await call_events(hotline, caller))[0].call_id, call
