"""Real SIP calls (sipp) to 12345 through Asterisk 22 and the engine's IVR."""

from __future__ import annotations

import asyncio
import re
import shlex
import wave
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import FAST_MENU_TIMEOUT_S, AmiEvents, call_record, eventually, new_caller
from staff import supervisor_auth

from hotline.engine import Hotline
from hotline.settings import PROJECT_DIR
from ivr.menu import load_menu
from ivr.prompts import PromptLibrary
from ivr.walk import Prompt
from pbx.agi_channel import KEYS
from queueing.events import read_events
from sipsim.citizen import Press, free_media_port, free_udp_port, place_call, start_call
from workorders.orders import Actor, NewWorkOrder, Role

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def dial(hotline: Hotline, tmp_path: Path, caller: str, presses: list[Press],
               hold_ms: int = 2000) -> None:  # fmt: skip
    s = hotline.settings
    result = await place_call(
        tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=caller, presses=presses, hold_ms=hold_ms,
    )  # fmt: skip
    assert result.returncode == 0, f"sipp failed:\n{result.stderr[-2000:]}\n{result.errors[-2000:]}"


async def dial_until_queued(
    hotline: Hotline, tmp_path: Path, caller: str, presses: list[Press], hold_ms: int
) -> None:
    """A call that hangs up once the engine's ACD has queued it (after ``hold_ms`` at most)."""
    s = hotline.settings
    citizen = await start_call(
        tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=caller, presses=presses, hold_ms=hold_ms,
    )  # fmt: skip
    try:

        async def queued() -> bool:
            record = await call_record(hotline, caller, closed=False)
            return bool(await acd_queues(hotline, record["uniqueid"]))

        await eventually(queued, hold_ms / 1000 + 60, f"the call from {caller} to be queued")
    finally:
        result = await citizen.hang_up()
    assert result.returncode == 0, f"sipp failed:\n{result.stderr[-2000:]}\n{result.errors[-2000:]}"


async def acd_queues(hotline: Hotline, uniqueid: str) -> list[str]:
    """The queues (skills) of the engine's ACD the call entered."""
    events = await read_events(hotline.acd.redis, hotline.settings.acd_prefix, count=100_000)
    return [e.skill for e in events if e.type == "enter" and e.call_id == uniqueid]


def prompt_seconds(hotline: Hotline, prompt: Prompt) -> float:
    library = PromptLibrary(hotline.settings.prompts_dir, hotline.menu.voices)
    with wave.open(str(library.wav_for(prompt))) as wav:
        return wav.getnframes() / wav.getframerate()


def played(events: AmiEvents, uniqueid: str) -> list[str]:
    """The AGI commands Asterisk executed for the call (each names the prompt file played)."""
    return [
        e.get("CommandLine", "") or e.get("Command", "")
        for e in events.of(uniqueid, "AGIExecStart")
    ]


def keys(call: dict[str, object]) -> list[tuple[str | None, str | None]]:
    return [(s["node"], s["detail"]) for s in call["journey"] if s["kind"] == "key"]  # type: ignore[index,union-attr]


def steps(call: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in call["journey"] if s["kind"] == kind]


def seconds_after_start(call: dict[str, Any], step: dict[str, Any]) -> float:
    started = datetime.fromisoformat(call["started_at"])
    return (datetime.fromisoformat(step["at"]) - started).total_seconds()


async def test_pressing_1_routes_to_the_report_queue(
    hotline: Hotline, ami_events: AmiEvents, tmp_path: Path
) -> None:
    caller = new_caller()
    await dial(hotline, tmp_path, caller, [Press("1", 2500), Press("1", 1500)], hold_ms=3000)
    call = await call_record(hotline, caller)
    assert call["caller_number"] == caller
    assert call["route"] == "queue:report"
    assert call["route_reason"] == "selected"
    assert call["language"] == "zh"
    assert keys(call) == [("language", "1"), ("main", "1")]
    assert await acd_queues(hotline, call["uniqueid"]) == ["report"], "the ACD did not queue it"
    assert call["hangup_cause"] is not None
    # each key is stamped when it was pressed: 2.5 s in, then 1.5 s after the first key's
    # tone (0.4 s) ended; not all at the moment the menu finished
    language, main = (seconds_after_start(call, k) for k in steps(call, "key"))
    assert 2.0 < language < 4.5, call["journey"]
    assert 1.5 < main - language < 3.0, call["journey"]
    route = seconds_after_start(call, steps(call, "route")[0])
    assert route >= main
    menus = [seconds_after_start(call, m) for m in steps(call, "menu")]
    assert menus[0] < language <= menus[1] < main, call["journey"]


