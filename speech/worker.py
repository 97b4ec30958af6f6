"""``hotline worker``: one process that takes transcription jobs from the hotline's Redis.

It loads the Vosk model once, then runs two Dramatiq workers: recorded sides from
:func:`speech.jobs.files_queue` one at a time (Vosk uses a core while it runs: start one
process per core), and live sides from :func:`speech.jobs.live_queue`, many at once (they
mostly wait for audio). Each takes no more messages than it has threads for (prefetch 1 for
recorded sides, ``live_streams`` for live ones), so a busy worker hoards no job another
could run, and one live side does not hold up the next call's. A heartbeat thread keeps the
process's broker ids fresh in Redis every third of ``lease_s`` (and runs the maintenance
that requeues the jobs of workers silent longer than ``lease_s``): see :mod:`speech.jobs`.
SIGTERM or SIGINT stops taking jobs and gives back prefetched ones; a job still running
after ``grace_s`` is left to be taken again after the lease, like a killed worker's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage

from speech.errors import RecordingError, SpeechError
from speech.jobs import (
    FILE_JOB,
    STREAM_JOB,
    STREAM_TTL_S,
    audio_key,
    close_broker,
    files_queue,
    live_queue,
    make_broker,
    resolve_recording,
    result_key,
    transcript_key,
)
from speech.live import Heard, consume_side
from speech.model import load_model
from speech.stream import StreamRecogniser
from speech.transcriber import Transcriber

log = logging.getLogger(__name__)

# One XREAD of a live side's audio waits at most this long: well below the Redis client's
# socket timeout (redis-py's default is 5 s), or a quiet moment fails the job.
READ_BLOCK_MS = 1000


class PoisonRecordingError(SpeechError):
    """Workers died on this job again and again: given up (probably the recording)."""

    code = "speech_job_poisoned"


@dataclass(frozen=True)
class WorkerConfig:
    redis_url: str
    prefix: str  # the hotline's Redis prefix (acd_prefix): queues and keys live under it
    recordings_dir: Path  # this machine's path of the shared recordings folder
    model_dir: Path
    lease_s: float = 20.0  # a killed worker's job is taken again within this
    max_deliveries: int = 4  # a job taken this often (workers died on it) is given up
    job_time_limit_s: float = 3 * 3600.0
    live_streams: int = 20  # live sides one process follows at once
    stream_idle_s: float = 300.0  # a live side with no audio this long is finished as is
    grace_s: float = 10.0
    parent_pid: int = 0  # started by an engine: stop when it is gone (0: never)


class JobWorker:
    """The jobs' bodies with this process's model, and the two Dramatiq workers."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.model = load_model(config.model_dir)  # ModelMissingError here, before any job
        self.transcriber = Transcriber(self.model)
        self.brokers: list[RedisBroker] = []
        self.workers: list[dramatiq.Worker] = []
        self._stop = threading.Event()

    # -- the jobs ----------------------------------------------------------------------------
    def transcribe_file(self, relative_path: str) -> dict[str, Any]:
        """One recorded side: ``relative_path`` under this worker's recordings folder."""
        done = self._taken(self.brokers[0])
        if done is not None:
            return done
        path = resolve_recording(self.config.recordings_dir, relative_path)
        log.info("transcribing %s (pid %d)", relative_path, os.getpid())
        transcript = self.transcriber.transcribe(path)
        log.info("transcribed %s (%.1f s of audio, pid %d)", relative_path,
                 transcript.duration, os.getpid())  # fmt: skip
        return transcript.to_dict()

    def transcribe_stream(self, call_id: str, side: str) -> dict[str, Any]:
        """One live side: its audio stream read from the start (a retry reads it again) into
        :func:`speech.live.consume_side`, what is heard so far published as it changes,
        the whole side returned at ``end``. Runs on an event loop of its own (this thread)."""
        broker = self.brokers[1]
        done = self._taken(broker)
        if done is not None:
            return done
        redis: Any = broker.client  # blocking redis-py (its stubs' unions are of no help here)
        results = transcript_key(self.config.prefix, call_id)

        def heard(what: Heard) -> None:
            self._publish(redis, results, side, "heard", what.text, what.partial)

        frames = self._frames(redis, audio_key(self.config.prefix, call_id, side), call_id, side)
        transcript = asyncio.run(consume_side(frames, StreamRecogniser(self.model), heard))
        self._publish(redis, results, side, "final", transcript.text, "")
        return transcript.to_dict()

    async def _frames(
        self, redis: Any, source: str, call_id: str, side: str
    ) -> AsyncIterator[bytes]:
        """The side's audio from its Redis stream until ``end`` (or silence for too long)."""
        last, heard_at = "0", time.monotonic()
        while True:
            batch = await asyncio.to_thread(redis.xread, {source: last}, count=50,
                                            block=READ_BLOCK_MS)  # fmt: skip
            if not batch:
                if time.monotonic() - heard_at < self.config.stream_idle_s:
                    continue
                log.warning("call %s %s side: no audio for %.0f s; finishing it", call_id, side,
                            self.config.stream_idle_s)  # fmt: skip
                return
            heard_at = time.monotonic()
            for entry_id, fields in batch[0][1]:
                last = entry_id
                if b"end" in fields:
                    return
                yield fields.get(b"pcm", b"")  # entry by entry: Vosk hears what was sent

    def _taken(self, broker: RedisBroker) -> dict[str, Any] | None:
        """Count this delivery; the stored result if the job was done already (asked twice).
        Raises PoisonRecordingError when workers died on it ``max_deliveries`` times."""
        message = CurrentMessage.get_current_message()
        if message is None:
            return None
        redis = broker.client
        raw = redis.lindex(result_key(self.config.prefix, message), 0)
        if raw is not None:
            stored = json.loads(raw)
            if isinstance(stored, dict) and "exn" not in stored:
                return stored
        key = f"{self.config.prefix}speech-deliveries:{message.message_id}"
        deliveries = int(redis.incr(key))
        redis.expire(key, 24 * 3600)
        if deliveries > 1:
            log.warning("job %s%s taken again (delivery %d): a worker died on it",
                        message.actor_name, message.args, deliveries)  # fmt: skip
        if deliveries > self.config.max_deliveries:
            raise PoisonRecordingError(f"workers died {deliveries - 1} times on {message.args}")
        return None

    @staticmethod
    def _publish(redis: Any, key: str, side: str, kind: str, text: str, partial: str) -> None:
        with redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"side": side, "kind": kind, "text": text, "partial": partial})
            pipe.expire(key, STREAM_TTL_S)
            pipe.execute()

    # -- running -----------------------------------------------------------------------------
    def start(self) -> None:
        c = self.config
        limit_ms = int(c.job_time_limit_s * 1000)
        # An unusable recording or a poisoned job fails at once (the engine is told why);
        # anything else (Redis away a moment) is tried twice more, 1-10 s apart.
        options: dict[str, Any] = dict(max_retries=2, min_backoff=1000, max_backoff=10000,
                                       time_limit=limit_ms,
                                       throws=(RecordingError, PoisonRecordingError))  # fmt: skip
        for queue, actor, body, threads in (
            (files_queue(c.prefix), FILE_JOB, self.transcribe_file, 1),
            (live_queue(c.prefix), STREAM_JOB, self.transcribe_stream, c.live_streams),
        ):
            broker = make_broker(c.redis_url, c.prefix, c.lease_s)
            broker.add_middleware(CurrentMessage())
            dramatiq.Actor(body, broker=broker, actor_name=actor, queue_name=queue,
                           priority=0, options=options)  # fmt: skip
            worker = dramatiq.Worker(broker, queues={queue}, worker_threads=threads,
                                     worker_timeout=500)  # fmt: skip
            worker.queue_prefetch = threads  # (1 held every live side up until it ended)
            self.brokers.append(broker)
            self.workers.append(worker)
        for worker in self.workers:  # the jobs' bodies find both brokers from the first one
            worker.start()
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()
        log.info("transcription worker pid %d on %s and %s (model %s, recordings %s)",
                 os.getpid(), files_queue(c.prefix), live_queue(c.prefix), c.model_dir,
                 c.recordings_dir)  # fmt: skip

    def _beat(self) -> None:
        """Every broker call beats the heartbeat and may requeue dead workers' jobs."""
        while not self._stop.wait(self.config.lease_s / 3):
            for broker, queue in zip(self.brokers, (files_queue, live_queue), strict=True):
                try:
                    broker.do_qsize(queue(self.config.prefix))
                except Exception as exc:  # Redis away: beat again next time
                    log.warning("heartbeat not sent (%s)", exc)

    def run(self) -> None:
        """Until SIGTERM/SIGINT or the parent engine gone; then stop within ``grace_s``."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self._stop.set())
        self.start()
        while not self._stop.wait(1.0):
            if self.config.parent_pid and os.getppid() != self.config.parent_pid:
                log.warning("the engine (pid %d) that started this worker is gone: stopping",
                            self.config.parent_pid)  # fmt: skip
                break
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for worker in self.workers:
            worker.stop(timeout=int(self.config.grace_s * 1000))
        for broker in self.brokers:
            close_broker(broker)
        log.info("transcription worker pid %d stopped", os.getpid())
