"""Transcribe one WAV recording with a loaded Vosk model into a typed :class:`Transcript`.

Vosk resamples internally, so any sample rate works (Asterisk records at 8 kHz); the file
must be 16-bit PCM, and stereo is mixed down to mono.
"""

from __future__ import annotations

import json
import logging
import wave
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speech.errors import RecordingError

if TYPE_CHECKING:
    import vosk

log = logging.getLogger(__name__)

CHUNK_SECONDS = 0.25


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the recording
    end: float
    confidence: float


@dataclass(frozen=True)
class Transcript:
    words: tuple[Word, ...]
    text: str
    duration: float  # seconds of audio transcribed
    sample_rate: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "duration": self.duration,
            "sample_rate": self.sample_rate,
            "words": [
                {"word": w.text, "start": w.start, "end": w.end, "conf": w.confidence}
                for w in self.words
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        return cls(
            words=tuple(
                Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w["conf"]))
                for w in data["words"]
            ),
            text=str(data["text"]),
            duration=float(data["duration"]),
            sample_rate=int(data["sample_rate"]),
        )


def words_from_result(result_json: str) -> list[Word]:
    """The words of one Vosk ``Result()``/``FinalResult()`` JSON (needs ``SetWords(True)``)."""
    result = json.loads(result_json)
    return [
        Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w.get("conf", 1.0)))
        for w in result.get("result", ())
    ]


def build_transcript(words: Iterable[Word], duration: float, sample_rate: int) -> Transcript:
    ordered = tuple(sorted(words, key=lambda w: (w.start, w.end)))
    return Transcript(
        words=ordered,
        text=" ".join(w.text for w in ordered),
        duration=round(duration, 3),
        sample_rate=sample_rate,
    )


def _mono(chunk: bytes, channels: int) -> bytes:
    if channels == 1:
        return chunk
    samples = array("h", chunk)
    mixed = array(
        "h",
        (
            sum(samples[i : i + channels]) // channels
            for i in range(0, len(samples) - len(samples) % channels, channels)
        ),
    )
    return mixed.tobytes()


def _open_wav(path: Path) -> wave.Wave_read:
    if not path.is_file():
        raise RecordingError(path, "no such file")
    if path.stat().st_size == 0:
        raise RecordingError(path, "the file is empty")
    try:
        return wave.open(str(path), "rb")
    except (wave.Error, EOFError) as exc:
        raise RecordingError(path, f"not a readable WAV file ({exc})") from exc


def read_pcm(path: Path | str) -> tuple[int, Iterator[bytes], float]:
    """Open a WAV and return (sample rate, mono 16-bit chunks, duration in seconds)."""
    path = Path(path)
    wav = _open_wav(path)
    try:
        rate, width, channels, frames = (
            wav.getframerate(),
            wav.getsampwidth(),
            wav.getnchannels(),
            wav.getnframes(),
        )
        if wav.getcomptype() != "NONE" or width != 2:
            raise RecordingError(path, f"needs 16-bit PCM, got {8 * width}-bit {wav.getcomptype()}")
        if rate <= 0 or channels <= 0:
            raise RecordingError(path, f"bad header (rate {rate}, channels {channels})")
        if frames == 0:
            raise RecordingError(path, "the recording holds no audio")
    except BaseException:
        wav.close()
        raise

    def chunks() -> Iterator[bytes]:
        with wav:
            step = max(1, int(rate * CHUNK_SECONDS))
            try:
                while data := wav.readframes(step):
                    yield _mono(data, channels)
            except (wave.Error, EOFError) as exc:
                raise RecordingError(path, f"truncated or corrupt audio ({exc})") from exc

    return rate, chunks(), frames / rate


class Transcriber:
    """Transcribes recordings with one loaded model; one instance per process or thread."""

    def __init__(self, model: vosk.Model) -> None:
        self._model = model

    def recogniser(self, sample_rate: int) -> vosk.KaldiRecognizer:
        import vosk

        recogniser = vosk.KaldiRecognizer(self._model, float(sample_rate))
        recogniser.SetWords(True)
        return recogniser

    def transcribe(self, path: Path | str) -> Transcript:
        """Transcribe a whole WAV file; raises :class:`RecordingError` if it is unusable."""
        rate, chunks, duration = read_pcm(path)
        recogniser = self.recogniser(rate)
        words: list[Word] = []
        for chunk in chunks:
            if recogniser.AcceptWaveform(chunk):
                words.extend(words_from_result(recogniser.Result()))
        words.extend(words_from_result(recogniser.FinalResult()))
        transcript = build_transcript(words, duration, rate)
        log.debug("transcribed %s: %.1f s, %d words", path, duration, len(words))
        return transcript
