"""Errors of the speech domain, each with a stable code for logs and HTTP mapping."""

from __future__ import annotations

from pathlib import Path


class SpeechError(Exception):
    """Base of every speech-domain error."""

    code = "speech_error"


class ModelMissingError(SpeechError):
    """The Vosk model directory is missing or is not a Vosk model."""

    code = "speech_model_missing"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"Vosk model not usable at {path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[ModelMissingError], tuple[Path, str]]:
        return (type(self), (self.path, self.reason))


class RecordingError(SpeechError):
    """A recording that cannot be transcribed: missing, empty, corrupt or unsupported."""

    code = "recording_unreadable"

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"recording {path} cannot be transcribed: {reason}")
        self.path = Path(path)
        self.reason = reason

    # Raised in worker processes: pickle with the constructor's own arguments.
    def __reduce__(self) -> tuple[type[RecordingError], tuple[Path, str]]:
        return (type(self), (self.path, self.reason))


class WorkerPoolError(SpeechError):
    """The transcription worker pool is closed or its workers died."""

    code = "speech_workers_unavailable"
