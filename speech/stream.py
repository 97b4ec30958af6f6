"""Incremental recognition of live call audio, e.g. from Asterisk AudioSocket.

Pure: no sockets. An AudioSocket server feeds each 320-byte frame (20 ms of 8 kHz signed
linear, little-endian) and calls :meth:`StreamRecogniser.finish` at hangup, so the transcript
is ready as the call ends. Vosk blocks for a few milliseconds per feed: drive it from a worker
thread (``asyncio.to_thread``), one recogniser per call side.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from speech.transcriber import Transcriber, Transcript, Word, build_transcript, words_from_result

if TYPE_CHECKING:
    import vosk

log = logging.getLogger(__name__)

AUDIOSOCKET_RATE = 8000
AUDIOSOCKET_FRAME_BYTES = 320


class StreamRecogniser:
    """Feed 16-bit mono PCM frames as they arrive; finish() returns the whole transcript.

    Frames are buffered to ``batch_seconds`` before reaching Vosk, which costs less than
    one call per 20 ms frame and adds at most that much delay. Vosk always gets blocks of
    exactly that size (the rest at finish()): its endpointing depends on the blocks it is
    fed, so the same audio gives the same words however the network grouped the frames.
    """

    def __init__(
        self,
        model: vosk.Model,
        sample_rate: int = AUDIOSOCKET_RATE,
        batch_seconds: float = 0.2,
    ) -> None:
        self.sample_rate = sample_rate
        self._recogniser = Transcriber(model).recogniser(sample_rate)
        self._batch_bytes = max(2, int(sample_rate * batch_seconds) * 2)
        self._buffer = bytearray()
        self._bytes_fed = 0
        self._words: list[Word] = []
        self._finished = False

    @property
    def words(self) -> tuple[Word, ...]:
        """Words of the utterances completed so far."""
        return tuple(self._words)

    @property
    def partial(self) -> str:
        """Vosk's current guess for the utterance in progress."""

        return str(json.loads(self._recogniser.PartialResult()).get("partial", ""))

    def feed(self, frame: bytes) -> list[Word]:
        """Add audio; returns the words of any utterance completed by it."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        self._buffer += frame
        self._bytes_fed += len(frame)
        completed: list[Word] = []
        while len(self._buffer) >= self._batch_bytes:
            completed += self._accept(self._batch_bytes)
        return completed

    def _accept(self, size: int) -> list[Word]:
        """Give Vosk the buffer's first ``size`` bytes; the words of an utterance it ended."""
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        if not self._recogniser.AcceptWaveform(chunk):
            return []
        completed = words_from_result(self._recogniser.Result())
        self._words.extend(completed)
        return completed

    def finish(self) -> Transcript:
        """End of the call: flush, close the last utterance, return everything heard."""
        if not self._finished:
            usable = len(self._buffer) - len(self._buffer) % 2  # a split sample is dropped
            if usable:
                self._accept(usable)
            self._words.extend(words_from_result(self._recogniser.FinalResult()))
            self._finished = True
        duration = self._bytes_fed / 2 / self.sample_rate
        return build_transcript(self._words, duration, self.sample_rate)
