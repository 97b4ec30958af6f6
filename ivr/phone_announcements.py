"""A supervisor records a broadcast announcement from their own softphone (FastAGI route
``announcement``).

The softphone dials ``*25`` (or ``*25<minutes>``: how long callers hear it; default
:data:`DEFAULT_MINUTES`); only a phone bound to an enabled supervisor's or admin's account may
(``hotline users bind NAME --extension EXT``; asked of ``AccountService.supervisor_at``).
After a spoken prompt and a beep Asterisk records (``RECORD FILE``, ``#`` ends it, at most
:data:`~ivr.announcements.MAX_RECORDING_S`) into the recordings folder it shares with the
engine; the file becomes an announcement like an upload on the wallboard
(:meth:`~ivr.announcements.Announcements.add_recording`, by the account's name) and is
removed. The call ends with a spoken confirmation or refusal.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from accounts.users import User
from ivr.announcements import MAX_RECORDING_S, AnnouncementError, Announcements
from ivr.tree import Prompt
from pbx.agi_channel import AgiChannel, CallerHungUp
from queueing.announce import Announcer
from queueing.channels import seat_of

log = logging.getLogger(__name__)

DEFAULT_MINUTES = 60
_SAY = {
    "record": "请在提示音后录制广播通知，按井号键结束。",
    "published": "广播通知已发布。",
    "refused": "此话机无权录制广播通知。",
    "failed": "录制失败，未发布。",
}


class PhoneAnnouncements:
    def __init__(
        self, announcements: Announcements, announcer: Announcer,
        owner: Callable[[str], Awaitable[User | None]], folder: Path, beep: Path,
    ) -> None:  # fmt: skip
        self.announcements, self.announcer = announcements, announcer
        self.beep = beep  # the tone before recording (without .wav), as Asterisk plays it
        self.owner = owner  # the supervisor (or admin) whose phone an extension is, or None
        self.folder = folder  # where Asterisk records (the same path on both sides)

    async def run(self, agi: AgiChannel) -> None:
        call = agi.call
        phone = seat_of(call.channel)
        who = f"phone {phone} ({call.uniqueid})"
        try:
            await agi.command("ANSWER", deadline_s=10)
            outcome = await self._record(agi, phone, who)
            await self._say(agi, outcome, who)
        except CallerHungUp:
            log.info("%s hung up while recording an announcement: nothing published", who)

    async def _record(self, agi: AgiChannel, phone: str, who: str) -> str:
        try:
            user = await self.owner(phone)
        except SQLAlchemyError as exc:
            log.warning("%s: the accounts could not be read (%s): not recorded", who, exc)
            return "failed"
        if user is None:
            log.warning("%s: not a supervisor's phone: not recorded", who)
            return "refused"
        author = user.name
        minutes = _minutes(agi.call.args[0] if agi.call.args else "")
        await self._say(agi, "record", who)
        await agi.stream([str(self.beep)])
        stem = self.folder / f"announcement-{uuid.uuid4().hex[:12]}"
        wav = stem.with_suffix(".wav")
        try:
            limit_ms = int(MAX_RECORDING_S * 1000)
            await agi.command(f'RECORD FILE "{stem}" wav "#" {limit_ms}',
                              deadline_s=MAX_RECORDING_S + 30)  # fmt: skip
            sound = await asyncio.to_thread(wav.read_bytes)
            expires_at = datetime.now(UTC) + timedelta(minutes=minutes)
            made = await self.announcements.add_recording(sound, expires_at, author)
        except (AnnouncementError, OSError, RedisError, TimeoutError) as exc:
            log.warning("%s: the announcement not published: %s", who, exc)
            return "failed"
        finally:
            wav.unlink(missing_ok=True)
        log.info("%s: announcement %s recorded for %d minutes", who, made.id, minutes)
        return "published"

    async def _say(self, agi: AgiChannel, what: str, who: str) -> None:
        file = await self.announcer.file(Prompt(f"announce-{what}", "zh", _SAY[what]), who)
        if file is not None:
            await agi.stream([file])


def _minutes(dialled: str) -> int:
    """The minutes dialled after the code, within the announcements' lifetime."""
    if not dialled.isdigit() or not 0 < int(dialled) <= 31 * 24 * 60:
        return DEFAULT_MINUTES
    return int(dialled)