async def test_silent_caller_reaches_the_operator_after_two_timeouts(
    hotline: Hotline, ami_events: AmiEvents, tmp_path: Path
) -> None:
    """A caller who presses nothing: welcome, notice, language choice, a timeout, the main
    menu once, a second timeout, the operator. Prints the worst-case time to a human."""
    caller = new_caller()
    menu = hotline.menu
    intro = [menu.prompts[p].prompt("zh") for p in menu.intro] + [
        menu.nodes["language"].prompt.prompt(lang) for lang in menu.languages
    ]
    main = menu.nodes["main"].prompt.prompt("zh")
    transfer = menu.prompts["transfer"].prompt("zh")
    heard_s = sum(prompt_seconds(hotline, p) for p in [*intro, main, transfer])
    hold_ms = int((heard_s + 2 * menu.timeout_s + 6) * 1000)
    await dial_until_queued(hotline, tmp_path, caller, [], hold_ms=hold_ms)
    call = await call_record(hotline, caller)
    assert call["route"] == "queue:operator"
    assert call["route_reason"] == "no-input"
    assert [s["node"] for s in steps(call, "no-input")] == ["language", "main"]
    assert [s["node"] for s in steps(call, "menu")] == ["language", "main"], "menu read twice"
    assert await acd_queues(hotline, call["uniqueid"]) == ["operator"]
    # every prompt the caller heard listened for keys (barge-in), the transfer notice too
    menu_prompts = re.compile(r"/(welcome|emergency|language|main|transfer)-")
    commands = [c for c in played(ami_events, call["uniqueid"]) if menu_prompts.search(c)]
    assert any("/transfer-" in c for c in commands), commands
    streams = [c for c in commands if c.upper().startswith("STREAM FILE")]
    assert streams and all(f'"{KEYS}"' in c for c in streams), commands
    assert all(c.upper().startswith(("STREAM FILE", "GET DATA")) for c in commands), commands

    events = await read_events(hotline.acd.redis, hotline.settings.acd_prefix, count=100_000)
    entered = next(e for e in events if e.type == "enter" and e.call_id == call["uniqueid"])
    measured = entered.at - datetime.fromisoformat(call["started_at"]).timestamp()
    shipped = load_menu(PROJECT_DIR / "ivr" / "menu.toml")
    projected = measured + 2 * (shipped.timeout_s - FAST_MENU_TIMEOUT_S)
    print(
        f"\nsilent caller to the operator queue: {measured:.1f} s with the test menu's "
        f"{FAST_MENU_TIMEOUT_S} s timeouts; {projected:.1f} s with the shipped menu's "
        f"{shipped.timeout_s:.0f} s (prompts {heard_s:.1f} s, 2 timeouts; was about 128 s)"
    )


async def test_a_key_interrupts_the_prompts_barge_in(
    hotline: Hotline, ami_events: AmiEvents, tmp_path: Path
) -> None:
    """Keys pressed while the welcome and the main menu are still playing are taken at
    once: the rest of the intro is not played."""
    caller = new_caller()
    await dial(hotline, tmp_path, caller, [Press("2", 800), Press("1", 800)], hold_ms=3000)
    call = await call_record(hotline, caller)
    assert keys(call) == [("language", "2"), ("main", "1")]
    assert call["route"] == "queue:report" and call["language"] == "en"
    menu = hotline.menu
    welcome = menu.prompts["welcome"].prompt("zh")
    main = menu.nodes["main"].prompt.prompt("en")
    language, main_key = (seconds_after_start(call, k) for k in steps(call, "key"))
    assert language < prompt_seconds(hotline, welcome), "the welcome was not interrupted"
    main_menu = seconds_after_start(call, steps(call, "menu")[1])
    assert main_key - main_menu < prompt_seconds(hotline, main), "the menu was not interrupted"
    commands = played(ami_events, call["uniqueid"])
    assert any("/zh/welcome-" in c for c in commands), commands
    assert not any("/emergency-" in c or "/language-" in c for c in commands), commands


