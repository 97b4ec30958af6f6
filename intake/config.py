"""The intake's own typed configuration, built by the composition root from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class IntakeConfig:
    recordings_dir: Path
    # The durable outbox of calls waiting for their work order (intake.outbox); None: a
    # hidden folder beside the recordings.
    outbox_dir: Path | None = None
    # Any Vosk model directory; None: calls are recorded but not transcribed.
    vosk_model_dir: Path | None = None
    transcription_workers: int = 1
    # Recordings older than this many days are deleted by the retention job; 0 keeps them.
    recording_retention_days: int = 0
    retention_interval_s: float = 3600.0
    # Deadline for an AMI action (StopMixMonitor, Status) and for the files to be closed.
    network_timeout_s: float = 5.0
    recording_close_timeout_s: float = 10.0
    # Deadline for transcribing both sides of one call (the pool may be busy with others).
    transcription_timeout_s: float = 600.0
    # A draft the database refuses is retried after 0.5 s, 1 s, 2 s ... at most this apart.
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    # How often the outbox and recordings without an order are looked at again.
    recovery_interval_s: float = 60.0

    @property
    def outbox(self) -> Path:
        return self.outbox_dir or self.recordings_dir / ".outbox"

    def __post_init__(self) -> None:
        if self.transcription_workers < 1:
            raise ValueError(
                f"transcription_workers must be >= 1, got {self.transcription_workers}"
            )
        if self.recording_retention_days < 0:
            raise ValueError(
                f"recording_retention_days must be >= 0, got {self.recording_retention_days}"
            )
