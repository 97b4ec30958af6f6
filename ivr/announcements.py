"""Broadcast announcements: what a supervisor wants every caller to hear before the main
menu (a water outage in one district, say) until it expires.

Held in Redis under the ACD's prefix (one hash, ``<prefix>announcements``: id → JSON), the
one owner of the fact, shared by every engine on that Redis. A text per menu language is
synthesised by the IVR's prompt library (:mod:`ivr.prompts`) when it is posted, so a
caller's IVR session (:mod:`ivr.session`) only plays files already made. A supervisor may
give a recording instead (:meth:`Announcements.add_recording`, e.g. a WAV uploaded on the
wallboard): converted to the prompts' 8 kHz format and kept in Redis beside it
(``<prefix>announcement-audio:<id>``, expiring with it), each engine writes it into its
prompts folder (``recorded/``) the first time a caller hears it. An expired announcement is
no longer played and is removed the next time they are read.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
import uuid
import wave
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ivr.prompts import PromptError, PromptLibrary, convert
from ivr.tree import Prompt

log = logging.getLogger(__name__)

MAX_TEXT = 500  # characters of one language's text (about a minute of speech)
MAX_LIFETIME = timedelta(days=31)
MAX_ACTIVE = 10  # announcements at once: a caller should reach the menu
MAX_RECORDING_S = 180.0  # a recorded announcement's length, at most
MIN_RECORDING_S = 0.3  # shorter is an empty or broken recording
RECORDED = "recorded"  # the prompts folder's subfolder of recorded announcements


class AnnouncementError(ValueError):
    """An announcement the hotline cannot take (400 in the web service's one shape)."""


@dataclass(frozen=True)
class Announcement:
    id: str
    texts: Mapping[str, str]  # language → text, in the menu's language order
    expires_at: datetime
    created_by: str
    created_at: datetime
    recording: str = ""  # a digest of the recorded sound ("": spoken from the texts)
    seconds: float = 0.0  # the recording's length

    def prompts(self) -> tuple[Prompt, ...]:
        """What to synthesise (nothing for a recording)."""
        return tuple(Prompt(self.id, lang, text) for lang, text in self.texts.items())

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "texts": dict(self.texts),
                "expires_at": self.expires_at.isoformat(), "created_by": self.created_by,
                "created_at": self.created_at.isoformat(), "recording": self.recording,
                "seconds": self.seconds}  # fmt: skip


def _parse(raw: str | bytes) -> Announcement:
    data = json.loads(raw)
    return Announcement(
        data["id"], data["texts"], datetime.fromisoformat(data["expires_at"]),
        data["created_by"], datetime.fromisoformat(data["created_at"]),
        str(data.get("recording", "")), float(data.get("seconds", 0.0)),
    )  # fmt: skip


def recorded(sound: bytes) -> tuple[bytes, float]:
    """``sound`` (a WAV file, any rate and channels) as an 8 kHz mono 16-bit WAV and its
    length in seconds, or :class:`AnnouncementError` (blocking: run it off the loop)."""
    with tempfile.TemporaryDirectory(prefix="announcement-") as scratch:
        raw, out = Path(scratch) / "upload.wav", Path(scratch) / "phone.wav"
        raw.write_bytes(sound)
        try:
            convert(raw, out)
            with wave.open(str(out), "rb") as wav:
                seconds = wav.getnframes() / wav.getframerate()
        except (PromptError, wave.Error, EOFError) as exc:
            raise AnnouncementError(f"the recording is not a WAV file: {exc}") from None
        if not MIN_RECORDING_S <= seconds <= MAX_RECORDING_S:
            wanted = f"{MIN_RECORDING_S}-{MAX_RECORDING_S:.0f} s"
            raise AnnouncementError(f"the recording lasts {seconds:.1f} s: {wanted} please")
        return out.read_bytes(), round(seconds, 2)


