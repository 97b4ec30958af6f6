"""The real FastAGI channel (:class:`pbx.agi_channel.PanoramiskChannel`) served by
:class:`pbx.fastagi.FastAgiServer` over a real socket, with the test playing Asterisk's side
of the AGI protocol: the exact commands sent, and what each of Asterisk's answers becomes
(keys, variables, a hang-up, an error). The fake channel of the route tests stands in for
this one; these tests hold the real one to the same contract.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pbx.agi_channel import KEYS, AgiChannel, AgiCommandError, CallerHungUp
from pbx.fastagi import FastAgiServer

KEY = "channel-test-key-0123456789"


def headers(script: str) -> bytes:
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}?key={KEY}",
        "agi_channel: PJSIP/citizens-00000001",
        "agi_uniqueid: 1800000000.1",
        "agi_callerid: 13900001111",
        "agi_extension: 12345",
        "agi_threadid: 140000000000",
    ]
    return ("\n".join(lines) + "\n\n").encode()


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def converse(
    use: Callable[[AgiChannel], Awaitable[Any]], answers: list[str]
) -> tuple[list[str], Any]:
    """Serve one call whose route runs ``use`` on its channel; Asterisk's side answers each
    command with the next of ``answers``. Returns the commands sent and what ``use``
    returned (or raised)."""
    outcome: list[Any] = []

    async def route(channel: AgiChannel) -> None:
        try:
            outcome.append(await use(channel))
        except (CallerHungUp, AgiCommandError) as exc:
            outcome.append(exc)

    server = FastAgiServer(KEY)
    server.add_route("ivr", route)
    port = free_tcp_port()
    await server.start("127.0.0.1", port)
    sent: list[str] = []
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(headers("ivr"))
        for answer in answers:
            line = await asyncio.wait_for(reader.readline(), 5)
            if not line:
                break
            sent.append(line.decode().rstrip("\n"))
            writer.write(answer.encode() + b"\n")
            await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b"", "a command nobody answered"
        writer.close()
    finally:
        await server.stop()
    [result] = outcome
    return sent, result


async def test_a_key_during_a_prompt_stops_it_and_begins_the_entry() -> None:
    sent, digits = await converse(
        lambda agi: agi.get_data(["welcome", "notice", "menu"], 2.0, 4),
        [
            "200 result=0 endpos=8000",  # welcome played to its end
            "200 result=51 endpos=1200",  # 3 pressed during the notice
            "200 result=52",  # then 4
            "200 result=35",  # then # ends the entry
        ],
    )
    assert sent == [
        f'STREAM FILE "welcome" "{KEYS}"',
        f'STREAM FILE "notice" "{KEYS}"',
        "WAIT FOR DIGIT 2000",
        "WAIT FOR DIGIT 2000",
    ]  # the menu itself is never played: the caller already chose
    assert digits == "34"


async def test_the_last_prompt_collects_the_keys_and_silence_is_empty() -> None:
    sent, digits = await converse(lambda agi: agi.get_data(["menu"], 3.0, 1), ["200 result=2"])
    assert (sent, digits) == (['GET DATA "menu" 3000 1'], "2")
    _, silence = await converse(
        lambda agi: agi.get_data(["menu"], 3.0, 1), ["200 result= (timeout)"]
    )
    assert silence == ""


async def test_variables_are_set_and_read() -> None:
    async def use(agi: AgiChannel) -> tuple[str, str]:
        await agi.set_variable("HOTLINE_ROUTE_KIND", "queue")
        return await agi.get_variable("HOTLINE_LANGUAGE"), await agi.get_variable("UNSET")

    sent, values = await converse(use, ["200 result=1", "200 result=1 (en)", "200 result=0"])
    assert sent == [
        'SET VARIABLE HOTLINE_ROUTE_KIND "queue"',
        "GET VARIABLE HOTLINE_LANGUAGE",
        "GET VARIABLE UNSET",
    ]
    assert values == ("en", "")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("HANGUP", CallerHungUp),
        ("511 Command Not Permitted on a dead channel or intercept routine", CallerHungUp),
        ("510 Invalid or unknown command", AgiCommandError),
    ],
)
async def test_asterisks_refusals_become_the_protocols_errors(
    answer: str, error: type[Exception]
) -> None:
    sent, raised = await converse(lambda agi: agi.stream(["menu", "never"]), [answer])
    assert sent == ['STREAM FILE "menu" ""'] and isinstance(raised, error)


async def test_stream_with_barge_in_stops_at_a_key() -> None:
    """The IVR's last prompts (transfer, a work order's status): a key ends them."""
    play = lambda agi: agi.stream(["transfer", "never"], barge_in=True)  # noqa: E731
    sent, _ = await converse(play, ["200 result=49 endpos=800"])  # 1 pressed
    assert sent == [f'STREAM FILE "transfer" "{KEYS}"']
    sent, _ = await converse(play, ["200 result=0 endpos=8000", "200 result=0 endpos=8000"])
    assert sent == [f'STREAM FILE "transfer" "{KEYS}"', f'STREAM FILE "never" "{KEYS}"']
