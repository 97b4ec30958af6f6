"""Both sides of a recorded call transcribed, one side's failure not sinking the other.

The transcriber is the job system's client (:class:`speech.jobs.TranscriptionJobs`) in the
engine, or a local pool (:class:`speech.pool.TranscriptionPool`). Without a usable model
the engine still answers and records calls: the reason is logged once, clearly, at start
(:func:`usable_model`), and calls are drafted without transcript.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Protocol

from intake.config import IntakeConfig
from speech.errors import ModelMissingError, RecordingError, WorkerPoolError
from speech.model import locate_model
from speech.pool import CallTranscript, merge_call
from speech.transcriber import Transcript

log = logging.getLogger(__name__)


class SideTranscriber(Protocol):
    async def transcribe(self, path: Path | str) -> Transcript: ...


def usable_model(config: IntakeConfig) -> Path | None:
    """The Vosk model directory, or None when no model can be used: none configured is a
    choice (one INFO line), a configured model that is not a Vosk model is an error."""
    if config.vosk_model_dir is None:
        log.info(
            "no Vosk model configured (vosk_model_dir): calls are answered and recorded "
            "but not transcribed; work orders are drafted without transcript"
        )
        return None
    try:
        return locate_model(config.vosk_model_dir)
    except ModelMissingError as exc:
        log.error(
            "%s: calls are answered and recorded but not transcribed; work orders are "
            "drafted without transcript",
            exc,
        )
        return None


def _silence(sample_rate: int = 8000) -> Transcript:
    return Transcript(words=(), text="", duration=0.0, sample_rate=sample_rate)


async def transcribe_sides(
    pool: SideTranscriber, caller: Path, operator: Path, call_id: str, timeout: float
) -> tuple[CallTranscript | None, list[str]]:
    """(merged transcript or None if neither side could be read, problems to record)."""
    problems: list[str] = []

    async def side(name: str, path: Path) -> Transcript | None:
        try:
            return await pool.transcribe(path)
        except RecordingError as exc:
            log.warning("call %s: the %s side is not transcribable: %s", call_id, name, exc.reason)
            problems.append(f"{name} side: {exc.reason}")
        except WorkerPoolError as exc:
            log.error("call %s: transcription workers unavailable: %s", call_id, exc)
            problems.append(f"{name} side: {exc}")
        return None

    try:
        async with asyncio.timeout(timeout):
            heard, said = await asyncio.gather(side("caller", caller), side("operator", operator))
    except TimeoutError:
        log.error(
            "call %s: transcription took longer than %.0f s; drafted without", call_id, timeout
        )
        return None, [*problems, f"transcription timed out after {timeout:.0f} s"]
    if heard is None and said is None:
        return None, problems
    return merge_call(heard or _silence(), said or _silence()), problems
