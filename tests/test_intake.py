"""Recording listener without Asterisk: no AMI right beyond ``call`` (the dialplan records),
what it does when the model is missing or the recording is empty, corrupt or missing;
retention; the batch command's exit codes."""

from __future__ import annotations

import io
import logging
import os
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from calls.lifecycle import ConnectedCall
from hotline.database import create_schema, make_sessions
from intake.config import IntakeConfig
from intake.files import RecordingFiles, recording_files
from intake.outbox import Outbox, PendingDraft
from intake.recording import RecordingListener
from intake.retention import purge_expired
from intake.store import RecordingStore
from intake.transcription import usable_model
from pbx.ami import AmiActionError
from speech.batch import transcribe_command
from speech.transcriber import Transcript, Word
from workorders.dispatch import DispatchRules
from workorders.service import WorkOrderService
from workorders.timelimits import TimeLimits

CONNECTED = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)


class FakeAmi:
    def __init__(self, refuse: str = "") -> None:
        self.actions: list[dict[str, str]] = []
        self.refuse = refuse

    async def action(self, action: dict[str, str], *, as_list: bool = False) -> Any:
        self.actions.append(action)
        if self.refuse:
            raise AmiActionError(f"MixMonitor: {self.refuse}")
        return {"Response": "Success"}


class FakeTranscriber:
    """Stands in for the Vosk pool: one word per side, or the RecordingError Vosk would give."""

    async def transcribe(self, path: Path | str) -> Transcript:
        from speech.transcriber import read_pcm

        rate, _chunks, duration = read_pcm(path)  # raises RecordingError like the pool
        word = Word("물이" if "caller" in str(path) else "네", 0.5, 0.9, 0.9)
        return Transcript(words=(word,), text=word.text, duration=duration, sample_rate=rate)


def write_wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x01" * int(8000 * seconds))


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    await create_schema(engine)
    yield make_sessions(engine)
    await engine.dispose()


def make_listener(
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
    ami: FakeAmi,
    transcriber: FakeTranscriber | None,
) -> RecordingListener:
    config = IntakeConfig(recordings_dir=tmp_path / "recordings", recording_close_timeout_s=1.5)
    service = WorkOrderService(sessions, DispatchRules.load(), TimeLimits.load())
    outbox = Outbox(config.outbox)
    outbox.open()
    return RecordingListener(config, ami, RecordingStore(sessions), service, transcriber, outbox)


def a_call(call_id: str = "1772616600.42") -> ConnectedCall:
    return ConnectedCall(
        call_id=call_id,
        caller_channel="PJSIP/citizens-00000001",
        caller_number="13900001111",
        seat="8001",
        seat_channel="PJSIP/8001-00000002",
        skill="general",
        connected_at=CONNECTED,
        ended_at=CONNECTED + timedelta(minutes=2),
    )


def files_of(listener: RecordingListener, call: ConnectedCall) -> RecordingFiles:
    return listener.files_of(call.call_id, call.connected_at)


def close_files(listener: RecordingListener, call: ConnectedCall, seconds: float) -> None:
    """What Asterisk's MixMonitor leaves at hangup: three closed WAVs."""
    for path in files_of(listener, call).audio:
        write_wav(path, seconds)


