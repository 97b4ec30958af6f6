"""Intake's durable outbox: every ended call waits on disk until its work order is in SQL.

When a connected call ends, its draft is written here before anything else happens: one
JSON file per call, ``<outbox>/<uniqueid>.json``, written atomically (temporary file, fsync,
rename, fsync of the folder). Only a draft that landed in SQL is removed. So a database that
is down, a kill -9 or a stop while Vosk is still transcribing loses nothing: the engine
resumes every file at start. The file is on local disk rather than in SQL because it must be
written while the database is unreachable. The work order's idempotency key is the call's
uniqueid (unique in SQL), so drafting the same file twice still makes one order.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from calls.lifecycle import ConnectedCall

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingDraft:
    """A call waiting to become a work order, and how far its intake got."""

    call_id: str  # the citizen channel's uniqueid: the work order's idempotency key
    caller_channel: str
    caller_number: str
    seat: str
    seat_channel: str
    skill: str  # the queue the citizen chose
    connected_at: datetime
    ended_at: datetime | None
    # Set once both sides are transcribed, so that a retry does not transcribe again.
    transcribed: bool = False
    duration_s: float | None = None
    transcript: dict[str, Any] | None = None  # CallTranscript.to_dict()
    transcript_text: str = ""
    recording_path: str = ""
    problems: tuple[str, ...] = field(default=())

    @classmethod
    def of_call(cls, call: ConnectedCall) -> PendingDraft:
        return cls(
            call_id=call.call_id,
            caller_channel=call.caller_channel,
            caller_number=call.caller_number or "",
            seat=call.seat,
            seat_channel=call.seat_channel,
            skill=call.skill,
            connected_at=call.connected_at,
            ended_at=call.ended_at,
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["connected_at"] = self.connected_at.isoformat()
        data["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        data["problems"] = list(self.problems)
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> PendingDraft:
        data = json.loads(text)
        if not isinstance(data, dict) or not data.get("call_id"):
            raise ValueError("not a pending draft")
        data["connected_at"] = datetime.fromisoformat(data["connected_at"])
        ended = data.get("ended_at")
        data["ended_at"] = datetime.fromisoformat(ended) if ended else None
        data["problems"] = tuple(data.get("problems", ()))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_transcription(
        self,
        duration_s: float | None,
        transcript: dict[str, Any] | None,
        transcript_text: str,
        recording_path: str,
        problems: tuple[str, ...],
    ) -> PendingDraft:
        return replace(
            self, transcribed=True, duration_s=duration_s, transcript=transcript,
            transcript_text=transcript_text, recording_path=recording_path,
            problems=problems,
        )  # fmt: skip


class Outbox:
    """The folder of pending drafts (private: it holds numbers and transcripts)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)

    def _path(self, call_id: str) -> Path:
        if not call_id or "/" in call_id or call_id.startswith("."):
            raise ValueError(f"not a usable call uniqueid for a file name: {call_id!r}")
        return self.folder / f"{call_id}.json"

    def put(self, draft: PendingDraft) -> None:
        """Write (or rewrite) the draft atomically and durably: it is on disk when this returns."""
        path = self._path(draft.call_id)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, draft.to_json().encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self._sync_folder()

    def remove(self, call_id: str) -> None:
        self._path(call_id).unlink(missing_ok=True)
        self._sync_folder()

    def __contains__(self, call_id: str) -> bool:
        return self._path(call_id).exists()

    def pending(self) -> list[PendingDraft]:
        """Every draft waiting, oldest call first; an unreadable file is set aside and logged."""
        drafts: list[PendingDraft] = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                drafts.append(PendingDraft.from_json(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                aside = path.with_suffix(".unreadable")
                path.rename(aside)
                log.error("outbox: %s is not a readable draft (%s); moved to %s", path, exc, aside)
        return sorted(drafts, key=lambda d: d.connected_at)

    def _sync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
