"""Prompt synthesis for real: pyttsx3 on espeak-ng, converted by sox, cached by text hash."""

from __future__ import annotations

import dataclasses
import os
import wave
from pathlib import Path

import pytest

from ivr.menu import Menu, MenuError, Prompt, PromptText, load_menu, parse_menu
from ivr.prompts import PromptError, PromptLibrary

DEFAULT_MENU = Path(__file__).resolve().parent.parent / "ivr" / "menu.toml"


@pytest.fixture(scope="module")
def menu() -> Menu:
    return load_menu(DEFAULT_MENU)


def with_text(menu: Menu, prompt_id: str, language: str, text: str) -> Menu:
    old = menu.prompts[prompt_id]
    new = PromptText(prompt_id, {**old.texts, language: text})
    return dataclasses.replace(menu, prompts={**menu.prompts, prompt_id: new})


def assert_asterisk_wav(path: Path) -> None:
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == 8000
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getnframes() > 8000 // 2  # at least half a second of speech


def test_every_prompt_synthesised_as_8khz_mono_16bit(tmp_path: Path, menu: Menu) -> None:
    library = PromptLibrary(tmp_path / "prompts", menu.voices)
    report = library.ensure(menu)
    every = library.prompts(menu)
    assert report.made_count == len(every) == 2 * (len(menu.nodes) + len(menu.prompts))
    assert report.reused_count == 0
    for prompt in every:
        base = library.path_for(prompt)
        assert base.suffix == "" and base.parent == tmp_path / "prompts" / prompt.language
        assert library.wav_for(prompt) == base.parent / f"{base.name}.wav"
        assert_asterisk_wav(library.wav_for(prompt))
    leftovers = [p for p in (tmp_path / "prompts").rglob("*") if p.is_file()]
    assert sorted(leftovers) == sorted(library.wav_for(p) for p in every)


async def test_second_run_reuses_and_a_changed_text_regenerates_only_it(
    tmp_path: Path, menu: Menu
) -> None:
    library = PromptLibrary(tmp_path, menu.voices)
    await library.ensure_async(menu)
    stamps = {p: library.wav_for(p).stat().st_mtime_ns for p in library.prompts(menu)}

    again = await library.ensure_async(menu)
    assert again.made_count == 0 and again.reused_count == len(stamps)

    changed = with_text(menu, "invalid", "zh", "对不起，没有这个选项，请重新选择。")
    report = library.ensure(changed)
    assert [(p.id, p.language) for p in report.made] == [("invalid", "zh")]
    assert report.reused_count == len(stamps) - 1
    new = Prompt("invalid", "zh", "对不起，没有这个选项，请重新选择。")
    assert_asterisk_wav(library.wav_for(new))
    for prompt, stamp in stamps.items():
        assert library.wav_for(prompt).stat().st_mtime_ns == stamp  # nothing else touched

    removed = library.prune(changed)
    old = Prompt("invalid", "zh", menu.prompts["invalid"].texts["zh"])
    assert removed == (library.wav_for(old),)
    assert all(library.wav_for(p).is_file() for p in library.prompts(changed))


async def test_speak_makes_one_prompt_on_demand(tmp_path: Path) -> None:
    library = PromptLibrary(tmp_path, {"zh": "cmn", "en": "en"})
    status = Prompt("order-2024061800123", "zh", "您的工单正在办理中，预计三个工作日内办结。")
    base = await library.speak(status)
    assert base == library.path_for(status)
    assert_asterisk_wav(library.wav_for(status))
    assert library.synthesise([status]).reused_count == 1
    with pytest.raises(PromptError, match="cannot name a file"):
        await library.speak(Prompt("../etc", "zh", "x"))


def test_cache_key_is_voice_and_text(tmp_path: Path) -> None:
    library = PromptLibrary(tmp_path, {"zh": "cmn", "en": "en"})
    prompt = Prompt("welcome", "zh", "欢迎")
    same = library.path_for(prompt)
    assert library.path_for(Prompt("welcome", "zh", "欢迎")) == same
    assert library.path_for(Prompt("welcome", "zh", "欢迎您")) != same
    other_voice = PromptLibrary(tmp_path, {"zh": "cmn-latn-pinyin"})
    assert other_voice.path_for(prompt) != same


def test_unknown_voice_is_a_clear_error(tmp_path: Path, menu: Menu) -> None:
    library = PromptLibrary(tmp_path, {"zh": "no-such-voice", "en": "en"})
    with pytest.raises(PromptError, match="no voice 'no-such-voice'"):
        library.ensure(menu)
    with pytest.raises(PromptError, match="no TTS voice configured for language 'en'"):
        PromptLibrary(tmp_path, {"zh": "cmn"}).path_for(Prompt("main", "en", "Menu"))


