"""The menu's prompts as sound files Asterisk plays: pyttsx3 on espeak-ng, 8 kHz mono WAV.

Each file is named after the prompt id and a hash of (voice, rate, text), so changing one
text regenerates only that prompt and an unchanged one is reused. A prompt the menu gives a
studio recording (``zh_file = ...``) is not synthesised: the recording is copied in, named
after a hash of its bytes, because Asterisk only sees the prompts folder (bind-mounted).
pyttsx3 is blocking and keeps espeak state per process, so synthesis runs in a fresh worker
process per batch (``python -c 'from ivr.prompts import _worker_main; ...'``) and ``sox``
converts its output.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.menu import Menu, Prompt

log = logging.getLogger(__name__)

# Part of every file's hash: bump it when the conversion changes so all prompts are remade.
FORMAT = "wav-8000-mono-s16-norm3"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_MIN_WAV_BYTES = 44 + 160  # a header and at least 10 ms of sound
_UTTERANCE_TIMEOUT_S = 30.0
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class PromptError(RuntimeError):
    """Prompts could not be synthesised: a missing tool, voice or a failed synthesis."""


@dataclass(frozen=True)
class SynthesisReport:
    made: tuple[Prompt, ...]
    reused: tuple[Prompt, ...]

    @property
    def made_count(self) -> int:
        return len(self.made)

    @property
    def reused_count(self) -> int:
        return len(self.reused)

    def __str__(self) -> str:
        return f"{self.made_count} made, {self.reused_count} reused"


class PromptLibrary:
    """The prompts directory: ``<directory>/<language>/<prompt id>-<hash>.wav``."""

    def __init__(
        self,
        directory: Path,
        voices: Mapping[str, str],
        *,
        rate: int = 160,
        batch_size: int = 24,
        timeout_s: float = 120.0,
    ) -> None:
        self.directory = Path(directory)
        self.voices = dict(voices)
        self.rate = rate  # words per minute; espeak's 175 is fast on a phone line
        self.batch_size = batch_size
        self.timeout_s = timeout_s  # deadline for one batch's worker process

    def voice_for(self, language: str) -> str:
        try:
            return self.voices[language]
        except KeyError:
            raise PromptError(f"no TTS voice configured for language {language!r}") from None

    def digest(self, prompt: Prompt) -> str:
        if prompt.recording is not None:
            return f"rec-{prompt.recording.digest}"
        key = "\0".join((FORMAT, self.voice_for(prompt.language), str(self.rate), prompt.text))
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]

    def path_for(self, prompt: Prompt) -> Path:
        """The file without ``.wav``, as Asterisk's STREAM FILE and GET DATA want it."""
        return self.directory / prompt.language / f"{prompt.id}-{self.digest(prompt)}"

    def wav_for(self, prompt: Prompt) -> Path:
        return self.path_for(prompt).with_name(self.path_for(prompt).name + ".wav")

    @staticmethod
    def prompts(menu: Menu) -> tuple[Prompt, ...]:
        """Every prompt of the menu, in every declared language."""
        return menu.all_prompts()

    def missing(self, menu: Menu) -> tuple[Prompt, ...]:
        return tuple(p for p in self.prompts(menu) if not self.wav_for(p).is_file())

    def ensure(self, menu: Menu) -> SynthesisReport:
        """Synthesise every prompt of the menu that has no file yet; remove nothing."""
        return self.synthesise(self.prompts(menu))

    async def ensure_async(self, menu: Menu) -> SynthesisReport:
        """:meth:`ensure` off the event loop (each batch has its own deadline)."""
        return await asyncio.to_thread(self.ensure, menu)

    def synthesise(self, prompts: Sequence[Prompt]) -> SynthesisReport:
        """Make the files of those prompts that have none; reuse the others."""
        for prompt in prompts:
            if not _SAFE_ID.match(prompt.id):
                raise PromptError(f"prompt id {prompt.id!r} cannot name a file")
        wanted = tuple(dict.fromkeys(prompts))
        missing = tuple(p for p in wanted if not self.wav_for(p).is_file())
        for prompt in missing:
            if prompt.recording is not None:
                self._copy_recording(prompt)
        spoken = tuple(p for p in missing if p.recording is None)
        if spoken:
            self._synthesise(spoken)
        report = SynthesisReport(made=missing, reused=tuple(p for p in wanted if p not in missing))
        log.info("prompts in %s: %s", self.directory, report)
        return report

    async def speak(self, prompt: Prompt) -> Path:
        """One prompt made on demand during a call (e.g. a work order's status); returns
        its path without ``.wav``. Cached like the menu's; :meth:`prune` removes it."""
        await asyncio.to_thread(self.synthesise, [prompt])
        return self.path_for(prompt)

    def prune(self, menu: Menu) -> tuple[Path, ...]:
        """Remove prompt files the menu no longer uses (e.g. after a text changed)."""
        keep = {self.wav_for(p) for p in self.prompts(menu)}
        removed = tuple(path for path in sorted(self.directory.glob("*/*.wav")) if path not in keep)
        for path in removed:
            path.unlink()
            log.info("removed unused prompt file %s", path)
        return removed

    def _copy_recording(self, prompt: Prompt) -> None:
        assert prompt.recording is not None
        target = self.wav_for(prompt)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        try:
            shutil.copyfile(prompt.recording.path, partial)
        except OSError as exc:
            raise PromptError(f"cannot copy the recording {prompt.recording.path}: {exc}") from exc
        os.replace(partial, target)
        log.info("recorded prompt %s (%s): %s", prompt.id, prompt.language, target)

    # -- synthesis ----------------------------------------------------------------------

    def _synthesise(self, prompts: Sequence[Prompt]) -> None:
        sox = shutil.which("sox")
        if sox is None:
            raise PromptError("sox not found: install the Debian package 'sox'")
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".tts-", dir=self.directory) as scratch:
            pending = list(prompts)
            for attempt in (1, 2):  # a flaky espeak run gets one more chance, in a new process
                failed: dict[Prompt, str] = {}
                for start in range(0, len(pending), self.batch_size):
                    batch = pending[start : start + self.batch_size]
                    failed.update(self._run_batch(batch, Path(scratch), sox))
                if not failed:
                    return
                log.warning("prompt synthesis attempt %d failed for %d", attempt, len(failed))
                pending = list(failed)
        details = "; ".join(f"{p.language}/{p.id}: {why}" for p, why in failed.items())
        raise PromptError(f"could not synthesise prompts: {details}")

    def _run_batch(self, batch: Sequence[Prompt], scratch: Path, sox: str) -> dict[Prompt, str]:
        raws = {p: scratch / f"{p.language}-{p.id}-{self.digest(p)}.raw.wav" for p in batch}
        request = {
            "rate": self.rate,
            "jobs": [
                {"voice": self.voice_for(p.language), "text": p.text, "out": str(raws[p])}
                for p in batch
            ],
        }
        answer = _run_worker(request, self.timeout_s)
        failures: dict[str, str] = answer.get("failed", {})
        failed: dict[Prompt, str] = {}
        for prompt, raw in raws.items():
            reason = failures.get(str(raw))
            if reason is None and not _has_sound(raw):
                reason = "no audio written"
            if reason is not None:
                failed[prompt] = reason
                continue
            self._install(raw, self.wav_for(prompt), sox)
            log.info(
                "made prompt %s (%s, voice %s): %s",
                prompt.id,
                prompt.language,
                self.voice_for(prompt.language),
                self.wav_for(prompt),
            )
        return failed

    @staticmethod
    def _install(raw: Path, target: Path, sox: str) -> None:
        """Convert to 8 kHz mono signed 16-bit and move into place atomically."""
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        command = [sox, "-V1", "-D", str(raw), "-t", "wav", "-r", "8000", "-c", "1"]
        command += ["-b", "16", "-e", "signed-integer", str(partial), "norm", "-3"]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
        except subprocess.CalledProcessError as exc:
            partial.unlink(missing_ok=True)
            raise PromptError(f"sox failed on {raw.name}: {exc.stderr.strip()}") from exc
        os.replace(partial, target)


