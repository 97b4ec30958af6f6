"""Durable drafting: a call that ended is on disk before anything else, and becomes exactly one
work order however often the database, the engine or the transcription fails on the way.

The database-down test runs the engine's intake against a real PostgreSQL reached through a
TCP relay the test stops and starts: while it is stopped the database is unreachable
(connection refused), exactly as a PostgreSQL server that is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import uuid
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import eventually
from panoramisk.message import Message
from sql_databases import PG_URL
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from calls.lifecycle import ConnectedCall
from hotline.database import create_schema, make_sessions
from intake.config import IntakeConfig
from intake.outbox import Outbox, PendingDraft
from intake.recording import RecordingListener
from intake.store import RecordingStore
from workorders.dispatch import DispatchRules
from workorders.models import WorkOrderRow
from workorders.service import WorkOrderService
from workorders.timelimits import TimeLimits

CONNECTED = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)


class StatusAmi:
    """AMI as intake uses it: StopMixMonitor, and Status listing the channels still up."""

    def __init__(self, live: tuple[str, ...] = ()) -> None:
        self.live = live

    async def action(self, action: dict[str, str], *, as_list: bool = False) -> Any:
        if action["Action"] == "Status":
            return [Message({"Event": "Status", "Uniqueid": u}) for u in self.live] + [
                Message({"Event": "StatusComplete"})
            ]
        return {"Response": "Success"}


def a_call(call_id: str, skill: str = "report") -> ConnectedCall:
    return ConnectedCall(
        call_id=call_id, caller_channel="", caller_number="13900001111", seat="8002",
        seat_channel="PJSIP/8002-1", skill=skill, connected_at=CONNECTED,
        ended_at=CONNECTED + timedelta(minutes=1),
    )  # fmt: skip


def write_recording(recordings: Path, call: ConnectedCall, seconds: float = 1.0) -> None:
    day = recordings / call.connected_at.strftime("%Y/%m/%d")
    day.mkdir(parents=True, exist_ok=True)
    for side in ("mix", "caller", "operator"):
        with wave.open(str(day / f"{call.call_id}-{side}.wav"), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes(b"\x00\x01" * int(8000 * seconds))


def listener_on(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession], ami: StatusAmi | None = None
) -> RecordingListener:
    config = IntakeConfig(
        recordings_dir=tmp_path / "recordings", outbox_dir=tmp_path / "outbox",
        recording_close_timeout_s=2, retry_initial_s=0.2, retry_max_s=1.0,
    )  # fmt: skip
    outbox = Outbox(config.outbox)
    outbox.open()
    service = WorkOrderService(sessions, DispatchRules.load(), TimeLimits.load())
    return RecordingListener(
        config, ami or StatusAmi(), RecordingStore(sessions), service, None, outbox
    )


async def orders_of(sessions: async_sessionmaker[AsyncSession], call_id: str) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(WorkOrderRow).where(WorkOrderRow.call_id == call_id)
        )
        return int(count or 0)


# -- the outbox file ----------------------------------------------------------------------------


def test_outbox_writes_atomically_and_sets_unreadable_files_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.open()
    assert (outbox.folder.stat().st_mode & 0o777) == 0o700
    draft = PendingDraft.of_call(a_call("1772616600.1"))
    outbox.put(draft)
    outbox.put(draft.with_transcription(1.0, None, "", "/r/x-mix.wav", ("caller side: x",)))
    assert [p.name for p in outbox.folder.iterdir()] == ["1772616600.1.json"]  # no temp file
    (pending,) = outbox.pending()
    assert pending.transcribed and pending.problems == ("caller side: x",)
    assert pending.connected_at == CONNECTED and pending.skill == "report"
    (outbox.folder / "1772616600.2.json").write_text("{not json")
    with caplog.at_level(logging.ERROR):
        assert [d.call_id for d in outbox.pending()] == ["1772616600.1"]
    assert (outbox.folder / "1772616600.2.unreadable").exists() and "1772616600.2" in caplog.text
    outbox.remove("1772616600.1")
    assert "1772616600.1" not in outbox and outbox.pending() == []
    with pytest.raises(ValueError):
        outbox.put(PendingDraft.of_call(a_call("../escape")))


# -- exactly once ------------------------------------------------------------------------------


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    await create_schema(engine)
    yield make_sessions(engine)
    await engine.dispose()


async def test_a_draft_retried_after_it_landed_makes_no_second_order(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    listener = listener_on(tmp_path, sessions)
    call = a_call("1772616600.3")
    write_recording(listener.config.recordings_dir, call)
    first = await listener.intake(PendingDraft.of_call(call))
    # A crash after the commit but before the outbox file went: the file is resumed.
    listener.outbox.put(PendingDraft.of_call(call))
    assert await listener.recover() == 1
    second = await listener.wait_done(call.call_id, timeout=20)
    assert second is not None and second.work_order_number == first.work_order_number
    assert await orders_of(sessions, call.call_id) == 1
    assert listener.outbox.pending() == []


async def test_recordings_without_an_order_are_drafted_once_their_call_ended(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The engine was killed during two conversations: one has ended since, one goes on."""
    ended, ongoing = a_call("1772616600.4"), a_call("1772616600.5", skill="consultation")
    listener = listener_on(tmp_path, sessions, StatusAmi(live=(ongoing.call_id,)))
    for call in (ended, ongoing):
        await listener.connected(call)  # the row, as before the kill
    write_recording(listener.config.recordings_dir, ended)
    assert await listener.recover(settle_s=0) == 1
    result = await listener.wait_done(ended.call_id, timeout=20)
    assert result is not None and result.work_order_number
    order = await listener.drafter.get(result.work_order_number)  # type: ignore[attr-defined]
    assert (order.category, order.seat, order.call_id) == ("complaint", "8002", ended.call_id)
    assert await orders_of(sessions, ongoing.call_id) == 0
    assert await listener.recover(settle_s=0) == 0  # nothing twice, the live call left alone