def test_missing_espeak_library_is_a_clear_error(
    tmp_path: Path, menu: Menu, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An interpreter whose pyttsx3 cannot load libespeak-ng: shadow the package with a
    # driver that fails the way pyttsx3's espeak driver does when the library is absent.
    fake = tmp_path / "fake"
    (fake / "pyttsx3").mkdir(parents=True)
    (fake / "pyttsx3" / "__init__.py").write_text(
        "def init(name):\n"
        "    raise RuntimeError('This means you probably do not have eSpeak or eSpeak-ng "
        "installed!')\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")]))
    library = PromptLibrary(tmp_path / "prompts", menu.voices)
    with pytest.raises(PromptError, match="install the Debian packages espeak-ng"):
        library.ensure(menu)


def test_missing_sox_is_a_clear_error(
    tmp_path: Path, menu: Menu, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PromptError, match="sox not found"):
        PromptLibrary(tmp_path, menu.voices).ensure(menu)


def write_tone(path: Path, *, rate: int = 8000, channels: int = 1, seconds: float = 0.5) -> Path:
    """A small generated recording: a 440 Hz tone, 16-bit PCM."""
    import math
    import struct

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(rate * seconds)
    samples = (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(frames))
    data = b"".join(struct.pack("<h", s) * channels for s in samples)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(data)
    return path


RECORDED_MENU = """\
[menu]
start = "main"
intro = ["welcome"]
[voices]
zh = "cmn"
en = "en"
[prompts.welcome]
zh = "欢迎"
en = "Welcome"
zh_file = "studio/zh/welcome.wav"
en_file = "studio/en/welcome.wav"
[prompts.invalid]
zh = "输入有误"
en = "Invalid"
zh_file = "studio/zh/invalid.wav"
en_file = "studio/en/invalid.wav"
[nodes.main]
zh = "主菜单"
en = "Main menu"
zh_file = "studio/zh/main.wav"
en_file = "studio/en/main.wav"
[[nodes.main.options]]
key = "1"
route = "queue:report"
"""


def test_a_recorded_prompt_replaces_the_synthesised_one(tmp_path: Path) -> None:
    for lang in ("zh", "en"):
        for name in ("welcome", "invalid", "main"):
            write_tone(tmp_path / "studio" / lang / f"{name}.wav", seconds=0.6)
    menu_file = tmp_path / "menu.toml"
    menu_file.write_text(RECORDED_MENU, encoding="utf-8")
    menu = load_menu(menu_file)
    welcome = menu.prompts["welcome"].prompt("en")
    assert welcome.recording is not None
    assert welcome.recording.path == tmp_path / "studio" / "en" / "welcome.wav"
    assert welcome.text == "Welcome"  # kept as the transcript

    library = PromptLibrary(tmp_path / "prompts", menu.voices)
    # every prompt is recorded: nothing is synthesised (no espeak run), each file copied in
    report = library.ensure(menu)
    assert report.made_count == 6
    played = library.wav_for(welcome)
    assert played.parent == tmp_path / "prompts" / "en"  # inside the folder Asterisk sees
    assert played.read_bytes() == (tmp_path / "studio" / "en" / "welcome.wav").read_bytes()
    assert library.ensure(menu).reused_count == 6

    # a new take of the recording is a new file; the text-only prompt is not the recording
    write_tone(tmp_path / "studio" / "en" / "welcome.wav", seconds=0.8)
    retaken = load_menu(menu_file).prompts["welcome"].prompt("en")
    assert library.path_for(retaken) != library.path_for(welcome)
    assert library.path_for(Prompt("welcome", "en", "Welcome")) != library.path_for(welcome)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: write_tone(p, rate=44100, channels=2), "44100 Hz, 2 channel"),
        (lambda p: p.write_bytes(b"ID3\x03 not a wav at all"), "not a WAV file"),
        (lambda p: None, "no such file"),
        (lambda p: write_tone(p, seconds=0.01), "too short"),
    ],
)
def test_a_recording_asterisk_cannot_play_is_refused_at_load(
    tmp_path: Path, make: object, reason: str
) -> None:
    for lang in ("zh", "en"):
        for name in ("welcome", "invalid", "main"):
            write_tone(tmp_path / "studio" / lang / f"{name}.wav")
    bad = tmp_path / "studio" / "zh" / "main.wav"
    bad.unlink()
    make(bad)  # type: ignore[operator]
    menu_file = tmp_path / "menu.toml"
    menu_file.write_text(RECORDED_MENU, encoding="utf-8")
    with pytest.raises(MenuError) as caught:
        load_menu(menu_file)
    line = RECORDED_MENU.splitlines().index('zh_file = "studio/zh/main.wav"') + 1
    assert caught.value.line == line
    assert "nodes.main: zh_file" in caught.value.reason and reason in caught.value.reason
    assert len(caught.value.problems) == 1


def test_a_recording_must_be_a_wav(tmp_path: Path) -> None:
    text = RECORDED_MENU.replace("studio/zh/main.wav", "studio/zh/main.mp3")
    with pytest.raises(MenuError, match=r"must be a \.wav file"):
        parse_menu(text, "menu.toml", base_dir=tmp_path)