class Announcements:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        prompts: PromptLibrary,
        languages: Sequence[str],
        *,
        timeout_s: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.redis, self.key, self.prompts = redis, f"{prefix}announcements", prompts
        self.languages = tuple(languages)
        self.timeout_s = timeout_s
        self.clock = clock
        # told (announcement id, "added" | "removed") after a change: the wallboards redraw
        self.on_change: Callable[[str, str], None] = lambda announcement_id, change: None

    def audio_key(self, announcement_id: str) -> str:
        return f"{self.key}-audio:{announcement_id}"

    def check(self, texts: Mapping[str, Any], expires_at: datetime) -> dict[str, str]:
        """The texts in menu language order, or :class:`AnnouncementError`."""
        unknown = sorted(set(texts) - set(self.languages))
        if unknown:
            raise AnnouncementError(
                f"texts: {unknown[0]!r} is not a language of the menu ({', '.join(self.languages)})"
            )
        out: dict[str, str] = {}
        for lang in self.languages:
            text = texts.get(lang)
            if text is None:
                continue
            if not isinstance(text, str) or not text.strip():
                raise AnnouncementError(f"texts.{lang} must be a non-empty string")
            if len(text) > MAX_TEXT:
                raise AnnouncementError(f"texts.{lang} is longer than {MAX_TEXT} characters")
            if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text):
                raise AnnouncementError(f"texts.{lang} holds control characters")
            out[lang] = text.strip()
        if not out:
            raise AnnouncementError("texts needs a text in at least one menu language")
        self.check_expiry(expires_at)
        return out

    def check_expiry(self, expires_at: datetime) -> None:
        if expires_at.tzinfo is None:
            raise AnnouncementError("expires_at needs a time zone offset (e.g. +08:00)")
        now = self.clock()
        if expires_at <= now:
            raise AnnouncementError("expires_at is in the past")
        if expires_at > now + MAX_LIFETIME:
            raise AnnouncementError(f"expires_at is more than {MAX_LIFETIME.days} days ahead")

    async def add(self, texts: Mapping[str, Any], expires_at: datetime, by: str) -> Announcement:
        """Check, synthesise each language's text, then store: callers hear it from now on."""
        checked = self.check(texts, expires_at)
        if len(await self.current()) >= MAX_ACTIVE:
            raise AnnouncementError(f"at most {MAX_ACTIVE} announcements at once: remove one")
        made = Announcement(f"announcement-{uuid.uuid4().hex[:12]}", checked,
                            expires_at.astimezone(UTC), by, self.clock())  # fmt: skip
        try:
            await asyncio.to_thread(self.prompts.synthesise, made.prompts())
        except PromptError as exc:
            raise AnnouncementError(f"the text cannot be spoken: {exc}") from exc
        await asyncio.wait_for(
            self.redis.hset(self.key, made.id, json.dumps(made.as_dict(), ensure_ascii=False)),
            self.timeout_s,
        )
        log.info("announcement %s by %s until %s (%s)", made.id, by, made.expires_at.isoformat(),
                 ", ".join(checked))  # fmt: skip
        self.on_change(made.id, "added")
        return made

    async def add_recording(self, sound: bytes, expires_at: datetime, by: str) -> Announcement:
        """Check and convert a recorded announcement (a WAV file's bytes), then store it with
        its sound: callers hear the recording from now on."""
        self.check_expiry(expires_at)
        if len(await self.current()) >= MAX_ACTIVE:
            raise AnnouncementError(f"at most {MAX_ACTIVE} announcements at once: remove one")
        audio, seconds = await asyncio.to_thread(recorded, sound)
        made = Announcement(f"announcement-{uuid.uuid4().hex[:12]}", {},
                            expires_at.astimezone(UTC), by, self.clock(),
                            hashlib.sha256(audio).hexdigest()[:16], seconds)  # fmt: skip
        keep_until_ms = int(made.expires_at.timestamp() * 1000) + 60_000
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.audio_key(made.id), audio, pxat=keep_until_ms)
            pipe.hset(self.key, made.id, json.dumps(made.as_dict(), ensure_ascii=False))
            await asyncio.wait_for(pipe.execute(), self.timeout_s)
        await asyncio.to_thread(self._write, made, audio)
        log.info("announcement %s by %s until %s: a recording of %.1f s", made.id, by,
                 made.expires_at.isoformat(), seconds)  # fmt: skip
        self.on_change(made.id, "added")
        return made

    def recorded_path(self, item: Announcement) -> Path:
        """The recording's file in the prompts folder, without ``.wav`` (as Asterisk wants)."""
        return self.prompts.directory / RECORDED / f"{item.id}-{item.recording}"

    def _write(self, item: Announcement, audio: bytes) -> None:
        target = self.recorded_path(item).with_suffix(".wav")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(audio)
        os.replace(partial, target)

    async def _recorded_file(self, item: Announcement) -> Path | None:
        """The recording's file, written from Redis if this engine has none yet."""
        path = self.recorded_path(item)
        if not path.with_suffix(".wav").is_file():
            key = self.audio_key(item.id)
            audio: Any = await asyncio.wait_for(self.redis.get(key), self.timeout_s)
            if not isinstance(audio, bytes):  # gone (expired, removed)
                log.warning("announcement %s: its recording is gone from Redis: skipped", item.id)
                return None
            await asyncio.to_thread(self._write, item, audio)
        return path

    async def current(self) -> list[Announcement]:
        """The announcements not yet expired, oldest first; expired ones are removed."""
        raw: dict[Any, Any] = await asyncio.wait_for(self.redis.hgetall(self.key), self.timeout_s)
        now = self.clock()
        alive: list[Announcement] = []
        expired: list[Any] = []
        for field, value in raw.items():
            try:
                item = _parse(value)
            except (ValueError, KeyError, TypeError):
                log.warning("announcement %r unreadable: removed", field)
                expired.append(field)
                continue
            if item.expires_at > now:
                alive.append(item)
            else:
                expired.append(field)
        if expired:
            await asyncio.wait_for(self.redis.hdel(self.key, *expired), self.timeout_s)
            audio = [self.audio_key(_text(field)) for field in expired]
            await asyncio.wait_for(self.redis.delete(*audio), self.timeout_s)
        return sorted(alive, key=lambda a: a.created_at)

    async def remove(self, announcement_id: str) -> bool:
        removed = await asyncio.wait_for(self.redis.hdel(self.key, announcement_id), self.timeout_s)
        await asyncio.wait_for(self.redis.delete(self.audio_key(announcement_id)), self.timeout_s)
        if removed:
            self.on_change(announcement_id, "removed")
        return bool(removed)

    async def playable(self) -> list[tuple[Prompt, Path]]:
        """What a caller hears before the main menu: each current announcement in each of its
        languages, as files (made again if pruned). Never fails the call: on a Redis or
        synthesis error the caller goes straight to the menu."""
        try:
            out = []
            for item in await self.current():
                if item.recording:
                    path = await self._recorded_file(item)
                    if path is not None:
                        out.append((Prompt(item.id, RECORDED, ""), path))
                for prompt in item.prompts():
                    out.append((prompt, await self.prompts.speak(prompt)))
            return out
        except (RedisError, OSError, TimeoutError, PromptError):
            log.exception("announcements unavailable: callers go straight to the menu")
            return []


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