async def test_the_readme_call_walks_the_menu(hotline: Hotline, ami_events: AmiEvents) -> None:
    """The command the README gives (its scenario, from the project folder), pointed at the
    test engine's SIP port, with local ports of its own."""
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^sipp 127\.0\.0\.1:5060 .*-sf .*$", readme, re.MULTILINE)
    assert found, "the README no longer gives a sipp command with a scenario"
    s = hotline.settings
    command = shlex.split(found[0].replace("127.0.0.1:5060", f"{s.sip_host}:{s.sip_port}"))
    command += ["-i", "127.0.0.1", "-p", str(free_udp_port()), "-mi", "127.0.0.1"]
    command += ["-mp", str(free_media_port()), "-timeout", "90s", "-nostdin"]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=PROJECT_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 100)
    assert process.returncode == 0, (out.decode()[-2000:], err.decode()[-2000:])
    call = await call_record(hotline, "13800138000")
    assert keys(call) == [("language", "2"), ("main", "2")], call["journey"]
    assert (call["language"], call["route"]) == ("en", "queue:consultation")
    assert await acd_queues(hotline, call["uniqueid"]) == ["consultation"]
    commands = played(ami_events, call["uniqueid"])
    assert any("/en/main-" in c for c in commands), commands


async def test_invalid_key_is_refused_and_retried(
    hotline: Hotline, ami_events: AmiEvents, tmp_path: Path
) -> None:
    caller = new_caller()
    await dial(hotline, tmp_path, caller, [Press("1", 2500), Press("7", 1500), Press("2", 2500)])
    call = await call_record(hotline, caller)
    assert keys(call) == [("language", "1"), ("main", "7"), ("main", "2")]
    assert call["route"] == "queue:consultation"
    commands = played(ami_events, call["uniqueid"])
    invalid = [c for c in commands if "/zh/invalid-" in c]
    assert invalid, f"the invalid-choice prompt was not played: {commands}"


async def test_work_order_number_is_read_after_3(
    hotline: Hotline, ami_events: AmiEvents, tmp_path: Path
) -> None:
    caller = new_caller()
    await dial_until_queued(
        hotline, tmp_path, caller,
        [Press("1", 2500), Press("3", 1500), Press("20260000001#", 2000)], hold_ms=12000,
    )  # fmt: skip
    call = await call_record(hotline, caller)
    assert call["entered_number"] == "20260000001"
    # no such order: the caller hears so and is passed to an operator
    assert call["route"] == "queue:operator"
    assert any("/zh/order-unknown-" in c for c in played(ami_events, call["uniqueid"]))


@pytest.mark.parametrize(
    ("language_key", "language", "words"),
    [("1", "zh", "您查询的工单已派单"), ("2", "en", "Your work order is with a department")],
)
async def test_an_existing_order_is_read_in_the_callers_language(
    hotline: Hotline,
    ami_events: AmiEvents,
    tmp_path: Path,
    language_key: str,
    language: str,
    words: str,
) -> None:
    """An order made through the engine's work-order service, queried by phone: the words
    the caller hears (the call record) and the file Asterisk played are in their language."""
    operator = Actor("王敏", Role.OPERATOR)
    order = await hotline.work_orders.create(
        NewWorkOrder(channel="phone", description="小寨附近的工地晚上施工噪音太吵了"), operator
    )
    order = await hotline.work_orders.dispatch(order.number, operator)
    caller = new_caller()
    s = hotline.settings
    result = await place_call(
        tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=caller, hold_ms=20000,
        presses=[Press(language_key, 2500), Press("3", 1500), Press(f"{order.number}#", 2000)],
    )  # fmt: skip
    # the engine hangs up once the status is read: sipp, still holding, gets that BYE
    assert "unexpected BYE" in result.errors, (result.stderr[-2000:], result.errors[-2000:])
    call = await call_record(hotline, caller)
    assert call["entered_number"] == order.number
    assert call["route"] == "action:hangup"  # heard the status; no operator needed
    [status] = steps(call, "status")
    text = status["detail"]
    assert text.startswith(words), text
    cjk = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")
    assert bool(cjk.search(text)) == (language == "zh"), text
    assert order.due_at is not None
    assert str(order.due_at.astimezone(hotline.work_orders.limits.timezone).year) in text
    # Asterisk played the file made from exactly that text, in the caller's language
    library = PromptLibrary(hotline.settings.prompts_dir, hotline.menu.voices)
    spoken = library.path_for(Prompt(f"order-{order.number}", language, text))
    commands = played(ami_events, call["uniqueid"])
    assert any(str(spoken) in c for c in commands), (spoken, commands)


async def test_english_chosen_plays_english_prompts(
    hotline: Hotline, ami_events: AmiEvents, tmp_path: Path
) -> None:
    caller = new_caller()
    await dial(hotline, tmp_path, caller, [Press("2", 2500), Press("1", 2500)])
    call = await call_record(hotline, caller)
    assert call["language"] == "en"
    assert call["route"] == "queue:report"
    commands = played(ami_events, call["uniqueid"])
    main_prompts = [c for c in commands if "/main-" in c]
    assert main_prompts and all("/en/main-" in c for c in main_prompts), commands


