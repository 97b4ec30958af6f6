"""FastAGI adapter (panoramisk): typed call headers, AGI commands with deadlines.

panoramisk's own connection handler loops forever on a client that closes before sending
its headers, and its commands have no deadline; :class:`FastAgiServer` reads the headers
itself (bounded, with a deadline) and hands routes a :class:`pbx.agi_channel.AgiChannel`
(the real one, :class:`~pbx.agi_channel.PanoramiskChannel`) whose commands raise
``CallerHungUp`` or ``AgiCommandError`` instead of returning error dicts.

Every request carries the instance's key in its URL (``agi://host:port/<route>?key=<key>``,
see :func:`route_url`); a request without it is refused and logged. Asterisk copies the
caller ID into the headers as it came from the network, so a caller ID holding CR/LF could
add header lines: a request naming any header twice is refused, header values lose control
characters, and no command carrying a control character is ever sent.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import Awaitable, Callable

from panoramisk.fast_agi import Request

from pbx.agi_channel import AgiCall, AgiChannel, PanoramiskChannel

log = logging.getLogger(__name__)

_MAX_HEADER_BYTES = 16 * 1024
#: a key that needs no quoting in a dialplan or AGI URL
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def route_url(host: str, port: int, route: str, key: str) -> str:
    """The URL Asterisk's AGI() uses to reach ``route`` on this engine."""
    return f"agi://{host}:{port}/{route}?key={key}"


class AgiRefused(Exception):
    """A FastAGI request that is not from our Asterisk (no or wrong key, forged headers)."""


Route = Callable[[AgiChannel], Awaitable[None]]


class FastAgiServer:
    """Serves FastAGI routes (``agi://host:port/<route>``)."""

    def __init__(self, key: str, header_timeout_s: float = 5.0) -> None:
        if not KEY_PATTERN.fullmatch(key):
            raise ValueError("the FastAGI key must be 16 to 128 characters of A-Z a-z 0-9 _ -")
        self._key = key
        self._routes: dict[str, Route] = {}
        self._header_timeout_s = header_timeout_s
        self._server: asyncio.Server | None = None
        self.active: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    def add_route(self, path: str, route: Route) -> None:
        self._routes[path.strip("/")] = route

    @property
    def serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, host, port, reuse_address=True)
        log.info("FastAGI listening on %s:%s", host, port)

    async def stop(self, drain_s: float = 10.0) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.active and drain_s > 0:
            log.info("waiting for %d call(s) still in the IVR", len(self.active))
            await asyncio.wait(self.active, timeout=drain_s)

    async def abort(self) -> None:
        """Stop serving and drop every open FastAGI connection at once, as a crashed engine
        would: Asterisk carries on in the dialplan after each AGI() (the ACD's fallback)."""
        await self.stop(drain_s=0)
        for writer in list(self._writers):
            writer.close()
        if self.active:
            await asyncio.wait(self.active, timeout=5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.active.add(task)  # type: ignore[arg-type]
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        try:
            headers = await asyncio.wait_for(_read_headers(reader), self._header_timeout_s)
            if headers is None:
                log.debug("FastAGI client closed before sending its headers")
                return
            call = AgiCall.from_headers(headers)
            if not hmac.compare_digest(call.key.encode(), self._key.encode()):
                raise AgiRefused(f"no valid key for route {call.script!r}")
            route = self._routes.get(call.script)
            if route is None:
                log.error("call %s asked for unknown FastAGI route %r", call.uniqueid, call.script)
                return
            request = Request(app=None, headers=headers, reader=reader, writer=writer)
            await route(PanoramiskChannel(request, call))
        except AgiRefused as exc:
            log.warning("FastAGI request from %s refused: %s", peer, exc)
        except TimeoutError:
            log.warning("FastAGI client sent no headers within %.0f s", self._header_timeout_s)
        finally:
            self.active.discard(task)  # type: ignore[arg-type]
            self._writers.discard(writer)
            writer.close()


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str] | None:
    """The header block, checked against the shape Asterisk sends: each header once, the
    call's headers ending with ``agi_threadid`` and only the AGI() arguments after it."""
    headers: dict[str, str] = {}
    size = 0
    while True:
        line = await reader.readline()
        if not line:
            return None
        size += len(line)
        if size > _MAX_HEADER_BYTES:
            raise AgiRefused("headers too large")
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if not text:
            if "agi_threadid" not in headers:
                raise AgiRefused("headers end early (a forged blank line in the caller ID?)")
            return headers
        key, sep, value = text.partition(": ")
        if sep:
            if key in headers:  # Asterisk never repeats one: a caller ID carried a line break
                raise AgiRefused(f"header {key!r} sent twice (a forged line in the caller ID?)")
            if key.startswith("agi_arg_") and "agi_threadid" not in headers:
                raise AgiRefused(f"header {key!r} before agi_threadid (a forged line?)")
            headers[key] = value