# -- the database down, then back ---------------------------------------------------------------


class Relay:
    """A TCP relay to PostgreSQL on a port of its own; stopped, the port refuses connections."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with contextlib.closing(socket.socket()) as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update({writer, up_writer})


@pytest.mark.fault
async def test_database_down_then_back_the_order_lands_exactly_once(tmp_path: Path) -> None:
    schema = f"test_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(PG_URL)
    try:
        async with asyncio.timeout(5), admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except (OSError, TimeoutError) as exc:
        await admin.dispose()
        pytest.skip(f"PostgreSQL at {PG_URL} unreachable: {exc}")
    relay = Relay(("127.0.0.1", 5432))
    await relay.start()
    url = PG_URL.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
    engine = create_async_engine(
        url, pool_pre_ping=True, connect_args={"server_settings": {"search_path": schema}}
    )
    try:
        await create_schema(engine)
        sessions = make_sessions(engine)
        listener = listener_on(tmp_path, sessions)
        call = a_call("1772616600.6")
        write_recording(listener.config.recordings_dir, call)
        await listener.connected(call)

        await relay.stop()  # PostgreSQL unreachable from here on
        await listener.finished(call)
        pending = json.loads((listener.config.outbox / f"{call.call_id}.json").read_text())
        assert pending["call_id"] == call.call_id  # on disk before finished() returned
        await asyncio.sleep(3)  # several refused tries
        assert call.call_id in listener.outbox

        await relay.start()  # the database is back
        result = await listener.wait_done(call.call_id, timeout=60)
        assert result is not None and result.work_order_number
        await eventually(lambda: _gone(listener, call.call_id), 10, "the outbox file to go")
        assert await orders_of(sessions, call.call_id) == 1
        recording = await listener.store.get(call.call_id)
        assert recording is not None and recording.work_order_number == result.work_order_number
        await listener.close()
    finally:
        await relay.stop()
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def _gone(listener: RecordingListener, call_id: str) -> bool:
    return call_id not in listener.outbox


class SlowTranscriber:
    """Vosk busy with other calls: this call's sides take longer than the engine's stop."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def transcribe(self, path: Path | str) -> Any:
        from speech.transcriber import Transcript, Word

        await asyncio.sleep(self.seconds)
        word = Word("물이", 0.1, 0.4, 0.9)
        return Transcript(words=(word,), text=word.text, duration=1.0, sample_rate=8000)


