"""Asterisk's side of AudioSocket (chan_audiosocket) for tests and benchmarks: connect to the
engine's server, send the stream's UUID, then 8 kHz slin audio in 20 ms frames, then the end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from speech.audiosocket import KIND_AUDIO, KIND_ERROR, KIND_HANGUP, KIND_UUID, message
from speech.stream import AUDIOSOCKET_FRAME_BYTES

FRAME_S = 0.02


async def play(
    port: int,
    stream_id: uuid.UUID,
    pcm: bytes,
    *,
    end: int = KIND_HANGUP,
    realtime_s: float = 0.0,
    before_realtime: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Send ``pcm``: as fast as the server reads, but its last ``realtime_s`` seconds paced
    as a phone sends them (after ``before_realtime``, e.g. waiting for the recogniser to catch
    up); then ``end`` (hangup, or an error)."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(message(KIND_UUID, stream_id.bytes))
    tail = max(0, len(pcm) - int(realtime_s / FRAME_S) * AUDIOSOCKET_FRAME_BYTES)
    for offset in range(0, tail, AUDIOSOCKET_FRAME_BYTES):
        writer.write(message(KIND_AUDIO, pcm[offset : offset + AUDIOSOCKET_FRAME_BYTES]))
        if offset % (AUDIOSOCKET_FRAME_BYTES * 50) == 0:
            await writer.drain()
            await asyncio.sleep(0)
    await writer.drain()
    if before_realtime is not None:
        await before_realtime()
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    for offset in range(tail, len(pcm), AUDIOSOCKET_FRAME_BYTES):
        writer.write(message(KIND_AUDIO, pcm[offset : offset + AUDIOSOCKET_FRAME_BYTES]))
        await writer.drain()
        next_at += FRAME_S
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    writer.write(message(end, b"\x01" if end == KIND_ERROR else b""))
    await writer.drain()
    writer.close()
