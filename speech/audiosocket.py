"""Asterisk AudioSocket: a TCP server that hands each connection's audio frames to a sink.

The protocol (docs.asterisk.org, Channel Drivers / AudioSocket): every message is a one-byte
kind, a two-byte big-endian length and the payload. A connection opens with the stream's
UUID (16 bytes), then carries 8 kHz 16-bit signed linear audio (320 bytes per 20 ms) until a
hangup message or the socket's end. The server only listens: Asterisk's side here is a
ChanSpy, so nothing is sent back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10
KIND_ERROR = 0xFF


class AudioSink(Protocol):
    def audio(self, frame: bytes) -> None:
        """One frame of audio (called on the event loop: must not block)."""
        ...

    def closed(self, error: str = "") -> None:
        """The stream ended: hangup or socket closed (no ``error``), or broken (``error``)."""
        ...


#: the sink for a stream's UUID, or None for a stream nobody asked for (refused)
SinkLookup = Callable[[uuid.UUID], AudioSink | None]


def message(kind: int, payload: bytes = b"") -> bytes:
    """One AudioSocket message as sent on the wire."""
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


async def read_message(reader: asyncio.StreamReader, timeout_s: float) -> tuple[int, bytes]:
    """(kind, payload) of the next message; IncompleteReadError at the socket's end."""
    async with asyncio.timeout(timeout_s):
        header = await reader.readexactly(3)
        length = int.from_bytes(header[1:3], "big")
        payload = await reader.readexactly(length) if length else b""
    return header[0], payload


class AudioSocketServer:
    def __init__(self, sinks: SinkLookup, idle_timeout_s: float = 3600.0) -> None:
        self._sinks = sinks
        # A stream silent this long is dropped. ChanSpy sends nothing while its channel sends
        # no audio (a phone that suppresses silence, a side that only listens), so this is
        # about the longest call, not a gap in speech; Asterisk closes the socket at hangup.
        self._idle_timeout_s = idle_timeout_s
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        log.info("AudioSocket server on %s:%s (live transcription)", host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._stream(reader)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _stream(self, reader: asyncio.StreamReader) -> None:
        try:
            kind, payload = await read_message(reader, self._idle_timeout_s)
        except (asyncio.IncompleteReadError, TimeoutError, OSError) as exc:
            log.warning("AudioSocket connection without its UUID: %s", type(exc).__name__)
            return
        if kind != KIND_UUID or len(payload) != 16:
            log.warning("AudioSocket connection opened with kind %#x, not a UUID: refused", kind)
            return
        stream_id = uuid.UUID(bytes=payload)
        sink = self._sinks(stream_id)
        if sink is None:
            log.warning("AudioSocket stream %s: nobody expects it; refused", stream_id)
            return
        error = ""
        try:
            while True:
                kind, payload = await read_message(reader, self._idle_timeout_s)
                if kind == KIND_AUDIO:
                    sink.audio(payload)
                elif kind == KIND_HANGUP:
                    break
                elif kind == KIND_ERROR:
                    error = f"Asterisk error {payload.hex() or 'without code'}"
                    break
        except asyncio.IncompleteReadError:
            pass  # Asterisk closed the socket: the channel hung up
        except TimeoutError:
            error = f"no audio for {self._idle_timeout_s:.0f} s"
        except OSError as exc:
            error = f"socket error ({exc})"
        except asyncio.CancelledError:
            error = "the server stopped"
            raise
        finally:
            log.debug("AudioSocket stream %s ended%s", stream_id, f": {error}" if error else "")
            sink.closed(error)
