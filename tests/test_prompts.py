"""Prompt synthesis for real: pyttsx3 on espeak-ng, converted by sox, cached by text hash."""

from __future__ import annotations

import dataclasses
import os
import wave
from pathlib import Path

import pytest

from ivr.menu import Menu, Prompt, PromptText, load_menu
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
