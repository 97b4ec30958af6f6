"""Where a call's recording lives, and when Asterisk has finished writing it.

Layout: ``<recordings>/<yyyy>/<mm>/<dd>/<uniqueid>-{mix,caller,operator}.wav``, the day (UTC)
when the recording started. The dialplan starts MixMonitor with these names when the citizen
enters a queue (``hotline-queue`` in extensions.conf: the engine's ACD and the native
fallback alike), recording only while the citizen is bridged to a seat.

A recording is complete when Asterisk has closed its files: after the citizen's channel hung
up (AMI ``Hangup``) or ``StopMixMonitor`` returned (it closes the files before answering),
MixMonitor writes the WAV header's sizes; a file whose header agrees with its size and whose
size stopped changing is closed. No post-recording command (it would need AMI ``system``).
"""

from __future__ import annotations

import asyncio
import logging
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

WAV_HEADER_SLACK = 128  # bytes of RIFF/fmt/fact chunks before the samples


@dataclass(frozen=True)
class RecordingFiles:
    mix: Path
    caller: Path  # what the citizen said (read from the citizen's channel)
    operator: Path  # what the citizen heard (written to the citizen's channel)

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
    )


def mixmonitor_args(files: RecordingFiles, *, on_seat_channel: bool = False) -> str:
    """MixMonitor's arguments for these files, recording only while bridged (``b``).

    On the citizen's channel ``r()`` is what the citizen says; on a seat's channel (a
    callback dials the citizen from it) the sides are the other way round.
    """
    said, heard = files.caller, files.operator
    if on_seat_channel:
        said, heard = heard, said
    return f"{files.mix},br({said})t({heard})"


def locate_recording(recordings_dir: Path, call_id: str, connected_at: datetime) -> RecordingFiles:
    """The files of a call: recording starts when the citizen enters the queue, so the folder
    is the day of connection or, for a call that waited past midnight (UTC), the day before."""
    candidates = [recording_files(recordings_dir, call_id, connected_at - timedelta(days=n))
                  for n in (0, 1)]  # fmt: skip
    return next((files for files in candidates if files.mix.exists()), candidates[0])


def recent_recordings(recordings_dir: Path, since: datetime) -> list[RecordingFiles]:
    """The recordings (by their mix file) in the day folders from ``since`` (UTC) on."""
    found: list[RecordingFiles] = []
    day = since.astimezone(UTC).date()
    while day <= datetime.now(UTC).date():
        folder = recordings_dir / day.strftime("%Y/%m/%d")
        for mix in sorted(folder.glob("*-mix.wav")) if folder.is_dir() else ():
            call_id = mix.name.removesuffix("-mix.wav")
            found.append(RecordingFiles(mix, mix.with_name(f"{call_id}-caller.wav"),
                                        mix.with_name(f"{call_id}-operator.wav")))  # fmt: skip
        day += timedelta(days=1)
    return found


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


async def wait_closed(
    files: RecordingFiles, timeout: float, poll_s: float = 0.1, stable_s: float = 0.5
) -> bool:
    """Wait until Asterisk has closed the files; False if the deadline passed first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: tuple[int, ...] | None = None
    stable_since = loop.time()
    while True:
        sizes = await asyncio.to_thread(_sizes, files)
        now = loop.time()
        if sizes != last:
            last, stable_since = sizes, now
        elif (
            sizes is not None
            and now - stable_since >= stable_s
            and all(_header_agrees(p) for p in files.audio)
        ):
            return True
        if now >= deadline:
            return False
        await asyncio.sleep(poll_s)
