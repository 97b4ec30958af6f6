"""FastAGI adapter (panoramisk): typed call headers, AGI commands with deadlines.

panoramisk's own connection handler loops forever on a client that closes before sending
its headers, and its commands have no deadline; :class:`FastAgiServer` reads the headers
itself (bounded, with a deadline) and hands routes a :class:`AgiChannel` whose commands
raise :class:`CallerHungUp` or :class:`AgiCommandError` instead of returning error dicts.

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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from panoramisk.fast_agi import Request

from calls.callerid import CallerId, parse_caller_id

log = logging.getLogger(__name__)

_MAX_HEADER_BYTES = 16 * 1024
_KEYS = "0123456789*#"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: a key that needs no quoting in a dialplan or AGI URL
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def route_url(host: str, port: int, route: str, key: str) -> str:
    """The URL Asterisk's AGI() uses to reach ``route`` on this engine."""
    return f"agi://{host}:{port}/{route}?key={key}"


class AgiRefused(Exception):
    """A FastAGI request that is not from our Asterisk (no or wrong key, forged headers)."""


class CallerHungUp(Exception):
    """The caller hung up while the IVR was talking to them."""


class AgiCommandError(RuntimeError):
    pass


@dataclass(frozen=True)
class AgiCall:
    """The AGI environment Asterisk sends with each call, typed."""

    uniqueid: str
    channel: str
    caller: CallerId
    dialed: str
    script: str
    args: tuple[str, ...] = ()  # AGI(agi://host/route,arg1,arg2): agi_arg_1, agi_arg_2, ...
    key: str = ""  # the instance key from the URL's ``?key=``

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> AgiCall:
        headers = {name: _CONTROL.sub("", value) for name, value in headers.items()}
        script, _, query = headers.get("agi_network_script", "").partition("?")
        key = parse_qs(query).get("key", [""])[0]
        raw_number = headers.get("agi_callerid", "")
        if raw_number.lower() == "unknown":
            raw_number = headers.get("agi_calleridname", "") or raw_number
        return cls(
            uniqueid=headers.get("agi_uniqueid", ""),
            channel=headers.get("agi_channel", ""),
            caller=parse_caller_id(raw_number),
            dialed=headers.get("agi_extension", ""),
            script=script.strip("/"),
            args=tuple(
                headers[f"agi_arg_{i}"]
                for i in range(1, 33)
                if f"agi_arg_{i}" in headers and headers[f"agi_arg_{i}"]
            ),
            key=key,
        )


class AgiChannel:
    """AGI commands on one call, each with a deadline."""

    def __init__(self, request: Request, call: AgiCall, deadline_s: float = 180.0) -> None:
        self._request = request
        self.call = call
        self._deadline_s = deadline_s

    async def command(self, command: str, deadline_s: float | None = None) -> tuple[str, str]:
        """Send one command; return the (result, data) pair Asterisk answered."""
        if _CONTROL.search(command):
            # a CR/LF would end this command and start another one of the caller's choosing
            raise AgiCommandError(f"{command!r}: refused, it holds a control character")
        try:
            answer = await asyncio.wait_for(
                self._request.send_command(command), deadline_s or self._deadline_s
            )
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise CallerHungUp(str(exc)) from exc
        except ValueError as exc:  # panoramisk cannot parse the empty line of a closed socket
            raise CallerHungUp("AGI connection closed") from exc
        error = answer.get("error")
        if error in {"AGIResultHangup", "AGIAppError"} or answer.get("status_code") == 511:
            raise CallerHungUp(answer.get("msg", error))
        if error:
            raise AgiCommandError(f"{command!r}: {error} {answer.get('msg', '')}".strip())
        result: tuple[str, str] = answer.get("result", ("", ""))
        return result

    async def get_data(self, files: list[str], timeout_s: float, max_digits: int) -> str:
        """Play ``files`` (interrupted by a key) and collect up to ``max_digits`` digits.

        ``#`` ends the entry; an empty string means the caller pressed nothing in time.
        """
        # GET DATA plays one file; the ones before it are streamed, interruptible by any key.
        for file in files[:-1]:
            code, _ = await self.command(f'STREAM FILE "{file}" "{_KEYS}"')
            if code not in {"", "0"}:
                return await self._more_digits(chr(int(code)), timeout_s, max_digits)
        last = files[-1] if files else "silence/1"
        digits, _ = await self.command(f'GET DATA "{last}" {int(timeout_s * 1000)} {max_digits}')
        return digits

    async def _more_digits(self, first: str, timeout_s: float, max_digits: int) -> str:
        """Collect the rest of an entry begun by interrupting a prompt, as GET DATA would."""
        digits = "" if first == "#" else first
        while first != "#" and len(digits) < max_digits:
            code, _ = await self.command(f"WAIT FOR DIGIT {int(timeout_s * 1000)}")
            if code in {"", "0"} or chr(int(code)) == "#":
                break
            digits += chr(int(code))
        return digits

    async def stream(self, files: list[str]) -> None:
        for file in files:
            await self.command(f'STREAM FILE "{file}" ""')

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f'SET VARIABLE {name} "{value}"', deadline_s=10)

    async def get_variable(self, name: str) -> str:
        """The channel variable's value ("" if unset)."""
        code, data = await self.command(f"GET VARIABLE {name}", deadline_s=10)
        return data if code == "1" else ""


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
            await route(AgiChannel(request, call))
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
