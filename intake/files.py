"""Where a call's recording lives, and when Asterisk has finished writing it.

Layout: ``<recordings>/<yyyy>/<mm>/<dd>/<uniqueid>-{mix,caller,operator}.wav``. MixMonitor
writes the WAV header's sizes when it closes a file, and runs its post-recording command
after closing all of them: that command touches ``<uniqueid>.closed``, the signal we wait
for. Without it (a PBX that cannot run it), a file whose header agrees with its size and
whose size stopped changing counts as closed.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

WAV_HEADER_SLACK = 128  # bytes of RIFF/fmt/fact chunks before the samples


@dataclass(frozen=True)
class RecordingFiles:
    mix: Path
    caller: Path  # what the citizen said (read from the citizen's channel)
    operator: Path  # what the citizen heard (written to the citizen's channel)
    closed_marker: Path

    @property
    def audio(self) -> tuple[Path, Path, Path]:
        return (self.mix, self.caller, self.operator)


def recording_files(recordings_dir: Path, call_id: str, at: datetime) -> RecordingFiles:
    if not call_id or "/" in call_id or call_id.startswith("."):
        raise ValueError(f"not a usable call uniqueid for a file name: {call_id!r}")
    day = recordings_dir / at.astimezone(UTC).strftime("%Y/%m/%d")
    return RecordingFiles(
        mix=day / f"{call_id}-mix.wav",
        caller=day / f"{call_id}-caller.wav",
        operator=day / f"{call_id}-operator.wav",
        closed_marker=day / f"{call_id}.closed",
    )


def wav_duration(path: Path) -> float:
    """Seconds of audio in a closed WAV; raises ValueError for a missing or corrupt file."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except (OSError, EOFError, wave.Error, ZeroDivisionError) as exc:
        raise ValueError(f"{path}: not a readable WAV ({exc})") from exc


def _header_agrees(path: Path) -> bool:
    try:
        size = path.stat().st_size
        with wave.open(str(path), "rb") as wav:
            data = wav.getnframes() * wav.getsampwidth() * wav.getnchannels()
    except (OSError, EOFError, wave.Error):
        return False
    return 0 <= size - data <= WAV_HEADER_SLACK


def _sizes(files: RecordingFiles) -> tuple[int, ...] | None:
    try:
        return tuple(p.stat().st_size for p in files.audio)
    except FileNotFoundError:
        return None


async def wait_closed(files: RecordingFiles, timeout: float, poll_s: float = 0.1) -> bool:
    """Wait until Asterisk has closed the files; False if the deadline passed first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: tuple[int, ...] | None = None
    stable_since = loop.time()
    while True:
        if files.closed_marker.exists():
            files.closed_marker.unlink(missing_ok=True)
            return True
        sizes = _sizes(files)
        now = loop.time()
        if sizes != last:
            last, stable_since = sizes, now
        elif (
            sizes is not None
            and now - stable_since >= 1.0
            and all(_header_agrees(p) for p in files.audio)
        ):
            return True
        if now >= deadline:
            return False
        await asyncio.sleep(poll_s)
