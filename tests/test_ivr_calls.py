"""Real SIP calls (sipp) to 12345 through Asterisk 22 and the engine's IVR."""

from __future__ import annotations

import wave
from pathlib import Path

import aiohttp
import pytest
from conftest import AmiEvents, call_record, eventually, new_caller
from sipp import Press, place_call
from staff import supervisor_auth

from hotline.engine import Hotline
from ivr.prompts import PromptLibrary
from ivr.walk import Prompt
from queueing.events import read_events

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def dial(hotline: Hotline, tmp_path: Path, caller: str, presses: list[Press],
               hold_ms: int = 2000) -> None:  # fmt: skip
    s = hotline.settings
    result = await place_call(
        tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=caller, presses=presses, hold_ms=hold_ms,
    )  # fmt: skip
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


async def test_silent_caller_ends_on_the_operator_route(
    hotline: Hotline, ami_events: AmiEvents, tmp_path: Path
) -> None:
    caller = new_caller()
    # welcome + notice + language choice, a timeout, then the main menu three times
    menu = hotline.menu
    language_prompts = [menu.prompts[p].prompt("zh") for p in menu.intro] + [
        menu.nodes["language"].prompt.prompt(lang) for lang in menu.languages
    ]
    main_prompt = menu.nodes["main"].prompt.prompt("zh")
    walk_s = (
        sum(prompt_seconds(hotline, p) for p in language_prompts)
        + 3 * prompt_seconds(hotline, main_prompt)
        + 2 * prompt_seconds(hotline, menu.prompts["transfer"].prompt("zh"))
        + 4 * menu.timeout_s
    )
    await dial(hotline, tmp_path, caller, [], hold_ms=int((walk_s + 8) * 1000))
    call = await call_record(hotline, caller)
    assert call["route"] == "queue:operator"
    assert call["route_reason"] == "no-input"
    no_inputs = [s for s in call["journey"] if s["kind"] == "no-input"]
    assert [s["node"] for s in no_inputs] == ["language", "main", "main", "main"]
    assert await acd_queues(hotline, call["uniqueid"]) == ["operator"]


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
    await dial(
        hotline, tmp_path, caller,
        [Press("1", 2500), Press("3", 1500), Press("20260000001#", 2000)], hold_ms=12000,
    )  # fmt: skip
    call = await call_record(hotline, caller)
    assert call["entered_number"] == "20260000001"
    # no such order: the caller hears so and is passed to an operator
    assert call["route"] == "queue:operator"
    assert any("/zh/order-unknown-" in c for c in played(ami_events, call["uniqueid"]))


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
    assert call["hangup_cause"] is not None
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
            assert "/api/calls" in await response.text()  # the screen reads the live API
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
