"""Transcribe a folder of past recordings, writing ``<name>.transcript.json`` beside each WAV.

Recordings already transcribed (a JSON newer than the WAV) are skipped, so an interrupted
batch resumes where it stopped. Progress goes to stderr as plain text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from concurrent.futures import Future, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from speech.errors import ModelMissingError, RecordingError
from speech.model import locate_model
from speech.pool import make_executor, transcribe_in_worker
from speech.transcriber import Transcript

log = logging.getLogger(__name__)

TRANSCRIPT_SUFFIX = ".transcript.json"


@dataclass(frozen=True)
class BatchFailure:
    recording: Path
    reason: str


@dataclass(frozen=True)
class BatchReport:
    found: int
    transcribed: int
    skipped: int
    failed: tuple[BatchFailure, ...]
    audio_seconds: float  # audio transcribed in this run
    elapsed_seconds: float


def transcript_path(recording: Path) -> Path:
    return recording.with_name(recording.stem + TRANSCRIPT_SUFFIX)


def is_done(recording: Path) -> bool:
    target = transcript_path(recording)
    return target.is_file() and target.stat().st_mtime >= recording.stat().st_mtime


def write_transcript(recording: Path, transcript: Transcript) -> Path:
    """Write atomically so an interrupted batch never leaves a half file that counts as done."""
    target = transcript_path(recording)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    payload = {"recording": recording.name, **transcript.to_dict()}
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(target)
    return target


class Progress:
    """A plain-text progress bar: redrawn in place on a terminal, one line per step otherwise."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.done = 0
        self.started = time.monotonic()
        self.tty = stream.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        share = self.done / self.total if self.total else 1.0
        filled = int(self.width * share)
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
            f"{share:4.0%} elapsed {elapsed:5.1f}s eta {eta:5.1f}s {label}"
        )
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def find_recordings(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())


def run_batch(
    folder: Path, model_dir: Path, workers: int, progress_stream: TextIO | None = None
) -> BatchReport:
    """Transcribe every WAV under ``folder`` not yet transcribed; blocking.

    Raises ModelMissingError before starting any worker if the model is unusable; a bad
    recording is logged and listed in the report, and the batch goes on.
    """
    started = time.monotonic()
    if not folder.is_dir():
        raise NotADirectoryError(f"recordings folder {folder} does not exist")
    recordings = find_recordings(folder)
    pending = [r for r in recordings if not is_done(r)]
    skipped = len(recordings) - len(pending)
    failures: list[BatchFailure] = []
    audio_seconds = 0.0
    transcribed = 0
    stream = progress_stream if progress_stream is not None else sys.stderr
    stream.write(f"{len(recordings)} recordings, {skipped} already transcribed\n")
    if pending:
        progress = Progress(len(pending), stream)
        with make_executor(model_dir, workers) as executor:
            futures: dict[Future[tuple[Transcript, int, int]], Path] = {
                executor.submit(transcribe_in_worker, str(r)): r for r in pending
            }
            for future in as_completed(futures):
                recording = futures[future]
                try:
                    transcript, _pid, _loads = future.result()
                except RecordingError as exc:
                    log.warning("batch: skipping %s: %s", recording, exc.reason)
                    failures.append(BatchFailure(recording, exc.reason))
                else:
                    write_transcript(recording, transcript)
                    audio_seconds += transcript.duration
                    transcribed += 1
                progress.step(recording.name)
    return BatchReport(
        found=len(recordings),
        transcribed=transcribed,
        skipped=skipped,
        failed=tuple(failures),
        audio_seconds=round(audio_seconds, 3),
        elapsed_seconds=round(time.monotonic() - started, 3),
    )


def transcribe_command(
    folder: Path, model_dir: Path | None, workers: int, stream: TextIO | None = None
) -> int:
    """``hotline transcribe <folder>``: exit status 0 done, 1 some recordings failed,
    2 nothing could start (no model configured, unusable model, missing folder)."""
    out = stream if stream is not None else sys.stderr
    if model_dir is None:
        out.write("no Vosk model configured: set vosk_model_dir (HOTLINE_VOSK_MODEL_DIR)\n")
        return 2
    try:
        locate_model(model_dir)  # refused even when there is nothing to transcribe
        report = run_batch(folder, model_dir, workers, out)
    except (ModelMissingError, NotADirectoryError) as exc:
        out.write(f"{exc}\n")
        return 2
    out.write(
        f"{report.transcribed} transcribed, {report.skipped} already done, "
        f"{len(report.failed)} failed; {report.audio_seconds:.0f} s of audio "
        f"in {report.elapsed_seconds:.1f} s\n"
    )
    for failure in report.failed:
        out.write(f"  failed: {failure.recording}: {failure.reason}\n")
    return 1 if report.failed else 0
