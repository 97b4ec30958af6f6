"""Transcription as jobs on the hotline's Redis (Dramatiq): the engine's side and the keys.

Why Dramatiq (not arq or Celery): arq pins redis-py below 6 while the hotline runs redis-py 8;
Celery's Redis transport re-delivers an unacknowledged task only after a visibility timeout
(an hour by default) and then also to a worker still busy with it. Dramatiq's Redis broker
has the re-delivery we need built in: a worker moves each message it takes into its own
acknowledgement set and beats a heartbeat (a sorted set of worker ids and times) on every
broker call; any broker call may run the maintenance step, which puts the unacknowledged
messages of workers silent for ``heartbeat_timeout`` back on their queue. Two settings make
that sure and quick here (:func:`make_broker`): maintenance on every call (not 0.1 % of
them), and a heartbeat thread in each worker process (:mod:`speech.worker`), because
Dramatiq beats only when it fetches, and a worker busy with its one prefetched message does
not fetch. A worker killed with -9 stops beating; within ``lease_s`` another worker (or the
same one started again) takes its job: at least once, never lost.

Exactly once stays intake's: a side transcribed twice gives the same words, and the
work order's idempotency key (the call's uniqueid) plus the durable outbox keep one order per
call (:mod:`intake.outbox`). A job's message id is derived from its name (the recording's
path, or call and side), so its result key is known to whoever asks again after a restart,
and a worker that finds the result already stored returns it without transcribing.

Recordings are on shared storage: a job names the file relative to the recordings folder
and each worker resolves it against its own ``recordings_dir`` (an NFS mount on another
machine). Carrying the audio in the job would put Chengdu's daily backlog (~1,100
call-hours, ~130 GB of 8 kHz PCM for both sides) into Redis's memory.

Job names and keys are the interface with the live stream capture: keep them stable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from typing import Any

from dramatiq import Message
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend
from redis.asyncio import Redis

from speech.errors import RecordingError, WorkerPoolError
from speech.transcriber import Transcript

log = logging.getLogger(__name__)

FILE_JOB = "transcribe_file"
STREAM_JOB = "transcribe_stream"
STREAM_TTL_S = 3600  # audio and live results of a call vanish an hour after their last entry
RESULT_TTL_S = 24 * 3600  # a result waits this long for an engine that asks again


def make_broker(redis_url: str, prefix: str, lease_s: float) -> RedisBroker:
    """The Dramatiq broker on the hotline's Redis, results included; connects lazily."""
    broker = RedisBroker(
        url=redis_url, namespace=f"{prefix}dramatiq", heartbeat_timeout=int(lease_s * 1000),
        maintenance_chance=MAINTENANCE_SCALE,  # every call looks for dead workers' messages
    )  # fmt: skip
    backend = RedisBackend(url=redis_url, namespace=f"{prefix}speech-results",
                           use_namespace_prefix_keys=True)  # fmt: skip
    broker.add_middleware(
        Results(backend=backend, store_results=True, result_ttl=RESULT_TTL_S * 1000)
    )
    return broker


def close_broker(broker: RedisBroker) -> None:
    """Close ``broker`` and the sockets of its Redis connection pools (its own and its
    results'): Dramatiq's ``close`` leaves both open, one or more connections per broker."""
    broker.close()
    pools = [broker.client.connection_pool]
    pools += [m.backend.client.connection_pool for m in broker.middleware
              if isinstance(m, Results) and isinstance(m.backend, RedisBackend)]  # fmt: skip
    for pool in pools:
        pool.disconnect()


def job_message(queue: str, actor: str, args: tuple[str, ...], job_id: str) -> Message[Any]:
    """The message of a job; its id (and so its result's key) follows from ``job_id``."""
    message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, job_id))
    return Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options={},
                   message_id=message_id)  # fmt: skip


def result_key(prefix: str, message: Message[Any]) -> str:
    """Where the Results middleware keeps a message's result (a one-item list)."""
    return f"{prefix}speech-results:{message.queue_name}:{message.actor_name}:{message.message_id}"


def files_queue(prefix: str) -> str:
    """The queue of recorded sides (one Vosk job per worker process at a time)."""
    return f"{prefix}speech"


def live_queue(prefix: str) -> str:
    """The queue of live call sides (many per worker process: they wait for audio)."""
    return f"{prefix}speech-live"


def audio_key(prefix: str, call_id: str, side: str) -> str:
    """Redis stream of one live side's audio: entries ``pcm`` (8 kHz s16le mono), last ``end``."""
    return f"{prefix}audio:{call_id}:{side}"


