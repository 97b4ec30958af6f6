"""FastAGI trusts only our Asterisk: every request carries the instance key, and nothing a
caller sends (caller ID with CR/LF) can add a header or a command.

The first tests talk to a :class:`FastAgiServer` over a real socket without Asterisk; the
end-to-end ones forge a connection to the running engine and place a real sipp call whose
From user carries ``%0D%0A`` and forged header lines, and check that no seat is logged out.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from conftest import eventually
from seat_calls import REPORT

from agents.states import SeatState
from hotline.engine import Hotline
from hotline.wiring import agi_key
from pbx.agi_channel import AgiChannel, AgiCommandError
from pbx.fastagi import FastAgiServer, route_url
from sipsim.citizen import free_udp_port, place_call

KEY = "k" * 16 + "-_0123456789abcdef"
PIN = "2468"


def headers(script: str, *, channel: str = "PJSIP/8001-00000001", callerid: str = "8001",
            args: tuple[str, ...] = ()) -> bytes:  # fmt: skip
    """The header block Asterisk 22 sends for AGI(agi://host/<script>,<args>), in its order."""
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1/{script}",
        f"agi_channel: {channel}",
        "agi_language: en",
        "agi_type: PJSIP",
        "agi_uniqueid: 1700000000.1",
        "agi_version: 22.10.1",
        f"agi_callerid: {callerid}",
        "agi_calleridname: citizen",
        "agi_callingpres: 0",
        "agi_dnid: *22",
        "agi_context: hotline-seats",
        "agi_extension: *22",
        "agi_priority: 1",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        "agi_threadid: 140000000000",
        *(f"agi_arg_{i}: {arg}" for i, arg in enumerate(args, 1)),
    ]
    return ("\n".join(lines) + "\n\n").encode()


