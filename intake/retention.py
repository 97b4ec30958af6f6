"""Retention: recordings older than the configured number of days are deleted, and logged.

Each pass deletes the files of calls that ended before the cutoff and marks their rows
``deleted`` (the row, duration and transcript stay with the work order), then sweeps day
folders older than the cutoff for files no row knows (e.g. calls cut off by a crash).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from db.base import utcnow
from intake.config import IntakeConfig
from intake.store import RecordingStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime | None
    calls: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()


def _delete(path: Path, reason: str) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    log.info("retention: deleted %s (%s)", path, reason)
    return True


def _day_of(folder: Path, root: Path) -> date | None:
    parts = folder.relative_to(root).parts
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None


def sweep_old_days(root: Path, cutoff: datetime) -> list[Path]:
    """Delete files in ``<root>/<yyyy>/<mm>/<dd>`` folders of days wholly before ``cutoff``."""
    deleted: list[Path] = []
    if not root.is_dir():
        return deleted
    for folder in sorted(root.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]")):
        day = _day_of(folder, root)
        if (
            day is None
            or datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) > cutoff
        ):
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and _delete(path, f"day folder {day} past retention"):
                deleted.append(path)
        for empty in (folder, folder.parent, folder.parent.parent):
            try:
                empty.rmdir()
            except OSError:
                break  # not empty: other days still kept
    return deleted


async def purge_expired(
    store: RecordingStore, config: IntakeConfig, now: datetime | None = None
) -> RetentionReport:
    if config.recording_retention_days <= 0:
        return RetentionReport(cutoff=None)
    cutoff = (now or utcnow()) - timedelta(days=config.recording_retention_days)
    calls: list[str] = []
    files: list[Path] = []
    for recording in await store.ended_before(cutoff):
        reason = f"call {recording.call_id} ended {recording.ended_at:%Y-%m-%d}"
        for name in (recording.mix_path, recording.caller_path, recording.operator_path):
            if not name:
                continue
            deleted = await asyncio.to_thread(_delete, Path(name), reason)
            if deleted:
                files.append(Path(name))
        await store.update(recording.call_id, status="deleted", deleted_at=utcnow())
        calls.append(recording.call_id)
    files.extend(await asyncio.to_thread(sweep_old_days, config.recordings_dir, cutoff))
    if calls or files:
        log.info("retention: %d calls, %d files older than %s deleted",
                 len(calls), len(files), cutoff.isoformat())  # fmt: skip
    return RetentionReport(cutoff=cutoff, calls=tuple(calls), files=tuple(files))


async def run_retention(store: RecordingStore, config: IntakeConfig, stop: asyncio.Event) -> None:
    """Purge every ``retention_interval_s`` until ``stop`` is set; a failed pass is logged."""
    if config.recording_retention_days <= 0:
        log.info("recording retention off: recordings are kept")
        return
    log.info("recordings are deleted after %d days", config.recording_retention_days)
    while not stop.is_set():
        try:
            await purge_expired(store, config)
        except Exception:
            log.exception("retention pass failed; trying again in %s s",
                          config.retention_interval_s)  # fmt: skip
        try:
            await asyncio.wait_for(stop.wait(), timeout=config.retention_interval_s)
        except TimeoutError:
            continue