async def test_a_stop_while_transcribing_leaves_the_draft_for_the_next_start(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    listener = listener_on(tmp_path, sessions)
    listener.transcriber = SlowTranscriber(30)
    call = a_call("1772616600.8")
    write_recording(listener.config.recordings_dir, call)
    await listener.finished(call)
    await asyncio.sleep(1.5)  # the files are closed, transcription runs
    await listener.close(timeout=0.5)  # the engine's stop deadline passes first
    assert call.call_id in listener.outbox and await orders_of(sessions, call.call_id) == 0

    restarted = listener_on(tmp_path, sessions)  # the next start, same outbox
    restarted.transcriber = SlowTranscriber(0.1)
    assert await restarted.recover() == 1
    result = await restarted.wait_done(call.call_id, timeout=20)
    assert result is not None and result.transcript is not None
    assert await orders_of(sessions, call.call_id) == 1 and restarted.outbox.pending() == []


async def test_a_recording_nobody_announced_is_drafted_from_its_call_record(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The native Queue() fallback answered while the engine's ACD was unreachable: the
    dialplan recorded the call, no listener heard of it. The call record names the caller and
    the queue chosen; the seat is unknown and said so."""
    from calls.callerid import parse_caller_id
    from calls.store import CallStore

    listener = listener_on(tmp_path, sessions)
    listener.calls = calls = CallStore(sessions)
    now = datetime.now(UTC)
    fallback = ConnectedCall(**{**a_call("1772616600.9").__dict__, "connected_at": now})
    never_bridged = ConnectedCall(**{**a_call("1772616600.10").__dict__, "connected_at": now})
    record = await calls.open(fallback.call_id, "PJSIP/citizens-9", parse_caller_id("13900002222"))
    await calls.finish_ivr(record, route="queue:consultation", reason="key", language="zh",
                           entered=None)  # fmt: skip
    write_recording(listener.config.recordings_dir, fallback, seconds=2.0)
    write_recording(listener.config.recordings_dir, never_bridged, seconds=0.0)
    assert await listener.recover(settle_s=60) == 0  # just written: maybe still recording
    assert await listener.recover(settle_s=-5) == 1
    result = await listener.wait_done(fallback.call_id, timeout=20)
    assert result is not None and "seat unknown" in "; ".join(result.problems)
    order = await listener.drafter.get(result.work_order_number)  # type: ignore[attr-defined]
    assert (order.caller_phone, order.category, order.seat) == ("13900002222", "consultation", "")
    assert await orders_of(sessions, never_bridged.call_id) == 0
    assert await listener.recover(settle_s=-5) == 0  # drafted once


class DyingWorkers:
    """The pool's answer when a Vosk worker died on the file twice (speech.pool)."""

    async def transcribe(self, path: Path | str) -> Any:
        from speech.errors import WorkerPoolError

        raise WorkerPoolError(f"a transcription worker died twice on {path} (killed)")


async def test_a_call_whose_transcription_failed_is_drafted_and_marked_failed_with_the_reason(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    listener = listener_on(tmp_path, sessions)
    listener.transcriber = DyingWorkers()
    call = a_call("1772616600.11")
    write_recording(listener.config.recordings_dir, call)
    result = await listener.intake(PendingDraft.of_call(call))
    assert result.work_order_number and result.transcript is None
    stored = await listener.store.get(call.call_id)
    assert stored is not None and stored.status == "failed"
    assert "worker died twice" in stored.error and "caller side" in stored.error