async def test_hangup_mid_menu_closes_the_record_with_the_cause(
    hotline: Hotline, tmp_path: Path
) -> None:
    caller = new_caller()
    await dial(hotline, tmp_path, caller, [], hold_ms=1500)
    call = await call_record(hotline, caller)
    assert call["route"] is None
    assert call["route_reason"] == "hangup"
    assert call["ended_at"] is not None
    # the caller's BYE: normal clearing (16), the caller's doing (was 0 "Unknown" or 3 "No
    # route to destination", the channel's cause when it left the AGI)
    cause = (call["hangup_cause"], call["hangup_cause_text"])
    assert cause == (16, "Normal Clearing (caller hung up)"), call
    assert [s["kind"] for s in call["journey"]][-2:] == ["hangup", "hangup"]


@pytest.mark.parametrize("raw", ["anonymous", "abc$%&"])
async def test_garbage_caller_id_is_kept_raw_and_the_call_still_routed(
    hotline: Hotline, tmp_path: Path, raw: str
) -> None:
    # a unique raw value lets the test find its own record
    caller = f"{raw}{new_caller()[-4:]}" if raw != "anonymous" else raw
    await dial(hotline, tmp_path, caller, [Press("1", 2500), Press("2", 1500)])
    call = await call_record(hotline, caller)
    assert call["caller_number"] is None
    assert call["route"] == "queue:consultation"


async def test_engine_unreachable_falls_through_to_the_operator_queue(
    hotline: Hotline, ami_events: AmiEvents, tmp_path: Path
) -> None:
    s = hotline.settings
    await hotline.agi.stop()
    try:
        caller = new_caller()
        await dial(hotline, tmp_path, caller, [Press("1", 1500)], hold_ms=3000)

        async def joined() -> list[str]:
            return [
                e.get("Queue")
                for events in ami_events.by_call.values()
                for e in events
                if e.get("Event") == "QueueCallerJoin" and e.get("CallerIDNum") == caller
            ]

        # the engine is unreachable: Asterisk's own operator queue (the ACD's fallback)
        assert await eventually(joined, what="the caller joining a queue") == ["hotline-operator"]
    finally:
        await hotline.agi.start(s.agi_host, s.agi_port)


async def test_health_and_calls_api(hotline: Hotline) -> None:
    s = hotline.settings
    base = f"http://{s.web_host}:{s.web_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as response:
            body = await response.json()
            assert response.status == 200, body
            core = {"asterisk", "ami", "fastagi", "redis", "database"}
            assert core <= set(body["parts"]), body
            # the rest are the engine's supervised background loops, each named
            assert all(p.startswith("loop:") for p in set(body["parts"]) - core), body
        async with http.get(f"{base}/api/calls") as response:
            assert response.status == 401
        auth = await supervisor_auth(hotline)
        async with http.get(f"{base}/api/calls?limit=5", headers=auth) as response:
            assert response.status == 200
            assert len((await response.json())["calls"]) <= 5
        async with http.get(f"{base}/supervisor", allow_redirects=False) as response:
            assert response.status == 303  # a browser without a session: to the login page
            assert response.headers["Location"] == "/login?next=/supervisor"
        async with http.get(f"{base}/supervisor", headers=auth) as response:
            assert response.status == 200
            assert "/api/wallboard" in await response.text()  # the screen reads the live API
        async with http.get(f"{base}/api/calls?limit=abc", headers=auth) as response:
            assert response.status == 400
            assert "whole number" in (await response.json())["error"]["message"]


async def test_ami_drop_is_reported_and_recovered(hotline: Hotline) -> None:
    """Asterisk restarts under the engine: /healthz says AMI is down, then it reconnects."""
    s = hotline.settings
    base = f"http://{s.web_host}:{s.web_port}/healthz"
    assert hotline.asterisk is not None
    hotline.asterisk.cli("core restart now")
    async with aiohttp.ClientSession() as http:

        async def ami_down() -> bool:
            async with http.get(base) as response:
                return response.status == 503 and "ami" in (await response.json())["down"]

        async def all_up() -> bool:
            async with http.get(base) as response:
                return response.status == 200

        await eventually(ami_down, timeout_s=15, what="/healthz to report AMI down")
        await eventually(all_up, timeout_s=40, what="AMI to reconnect")