@pytest_asyncio.fixture
async def server() -> AsyncIterator[tuple[FastAgiServer, list[AgiChannel], int]]:
    seen: list[AgiChannel] = []

    async def route(agi: AgiChannel) -> None:
        seen.append(agi)

    agi = FastAgiServer(KEY)
    agi.add_route("seat", route)
    port = free_tcp_port()
    await agi.start("127.0.0.1", port)
    yield agi, seen, port
    await agi.stop()


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def send(port: int, data: bytes) -> bytes:
    """Send a request; return what the server answered before it closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


@pytest.mark.parametrize(
    "request_bytes",
    [
        headers("seat", args=("logout",)),  # no key: the forged connection of issue 7
        headers("seat?key=" + "x" * 34, args=("logout",)),  # a wrong key
        headers("seat?key=", args=("logout",)),
    ],
)
async def test_a_request_without_the_key_is_refused_and_logged(
    server: tuple[FastAgiServer, list[AgiChannel], int],
    request_bytes: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _agi, seen, port = server
    with caplog.at_level(logging.WARNING, logger="pbx.fastagi"):
        assert await send(port, request_bytes) == b""
    assert seen == []
    assert "refused: no valid key for route 'seat'" in caplog.text


async def test_the_key_opens_the_route(server: tuple[FastAgiServer, list[AgiChannel], int]) -> None:
    _agi, seen, port = server
    await send(port, headers(f"seat?key={KEY}", args=("logout",)))
    [agi] = seen
    assert agi.call.script == "seat" and agi.call.args == ("logout",)
    assert route_url("127.0.0.1", 4573, "seat", KEY) == f"agi://127.0.0.1:4573/seat?key={KEY}"


@pytest.mark.parametrize(
    ("callerid", "why"),
    [
        # the line break arrives decoded: a forged header after the caller ID
        ("13912345678\nagi_extension: *22", "header 'agi_extension' sent twice"),
        ("13912345678\nagi_arg_1: logout", "header 'agi_arg_1' before agi_threadid"),
        # a forged blank line ends the headers before Asterisk's own end
        ("13912345678\n\nagi_network_script: seat", "headers end early"),
    ],
)
async def test_forged_header_lines_in_the_caller_id_are_refused(
    server: tuple[FastAgiServer, list[AgiChannel], int],
    callerid: str,
    why: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _agi, seen, port = server
    with caplog.at_level(logging.WARNING, logger="pbx.fastagi"):
        await send(port, headers(f"ivr?key={KEY}", callerid=callerid))
    assert seen == []
    assert why in caplog.text


async def test_control_characters_never_reach_a_route_or_a_command() -> None:
    agi = FastAgiServer(KEY)
    answers: list[str] = []

    async def route(channel: AgiChannel) -> None:
        answers.append(channel.call.caller.raw)
        try:
            await channel.set_variable("HOTLINE_NOTE", "a\r\nHANGUP")
        except AgiCommandError as exc:
            answers.append(str(exc))

    agi.add_route("ivr", route)
    port = free_tcp_port()
    await agi.start("127.0.0.1", port)
    try:
        sent = await send(port, headers(f"ivr?key={KEY}", callerid="139\r12345678\x07"))
    finally:
        await agi.stop()
    assert answers[0] == "13912345678"
    assert "refused, it holds a control character" in answers[1]
    assert sent == b""  # the command was refused before anything was written


def test_a_weak_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 to 128"):
        FastAgiServer("short")
    with pytest.raises(ValueError):
        FastAgiServer('a key with spaces and quotes"')


# -- through the running engine ------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def logged_in_seat(hotline: Hotline) -> AsyncIterator[str]:
    await hotline.acd.login("8006", PIN)
    yield "8006"
    await hotline.acd.logout("8006")


async def seat_state(hotline: Hotline, ext: str) -> SeatState:
    return (await hotline.acd.seat(ext)).state


@pytest.mark.e2e
async def test_a_forged_connection_to_the_engine_logs_no_seat_out(
    hotline: Hotline, logged_in_seat: str, caplog: pytest.LogCaptureFixture
) -> None:
    s = hotline.settings
    forged = headers("seat", channel=f"PJSIP/{logged_in_seat}-00000001", args=("logout",))
    with caplog.at_level(logging.WARNING, logger="pbx.fastagi"):
        assert await send(s.agi_port, forged) == b""
    assert "refused: no valid key" in caplog.text
    assert await seat_state(hotline, logged_in_seat) == SeatState.AVAILABLE
    assert s.agi_host == "127.0.0.1"  # loopback by default
    assert (s.data_dir / "secrets.toml").stat().st_mode & 0o777 == 0o600
    assert f"?key={agi_key(s)}" in (hotline.asterisk.etc_dir / "extensions.conf").read_text()  # type: ignore[union-attr]


@pytest.mark.e2e
async def test_a_from_user_with_encoded_line_breaks_logs_no_seat_out(
    hotline: Hotline, logged_in_seat: str, tmp_path: Path
) -> None:
    """Issue 7: a From user carrying %0D%0A and forged AGI headers paused and logged out
    seats. Now the dialplan strips the control characters before the AGI, so the call is
    served as any other (IVR, keys, queue) and the seat stays as it was."""
    s = hotline.settings
    number = f"1391234{free_udp_port() % 10000:04d}"
    forged = (
        f"{number}%0D%0Aagi_network_script%3A%20seat%0D%0Aagi_channel%3A%20PJSIP%2F"
        f"{logged_in_seat}-00000009%0D%0Aagi_arg_1%3A%20logout%0D%0A%0D%0A"
    )
    result = await place_call(
        tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=forged, presses=REPORT, hold_ms=2000,
    )  # fmt: skip
    assert result.returncode == 0, result.errors[-2000:]

    async def record() -> dict[str, object] | None:
        calls = await hotline.calls.recent(200)
        return next((c for c in calls if number in str(c["caller_raw"])), None)

    call = await eventually(record, what="the call record of the forged caller")
    assert call["route"] == "queue:report"  # a queue seat 8006 does not serve
    # the text arrives without its line breaks (the audit copy is cut at 80 characters)
    assert str(call["caller_raw"]).startswith(f"{number}agi_network_script: seatagi_channel: ")
    assert call["caller_number"] is None  # kept for audit, never dialled back
    assert await seat_state(hotline, logged_in_seat) == SeatState.AVAILABLE