async def test_intake_needs_no_ami_system_right_and_files_lie_under_the_day(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ami = FakeAmi()
    listener = make_listener(tmp_path, sessions, ami, FakeTranscriber())
    call = a_call()
    await listener.connected(call)
    assert ami.actions == []  # the dialplan starts MixMonitor (AMI's MixMonitor needs system)
    day = tmp_path / "recordings" / "2026" / "03" / "04"
    files = files_of(listener, call)
    assert files.mix == day / f"{call.call_id}-mix.wav"
    assert files.caller == day / f"{call.call_id}-caller.wav"
    assert files.operator == day / f"{call.call_id}-operator.wav"
    close_files(listener, call, seconds=3.0)
    await listener.finished(call)
    result = await listener.wait_done(call.call_id, timeout=10)
    assert ami.actions == [{"Action": "StopMixMonitor", "Channel": call.caller_channel}]
    assert result is not None and result.duration_s == 3.0
    assert result.transcript is not None
    assert [t["speaker"] for t in result.transcript["turns"]] == ["caller", "operator"]
    assert call.call_id not in listener.outbox  # landed: the outbox file is gone
    stored = await listener.store.get(call.call_id)
    assert stored is not None and stored.status == "transcribed" and stored.duration_s == 3.0
    assert stored.ended_at == call.ended_at and stored.seat == "8001"


async def test_without_a_model_the_call_is_recorded_and_drafted(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="intake.transcription"):
        assert usable_model(IntakeConfig(recordings_dir=tmp_path)) is None
        missing = tmp_path / "vosk-model-small-cn-0.22"
        assert usable_model(IntakeConfig(recordings_dir=tmp_path, vosk_model_dir=missing)) is None
    assert "no Vosk model configured" in caplog.text and str(missing) in caplog.text

    listener = make_listener(tmp_path, sessions, FakeAmi(), transcriber=None)
    call = a_call()
    await listener.connected(call)
    close_files(listener, call, seconds=2.0)
    result = await listener.intake(PendingDraft.of_call(call))
    order = await listener.drafter.get(result.work_order_number)  # type: ignore[attr-defined]
    assert order.caller_phone == "13900001111" and order.transcript == ""
    assert order.recording_path == str(files_of(listener, call).mix)
    stored = await listener.store.get(call.call_id)
    assert stored is not None and stored.status == "recorded" and stored.duration_s == 2.0


@pytest.mark.parametrize("damage", ["empty", "corrupt", "missing"])
async def test_bad_recording_is_logged_and_the_order_keeps_its_data(
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    listener = make_listener(tmp_path, sessions, FakeAmi(), FakeTranscriber())
    call = a_call(f"1772616600.{len(damage)}")
    await listener.connected(call)
    files = files_of(listener, call)
    files.mix.parent.mkdir(parents=True, exist_ok=True)
    for path in files.audio:
        if damage == "empty":
            path.write_bytes(b"")
        elif damage == "corrupt":
            path.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with caplog.at_level(logging.WARNING):
        result = await listener.intake(PendingDraft.of_call(call))
    assert call.call_id in caplog.text
    assert result.duration_s is None and result.transcript is None and result.problems
    order = await listener.drafter.get(result.work_order_number)  # type: ignore[attr-defined]
    assert order.caller_phone == "13900001111" and order.call_id == call.call_id
    assert order.recording_path == ""
    stored = await listener.store.get(call.call_id)
    assert stored is not None and stored.status == "failed" and stored.error


async def test_a_call_without_recording_files_is_still_drafted(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    listener = make_listener(tmp_path, sessions, FakeAmi(refuse="No such channel"), None)
    call = a_call()
    await listener.connected(call)
    result = await listener.intake(PendingDraft.of_call(call))  # waits for the close deadline
    assert result.work_order_number and result.duration_s is None
    assert any("not a readable WAV" in problem for problem in result.problems)


def test_recording_files_refuse_unsafe_ids(tmp_path: Path) -> None:
    for bad in ("", "../etc", ".hidden", "a/b"):
        with pytest.raises(ValueError):
            recording_files(tmp_path, bad, CONNECTED)


async def test_retention_deletes_old_recordings_and_logs_them(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    listener = make_listener(tmp_path, sessions, FakeAmi(), None)
    old, recent = a_call("1772616600.1"), a_call("1772616600.2")
    recent = ConnectedCall(**{**recent.__dict__, "connected_at": CONNECTED + timedelta(days=35),
                              "ended_at": CONNECTED + timedelta(days=35, minutes=1)})  # fmt: skip
    for call in (old, recent):
        await listener.connected(call)
        close_files(listener, call, seconds=0.5)
        await listener.intake(PendingDraft.of_call(call))
    stray = tmp_path / "recordings" / "2026" / "02" / "01" / "crashed-mix.wav"
    write_wav(stray, 0.1)
    config = IntakeConfig(recordings_dir=tmp_path / "recordings", recording_retention_days=30)
    with caplog.at_level(logging.INFO, logger="intake.retention"):
        report = await purge_expired(listener.store, config, now=CONNECTED + timedelta(days=40))
    assert report.calls == (old.call_id,)
    assert set(report.files) == {*files_of(listener, old).audio, stray}
    assert all(not p.exists() for p in report.files)
    assert all(p.exists() for p in files_of(listener, recent).audio)
    assert not stray.parent.exists()
    assert f"retention: deleted {files_of(listener, old).mix}" in caplog.text
    stored = await listener.store.get(old.call_id)
    assert stored is not None and stored.status == "deleted" and stored.deleted_at is not None
    off = IntakeConfig(recordings_dir=tmp_path / "recordings")
    assert (await purge_expired(listener.store, off)).cutoff is None


def test_batch_command_exit_codes(tmp_path: Path) -> None:
    out = io.StringIO()
    assert transcribe_command(tmp_path, None, 1, out) == 2
    assert "vosk_model_dir" in out.getvalue()
    assert transcribe_command(tmp_path, tmp_path / "no-model", 1, out) == 2
    assert "no such directory" in out.getvalue()
    assert os.path.isdir(tmp_path)


async def test_intake_opens_without_a_model_and_closes(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    from intake.service import Intake

    service = WorkOrderService(sessions, DispatchRules.load(), TimeLimits.load())
    config = IntakeConfig(recordings_dir=tmp_path / "recordings", recording_close_timeout_s=1)
    with caplog.at_level(logging.INFO):
        transcriber = None if usable_model(config) is None else FakeAmi()  # no model: None
        intake = Intake.open(config, FakeAmi(), sessions, service, transcriber)
    assert intake.recordings.transcriber is None and "no Vosk model configured" in caplog.text
    call = a_call()
    await intake.recordings.connected(call)
    close_files(intake.recordings, call, seconds=1.0)
    await intake.recordings.finished(call)
    await intake.close(timeout=10)  # drains the running intake
    assert (await intake.store.get(call.call_id)).work_order_number  # type: ignore[union-attr]


def test_intake_takes_its_transcription_settings_from_the_hotlines() -> None:
    """Where workers may lag behind (a backlog), intake waits longer for a transcript."""
    from hotline.settings import Settings
    from hotline.wiring import intake_config

    settings = Settings.load(environ={"HOTLINE_TRANSCRIPTION_TIMEOUT_S": "7200",
                                      "HOTLINE_VOSK_MODEL_DIR": "/models/cn"})  # fmt: skip
    config = intake_config(settings)
    assert config.transcription_timeout_s == 7200.0 and config.vosk_model_dir == Path("/models/cn")
    assert intake_config(Settings()).transcription_timeout_s == 600.0
