"""Live transcription without Asterisk: the test plays Asterisk's side of AudioSocket.

The engine's AudioSocket server and :class:`intake.live.LiveTranscription` get a call; the
sides go through the test Redis (under a prefix of the test's own) to a transcription worker
(:class:`speech.worker.JobWorker` in this process, real Vosk test model). The test reads the
two AudioSocket channels it asks AMI to originate and connects as chan_audiosocket does
(UUID, 320-byte slin frames, hangup). What the worker heard so far reaches ``on_heard`` as it
is spoken; at hangup the call's transcript has both sides (the jobs' results); a
stream that broke off or never connected gives None (intake then transcribes the recording).
The desk panel's suggestion: the dispatch rules' category and the knowledge entries found.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_REDIS_URL, drop_keys
from redis.asyncio import Redis
from test_speech import CALLER_TEXT, OPERATOR_TEXT, model_dir, pcm_of, synthesise

from calls.lifecycle import ConnectedCall
from db.base import utcnow
from intake.live import LiveTranscription
from knowledge.entries import Entry, Kind
from knowledge.service import Hit, SearchResult
from sipsim.audiosocket import play
from speech.audiosocket import KIND_ERROR, AudioSocketServer
from speech.jobs import TranscriptionJobs, close_broker, make_broker
from speech.live import Heard
from speech.worker import JobWorker, WorkerConfig
from web.live import LiveHub
from web.transcript import TranscriptPanel
from workorders.dispatch import DispatchRules

__all__ = ["model_dir"]  # the fixture, shared with test_speech


class OriginatingAmi:
    """AMI as live transcription uses it: the AudioSocket channels it originates."""

    def __init__(self) -> None:
        self.channels: dict[str, uuid.UUID] = {}  # spied channel → stream id

    async def action(self, action: dict[str, str], *, as_list: bool = False) -> Any:
        assert action["Action"] == "Originate" and action["Context"] == "hotline-stream"
        stream_id = re.fullmatch(r"AudioSocket/[^/]+/([0-9a-f-]{36})/c\(slin\)", action["Channel"])
        assert stream_id is not None, action["Channel"]
        spied = action["Variable"].removeprefix("HOTLINE_STREAM_CHANNEL=")
        self.channels[spied] = uuid.UUID(stream_id[1])
        return {"Response": "Success"}


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("live")
    return {side: pcm_of(synthesise(text, folder / f"{side}.wav"))[0]
            for side, text in (("caller", CALLER_TEXT), ("operator", OPERATOR_TEXT))}  # fmt: skip


class Listening:
    def __init__(self, jobs: TranscriptionJobs) -> None:
        self.ami = OriginatingAmi()
        self.heard: list[tuple[str, Heard]] = []
        self.live = LiveTranscription(
            jobs,
            self.ami,
            "127.0.0.1:1",
            on_heard=lambda _c, side, h: self.heard.append((side, h)),
        )
        self.server = AudioSocketServer(self.live.sink)


@pytest.fixture
async def listening(model_dir: Path, redis: Redis, tmp_path: Path) -> AsyncIterator[Listening]:
    prefix = f"hotline-test-{uuid.uuid4().hex[:8]}-live:acd:"
    worker = JobWorker(WorkerConfig(TEST_REDIS_URL, prefix, tmp_path, model_dir, live_streams=4))
    worker.start()
    jobs = TranscriptionJobs(make_broker(TEST_REDIS_URL, prefix, 20), redis, prefix, tmp_path)
    running = Listening(jobs)
    await running.server.start("127.0.0.1", 0)
    try:
        yield running
    finally:
        await running.live.close()
        await running.server.stop()
        worker.stop()
        close_broker(jobs.broker)
        await drop_keys(redis, prefix)


def a_call(call_id: str) -> ConnectedCall:
    started = utcnow() - timedelta(seconds=8)
    return ConnectedCall(call_id, "PJSIP/citizens-00000001", "13912345678", "8001",
                         "PJSIP/8001-00000002", "report", started)  # fmt: skip


async def test_both_sides_are_heard_while_spoken_and_ready_at_hangup(
    listening: Listening, speech: dict[str, bytes]
) -> None:
    call = a_call("live-1")
    await listening.live.connected(call)
    caller, seat = (listening.ami.channels[c] for c in (call.caller_channel, call.seat_channel))
    port = listening.server.port
    await asyncio.gather(play(port, caller, speech["caller"]), play(port, seat, speech["operator"]))
    await listening.live.finished(call)
    transcript = await listening.live.transcript(call.call_id)

    assert transcript is not None
    assert transcript.caller.words and transcript.operator.words
    assert {turn.speaker for turn in transcript.turns} == {"caller", "operator"}
    heard_sides = {side for side, h in listening.heard if h.partial or h.text}
    assert heard_sides == {"caller", "operator"}, "partial results of each side, as spoken"
    assert any(h.partial for _side, h in listening.heard)
    assert await listening.live.transcript(call.call_id) is None  # handed over once


async def test_a_broken_or_missing_stream_leaves_the_call_to_the_recording(
    listening: Listening, speech: dict[str, bytes]
) -> None:
    broken = a_call("live-broken")
    await listening.live.connected(broken)
    caller, seat = (listening.ami.channels[c] for c in (broken.caller_channel,
                                                         broken.seat_channel))  # fmt: skip
    port = listening.server.port
    await asyncio.gather(play(port, caller, speech["caller"][:16000], end=KIND_ERROR),
                         play(port, seat, speech["operator"][:16000]))  # fmt: skip
    await listening.live.finished(broken)
    assert await listening.live.transcript(broken.call_id) is None

    missing = a_call("live-missing")  # AMI originated, Asterisk never connected
    await listening.live.connected(missing)
    await listening.live.finished(missing)
    listening.live.finish_timeout_s = 0.2
    assert await listening.live.transcript(missing.call_id) is None


async def test_the_panel_suggests_the_category_and_knowledge_entries() -> None:
    entry = Entry(7, "停水怎么办", "help", Kind.QA, "先查看停水通知", "市水务集团", None, None,
                  ("停水",))  # fmt: skip
    asked: list[str] = []

    async def search(text: str, **_options: Any) -> SearchResult:
        asked.append(text)
        return SearchResult(("停水",), _options["match"], (Hit(entry, 1.0),))

    panel = TranscriptPanel(LiveHub(), DispatchRules.load(), search)
    suggestion = await panel.suggest("我家停水了 请帮忙", "")
    assert suggestion["category"] == "help" and {"停水", "帮忙"} <= set(suggestion["matched"])
    assert suggestion["knowledge"] == [{"id": 7, "title": "停水怎么办", "category": "help"}]
    assert asked == ["我家停水了 请帮忙"]
