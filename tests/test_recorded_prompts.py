"""A studio recording replaces a synthesised prompt, end to end: an engine of its own whose
menu names a recorded welcome (a generated 8 kHz WAV), a real sipp call, Asterisk playing it."""

from __future__ import annotations

import math
import struct
import wave
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import pytest_asyncio
from conftest import (
    AmiEvents,
    call_record,
    e2e_engine_settings,
    eventually,
    fast_menu,
    new_caller,
    running,
)

from hotline.engine import Hotline
from hotline.settings import Settings
from ivr.prompts import PromptLibrary
from sipsim.citizen import start_call
from sipsim.ports import SHIFTS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHIFT = SHIFTS["recorded-prompts"]
RECORDING_S = 12.0  # far longer than the synthesised welcome (about 5 s)


def tone(path: Path, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(8000 * seconds)
    samples = (int(6000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(frames))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def recorded_hotline(
    e2e_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Hotline]:
    base = tmp_path_factory.mktemp("recorded-prompts")
    tone(base / "studio" / "welcome-zh.wav", RECORDING_S)
    menu = fast_menu(base / "menu.toml")
    text = menu.read_text(encoding="utf-8")
    welcome = "[prompts.welcome]\n"
    assert welcome in text
    menu.write_text(
        text.replace(welcome, f'{welcome}zh_file = "studio/welcome-zh.wav"\n'), encoding="utf-8"
    )
    settings = e2e_engine_settings(
        e2e_settings, base, "recorded-prompts", SHIFT, 22000, menu_file=menu
    )
    async with running(settings) as engine:
        yield engine


def seconds(path: Path) -> float:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


async def test_asterisk_plays_the_recorded_welcome_to_its_end(
    recorded_hotline: Hotline, tmp_path: Path
) -> None:
    hotline = recorded_hotline
    events = AmiEvents()
    hotline.ami.on("AGIExecStart", events.record)
    menu = hotline.menu
    welcome = menu.prompts["welcome"].prompt("zh")
    assert welcome.recording is not None
    library = PromptLibrary(hotline.settings.prompts_dir, menu.voices)
    played = library.wav_for(welcome)
    assert played.read_bytes() == welcome.recording.path.read_bytes()  # copied where Asterisk reads

    s = hotline.settings
    caller = new_caller()
    citizen = await start_call(
        tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=caller, presses=[], hold_ms=int((RECORDING_S + 25) * 1000),
    )  # fmt: skip
    try:
        uniqueid = (await call_record(hotline, caller, closed=False))["uniqueid"]

        async def timed_out() -> bool:  # a command after the first GET DATA: it has ended
            commands = [e.get("Command", "") for e in events.of(uniqueid, "AGIExecStart")]
            asks = [i for i, command in enumerate(commands) if "GET DATA" in command]
            return bool(asks) and len(commands) > asks[0] + 1

        await eventually(timed_out, RECORDING_S + 25, "the caller's first timeout")
    finally:
        result = await citizen.hang_up()
    assert result.returncode == 0, result.stderr[-2000:]
    call = await call_record(hotline, caller)
    commands = [e.get("Command", "") for e in events.of(call["uniqueid"], "AGIExecStart")]
    assert any(str(library.path_for(welcome)) in c for c in commands), commands

    # the caller's first timeout comes after the whole recording, then the other prompts
    others = [menu.prompts["emergency"].prompt("zh")] + [
        menu.nodes["language"].prompt.prompt(lang) for lang in menu.languages
    ]
    rest_s = sum(seconds(library.wav_for(p)) for p in others) + menu.timeout_s
    first = next(e for e in call["journey"] if e["kind"] == "no-input")
    started = datetime.fromisoformat(call["started_at"])
    heard_s = (datetime.fromisoformat(first["at"]) - started).total_seconds() - rest_s
    print(f"\nrecorded welcome heard for {heard_s:.1f} s (the file lasts {RECORDING_S:.1f} s)")
    assert RECORDING_S - 1.0 < heard_s < RECORDING_S + 2.0, call["journey"]