def convert(raw: Path, target: Path) -> None:
    """A sound file sox can read (e.g. a supervisor's uploaded WAV) as a prompt file at
    ``target``: 8 kHz mono 16-bit, levelled like the synthesised ones; else :class:`PromptError`."""
    sox = shutil.which("sox")
    if sox is None:
        raise PromptError("sox is not installed (Debian package sox)")
    PromptLibrary._install(raw, target, sox)


def _has_sound(path: Path) -> bool:
    return path.is_file() and path.stat().st_size >= _MIN_WAV_BYTES


def _run_worker(request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH", "")])
    )
    command = [sys.executable, "-c", "from ivr.prompts import _worker_main; _worker_main()"]
    try:
        done = subprocess.run(
            command,
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise PromptError(f"speech synthesis took longer than {timeout_s:.0f} s") from exc
    try:
        answer: dict[str, Any] = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        answer = {}
    if done.returncode != 0 or "fatal" in answer:
        reason = answer.get("fatal") or done.stderr.strip()[-2000:] or f"exit {done.returncode}"
        raise PromptError(f"speech synthesis worker failed: {reason}")
    return answer


def _worker_main() -> None:
    """Entry point of the synthesis process: JSON request on stdin, JSON answer on stdout."""
    request = json.load(sys.stdin)
    answer_to = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # pyttsx3 prints "Audio saved to ..."
        answer = _synthesise_jobs(request)
    json.dump(answer, answer_to)
    answer_to.flush()
    sys.exit(3 if "fatal" in answer else 0)


def _synthesise_jobs(request: dict[str, Any]) -> dict[str, Any]:
    try:
        import pyttsx3

        engine = pyttsx3.init("espeak")
        available = engine.getProperty("voices")
    except Exception as exc:  # the driver raises RuntimeError/OSError when libespeak is absent
        return {
            "fatal": f"espeak-ng is not usable through pyttsx3 ({type(exc).__name__}: {exc}); "
            "install the Debian packages espeak-ng and libespeak-ng1"
        }
    # espeak-ng synthesises on its own thread (pyttsx3 starts it in retrieval mode, which is
    # asynchronous) and runAndWait() may return before the file is written: wait for the
    # driver's "finished-utterance", which it sends after writing the file.
    finished = threading.Event()
    engine.connect("finished-utterance", lambda **_: finished.set())
    failed: dict[str, str] = {}
    jobs = list(request["jobs"])
    while jobs:
        job = jobs.pop(0)
        voice = _resolve_voice(job["voice"], available)
        if voice is None:
            failed[job["out"]] = f"espeak-ng has no voice {job['voice']!r}"
            continue
        finished.clear()
        engine.setProperty("voice", voice)
        engine.setProperty("rate", request["rate"])
        engine.save_to_file(job["text"], job["out"])
        engine.runAndWait()
        if not finished.wait(_UTTERANCE_TIMEOUT_S):
            # The engine's state is unknown now: leave the rest to a fresh process.
            failed[job["out"]] = "espeak-ng did not finish the utterance"
            failed.update((rest["out"], "not attempted") for rest in jobs)
            break
        if engine.getProperty("voice") != voice:
            failed[job["out"]] = f"espeak-ng refused voice {voice!r}"
    return {"failed": failed}


def _resolve_voice(wanted: str, available: Sequence[Any]) -> str | None:
    """An espeak-ng voice id ("sit/cmn") from a name as ``espeak-ng --voices`` lists it."""
    wanted = wanted.lower()
    for match in (
        lambda v: v.id == wanted,
        lambda v: v.id.rsplit("/", 1)[-1] == wanted,
        lambda v: wanted in [str(x).lower() for x in (v.languages or [])],
    ):
        found = next((v.id for v in available if match(v)), None)
        if found is not None:
            return str(found)
    return None
