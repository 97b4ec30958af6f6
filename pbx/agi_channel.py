"""The FastAGI channel the engine's routes talk to: a :class:`AgiChannel` protocol, the
typed call headers it carries, and :class:`PanoramiskChannel`, the real one over a
panoramisk request (served by :mod:`pbx.fastagi`).

Routes (the IVR session, the queue wait, the callback, the seats' feature codes) are typed
against the protocol only, so tests can drive them with a scripted fake
(``tests/fake_channel.py``) without Asterisk. Every command either returns Asterisk's
``(result, data)`` or raises :class:`CallerHungUp` / :class:`AgiCommandError`; a fake must
do the same.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs

from panoramisk.fast_agi import Request

from calls.callerid import CallerId, parse_caller_id

#: the keys that interrupt a prompt (barge-in)
KEYS = "0123456789*#"
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class CallerHungUp(Exception):
    """The caller hung up while the engine was talking to them."""


class AgiCommandError(RuntimeError):
    """Asterisk refused or failed an AGI command."""


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
        headers = {name: CONTROL.sub("", value) for name, value in headers.items()}
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


class AgiChannel(Protocol):
    """The AGI operations a route uses on one call."""

    @property
    def call(self) -> AgiCall: ...

    async def command(self, command: str, deadline_s: float | None = None) -> tuple[str, str]:
        """Send one raw AGI command (``SET MUSIC ON``, ``WAIT FOR DIGIT``, ``EXEC Dial``...);
        return the (result, data) pair Asterisk answered."""
        ...

    async def get_data(self, files: list[str], timeout_s: float, max_digits: int) -> str:
        """Play ``files`` (any key interrupts them) and collect up to ``max_digits`` digits;
        ``#`` ends the entry, ``""`` means nothing was pressed in time."""
        ...

    async def stream(self, files: list[str], *, barge_in: bool = False) -> None:
        """Play ``files`` to the end, no key interrupts them; with ``barge_in`` a key stops
        the playback (the rest of the files too) and is discarded."""
        ...

    async def set_variable(self, name: str, value: str) -> None: ...

    async def get_variable(self, name: str) -> str:
        """The channel variable's value ("" if unset)."""
        ...

    def release(self) -> None:
        """End the AGI conversation now: Asterisk goes on in the dialplan while the route
        finishes its own work (writing the call record); no command may follow."""
        ...


class PanoramiskChannel:
    """:class:`AgiChannel` over a panoramisk FastAGI request, each command with a deadline."""

    def __init__(self, request: Request, call: AgiCall, deadline_s: float = 180.0) -> None:
        self._request = request
        self._call = call
        self._deadline_s = deadline_s
        self._released = False

    @property
    def call(self) -> AgiCall:
        return self._call

    async def command(self, command: str, deadline_s: float | None = None) -> tuple[str, str]:
        if self._released:
            raise AgiCommandError(f"{command!r}: the AGI conversation was released")
        if CONTROL.search(command):
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
        # GET DATA plays one file; the ones before it are streamed, interruptible by any key.
        for file in files[:-1]:
            code, _ = await self.command(f'STREAM FILE "{file}" "{KEYS}"')
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

    async def stream(self, files: list[str], *, barge_in: bool = False) -> None:
        escape = KEYS if barge_in else ""
        for file in files:
            code, _ = await self.command(f'STREAM FILE "{file}" "{escape}"')
            if code not in {"", "0"}:
                return  # a key: "result" is its code (only with escape digits)

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f'SET VARIABLE {name} "{value}"', deadline_s=10)

    async def get_variable(self, name: str) -> str:
        code, data = await self.command(f"GET VARIABLE {name}", deadline_s=10)
        return data if code == "1" else ""

    def release(self) -> None:
        # what the FastAGI server does when a route returns: Asterisk's AGI() ends on EOF
        self._released = True
        self._request.writer.close()
