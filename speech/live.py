"""One side of a live call through a :class:`~speech.stream.StreamRecogniser`, as it is spoken.

:func:`consume_side` is the consumer: it takes any async source of 8 kHz slin frames (the
engine's AudioSocket server through a :class:`FrameQueue` today; a job system's stream could
feed it the same way), feeds Vosk off the event loop, reports what was heard so far after
each batch (:class:`Heard`) and returns the side's whole transcript when the source ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from speech.stream import AUDIOSOCKET_RATE, StreamRecogniser
from speech.transcriber import Transcript

log = logging.getLogger(__name__)

BYTES_PER_SECOND = AUDIOSOCKET_RATE * 2


@dataclass(frozen=True)
class Heard:
    """What one side said so far: completed utterances and Vosk's guess at the current one."""

    text: str
    partial: str
    completed: bool  # an utterance was completed by the latest audio


class FrameQueue:
    """An :class:`~speech.audiosocket.AudioSink` that is also the frames' async iterator."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.opened = False  # the stream connected
        self.bytes = 0
        self.ended_at: float | None = None  # time.time() of its end
        self.error = ""  # why it broke off (empty: it ended normally)
        self.ended = asyncio.Event()
        self._waiting = False

    def audio(self, frame: bytes) -> None:
        self.bytes += len(frame)
        self._queue.put_nowait(frame)

    def closed(self, error: str = "") -> None:
        if self.ended_at is None:
            self.ended_at, self.error = time.time(), error
            self._queue.put_nowait(None)
            self.ended.set()

    @property
    def idle(self) -> bool:
        """The consumer has taken every frame and asked for more (it has caught up)."""
        return self._waiting and self._queue.empty()

    async def batches(self) -> AsyncIterator[bytes]:
        """Every frame waiting at once (after a slow Vosk call the backlog goes in together)."""
        while True:
            self._waiting = True
            frame = await self._queue.get()
            self._waiting = False
            if frame is None:
                return
            chunk = bytearray(frame)
            while not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    yield bytes(chunk)
                    return
                chunk += more
            yield bytes(chunk)


def _feed(recogniser: StreamRecogniser, chunk: bytes) -> tuple[bool, str]:
    """In a worker thread: feed, then (utterance completed?, the current partial)."""
    completed = bool(recogniser.feed(chunk))
    return completed, recogniser.partial


async def consume_side(
    frames: AsyncIterator[bytes],
    recogniser: StreamRecogniser,
    on_heard: Callable[[Heard], None] | None = None,
) -> Transcript:
    """Feed every frame of ``frames`` to ``recogniser``; ``on_heard`` when the text changes."""
    last = Heard("", "", False)
    async for chunk in frames:
        completed, partial = await asyncio.to_thread(_feed, recogniser, chunk)
        text = " ".join(w.text for w in recogniser.words)
        heard = Heard(text, partial, completed)
        if on_heard is not None and (heard.text, heard.partial) != (last.text, last.partial):
            on_heard(heard)
        last = heard
    return await asyncio.to_thread(recogniser.finish)