def transcript_key(prefix: str, call_id: str) -> str:
    """Redis stream of a live call's results: ``side``, ``kind`` (heard: as it changes; final),
    ``text`` (the completed utterances so far), ``partial`` (Vosk's guess at the current one)."""
    return f"{prefix}transcript:{call_id}"


def file_job_id(relative_path: str) -> str:
    return f"file:{relative_path}"


def stream_job_id(call_id: str, side: str) -> str:
    return f"stream:{call_id}:{side}"


def relative_recording(recordings_dir: Path, path: Path | str) -> str:
    """``path`` relative to the recordings folder (what a job carries); refuses others."""
    full = Path(path)
    try:
        return full.resolve().relative_to(recordings_dir.resolve()).as_posix()
    except ValueError:
        raise RecordingError(full, f"not under the recordings folder {recordings_dir}") from None


def resolve_recording(recordings_dir: Path, relative_path: str) -> Path:
    """The worker's own path of a job's recording; never outside its recordings folder."""
    base = recordings_dir.resolve()
    full = (base / relative_path).resolve()
    if not full.is_relative_to(base):
        raise RecordingError(full, f"not under the recordings folder {recordings_dir}")
    return full


class TranscriptionJobs:
    """The engine's client of the job system; a :class:`intake.transcription.SideTranscriber`.

    ``broker`` enqueues (blocking redis-py, run in a thread); ``redis`` (asyncio) waits for
    results and feeds live audio.
    """

    def __init__(
        self, broker: RedisBroker, redis: Redis, prefix: str, recordings_dir: Path,
        poll_s: float = 0.25,
    ) -> None:  # fmt: skip
        self.broker = broker
        self.redis = redis
        self.prefix = prefix
        self.recordings_dir = recordings_dir
        self.poll_s = poll_s

    async def transcribe(self, path: Path | str) -> Transcript:
        """Enqueue one recorded side and await its transcript. Asking again (a restarted
        engine resuming its outbox) finds the stored result or the job still under way.
        Intake's own deadline bounds the wait (a backlog can be long)."""
        relative = relative_recording(self.recordings_dir, path)
        message = job_message(files_queue(self.prefix), FILE_JOB, (relative,),
                              file_job_id(relative))  # fmt: skip
        if await self._stored(message) is None:
            await asyncio.to_thread(self.broker.enqueue, message)
        return Transcript.from_dict(await self._result(message, None))

    async def start_stream(self, call_id: str, side: str) -> None:
        """Enqueue the live job of one side of a call."""
        message = self._stream_message(call_id, side)
        await asyncio.to_thread(self.broker.enqueue, message)

    async def feed(self, call_id: str, side: str, pcm: bytes) -> None:
        key = audio_key(self.prefix, call_id, side)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"pcm": pcm})
            pipe.expire(key, STREAM_TTL_S)
            await pipe.execute()

    async def end_stream(self, call_id: str, side: str) -> None:
        key = audio_key(self.prefix, call_id, side)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"end": "1"})
            pipe.expire(key, STREAM_TTL_S)
            await pipe.execute()

    async def stream_result(self, call_id: str, side: str, timeout_s: float) -> Transcript:
        """The whole side's transcript once its stream ended and a worker finished it."""
        message = self._stream_message(call_id, side)
        return Transcript.from_dict(await self._result(message, timeout_s))

    def _stream_message(self, call_id: str, side: str) -> Message[Any]:
        return job_message(live_queue(self.prefix), STREAM_JOB, (call_id, side),
                           stream_job_id(call_id, side))  # fmt: skip

    async def _stored(self, message: Message[Any]) -> Any:
        raw = await self.redis.lindex(result_key(self.prefix, message), 0)
        return None if raw is None else json.loads(raw)

    async def _result(self, message: Message[Any], timeout_s: float | None) -> dict[str, Any]:
        # Polled, not a blocking pop: a backlog keeps hundreds of sides waiting, and a blocking
        # command would hold one Redis connection for each of them.
        async with asyncio.timeout(timeout_s):
            while (stored := await self._stored(message)) is None:  # noqa: ASYNC110
                await asyncio.sleep(self.poll_s)
        if isinstance(stored, dict) and "exn" in stored:  # the job failed: Dramatiq's shape
            exn = stored["exn"]
            if exn.get("type") == "RecordingError":  # its message: "recording P cannot be ...: R"
                said = str(exn.get("msg", ""))
                raise RecordingError(str(message.args[0]), said.partition(": ")[2] or said)
            raise WorkerPoolError(f"transcription job {message.args} failed: {exn.get('msg')}")
        if not isinstance(stored, dict):
            raise WorkerPoolError(f"transcription job {message.args} returned {stored!r}")
        return stored
