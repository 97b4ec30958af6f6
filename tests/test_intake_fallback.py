"""A call answered by Asterisk's own Queue() fallback is recorded by the dialplan and drafted.

The citizen presses 1 (Mandarin) and 1 (report) and waits in the engine's ACD, where no seat
is logged in; the engine's FastAGI then goes away, so the dialplan sends the caller to
Queue(hotline-report), whose static member, a sipp seat, answers. The MixMonitor before the
queue records the conversation; the engine's own recovery pass (the same one its loop runs
every minute) drafts the recording from the call record: a complaint from that caller.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from conftest import eventually, new_caller
from seat_calls import REPORT

from hotline.engine import Hotline
from hotline.secrets import stored_secret
from intake.files import wav_duration
from sipsim.citizen import Speak, place_call
from sipsim.seat import start_seat, unregister

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def speech(workdir: Path) -> Path:
    """The citizen's voice as a phone sends it (8 kHz µ-law), for sipp's rtp_stream."""
    raw, wav = workdir / "speech-raw.wav", workdir / "speech.wav"
    text = "안녕하세요. 우리 집 앞 도로에 큰 구멍이 생겼어요. 빨리 고쳐 주세요."
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-e", "u-law", str(wav)], check=True)
    return wav


async def _waiting(hotline: Hotline, caller: str) -> bool:
    for call in await hotline.calls.recent(50):
        if call["caller_number"] == caller and call["route"] == "queue:report":
            return True
    return False


async def test_native_queue_call_is_recorded_and_drafted(hotline: Hotline, tmp_path: Path) -> None:
    s = hotline.settings
    password = stored_secret(s.data_dir, "seat-8002")  # a static member of hotline-report
    seat = await start_seat(tmp_path, "8002", password, sip_port=s.sip_port)
    caller = new_caller()
    voice = await asyncio.to_thread(speech, tmp_path)
    try:
        call = asyncio.create_task(
            place_call(
                tmp_path,
                sip_host=s.sip_host,
                sip_port=s.sip_port,
                service=s.hotline_number,
                caller=caller,
                presses=REPORT,
                speak=Speak(voice, after_ms=12_000),  # by then the native queue answered
                hold_ms=12_000,
            )  # fmt: skip
        )
        await eventually(lambda: _waiting(hotline, caller), 40, "the caller to wait in the ACD")
        await asyncio.sleep(1)
        hotline.queue_route.detached = True
        await hotline.agi.abort()
        try:
            result = await call
        finally:
            hotline.queue_route.detached = False
            await hotline.agi.start(s.agi_host, s.agi_port)
        assert result.returncode == 0, result.errors[-2000:]
        assert seat.callers() == [caller], "the native queue did not reach the seat"
    finally:
        await unregister(seat, password, sip_port=s.sip_port)
        await seat.stop()

    record = next(c for c in await hotline.calls.recent(50) if c["caller_number"] == caller)
    uniqueid = record["uniqueid"]
    listener = hotline.intake.recordings

    async def drafted() -> str | None:
        """The call's order once intake drafted its recording into it (the order itself may
        be opened earlier, when the native queue connects the seat)."""
        await listener.recover(settle_s=2)
        order = await hotline.work_orders.by_call(uniqueid)
        return order.number if order is not None and order.recording_path else None

    number = await eventually(drafted, 60, "the fallback call's work order")
    order = await hotline.work_orders.get(number)
    assert order.caller_phone == caller and order.category == "complaint"
    assert order.channel == "phone" and order.recording_path
    assert await asyncio.to_thread(wav_duration, Path(order.recording_path)) > 3
    stored = await listener.store.get(uniqueid)
    # AMI's AgentConnect named the seat the native queue connected
    assert stored is not None and (stored.skill, stored.seat) == ("report", "8002")
    assert order.seat == "8002"
