"""Studio recordings that replace synthesised prompts: checked when the menu is loaded.

A menu entry such as ``zh_file = "prompts/zh/welcome.wav"`` (relative to the menu file)
names a recording for one language. Asterisk plays a ``.wav`` as 8 kHz mono signed 16-bit
PCM (its ``wav`` format); anything else would be refused or played at the wrong speed, so
the menu is refused at load with the reason and the command that converts the file.
"""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

from ivr.tree import Recording

RATE = 8000
_MIN_FRAMES = RATE // 10  # a tenth of a second: shorter is a broken or empty file
CONVERT = "sox IN.wav -r 8000 -c 1 -b 16 -e signed-integer OUT.wav"


def load_recording(path: Path) -> Recording:
    """The recording at ``path``; :class:`ValueError` with the reason if Asterisk cannot play it."""
    if path.suffix.lower() != ".wav":
        raise ValueError(f"{path}: a recording must be a .wav file (8 kHz mono 16-bit)")
    try:
        data = path.read_bytes()
        with wave.open(str(path), "rb") as wav:
            shape = (wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
            frames, compression = wav.getnframes(), wav.getcomptype()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, EOFError, wave.Error) as exc:
        raise ValueError(f"{path}: not a WAV file Asterisk can play ({exc})") from None
    if shape != (RATE, 1, 2) or compression != "NONE":
        rate, channels, width = shape
        raise ValueError(
            f"{path}: {rate} Hz, {channels} channel(s), {8 * width}-bit {compression}; "
            f"Asterisk plays 8000 Hz mono 16-bit PCM: convert with `{CONVERT}`"
        )
    if frames < _MIN_FRAMES:
        raise ValueError(f"{path}: {frames} samples, too short to be a prompt")
    return Recording(path.resolve(), hashlib.sha256(data).hexdigest()[:16])
