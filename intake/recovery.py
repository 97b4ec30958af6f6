"""What intake's recovery pass drafts besides its outbox: recordings that have no order.

Two kinds: a recording row whose call never reached ``finished`` (the engine was killed
during the conversation), and a recording no connected call announced at all (the native
``Queue()`` fallback answered it while the engine's ACD was unreachable), which is drafted
from the call record. Either is drafted only once Asterisk no longer has its channel.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from intake.files import recent_recordings, wav_duration
from intake.outbox import PendingDraft
from intake.store import CallRecording, RecordingStore
from pbx.ami import AmiActionError, AmiUnavailable

log = logging.getLogger(__name__)

MIN_AUDIO_S = 0.5  # a recording shorter than this was never bridged to a seat


class AmiStatus(Protocol):
    async def action(self, action: dict[str, str], *, as_list: bool = False) -> Any: ...


class CallLookup(Protocol):
    """The call records (calls.store.CallStore): who called, which queue they chose."""

    async def get(self, uniqueid: str) -> dict[str, Any] | None: ...


async def live_calls(ami: AmiStatus, timeout: float) -> set[str] | None:
    """Uniqueids of the channels Asterisk has now (AMI Status), or None if it cannot say."""
    try:
        async with asyncio.timeout(timeout):
            answer = await ami.action({"Action": "Status"}, as_list=True)
    except (AmiUnavailable, AmiActionError, TimeoutError) as exc:
        log.debug("AMI Status failed: %s", exc)
        return None
    events = answer if isinstance(answer, list) else [answer]
    return {str(e.get("Uniqueid")) for e in events if e.get("Event") == "Status"}


def orphan_draft(row: CallRecording) -> PendingDraft:
    """The draft of a recorded call whose end the engine never saw."""
    return PendingDraft(
        call_id=row.call_id,
        caller_channel="",  # gone: nothing to stop
        caller_number=row.caller_number,
        seat=row.seat,
        seat_channel="",
        skill=row.skill,
        connected_at=row.connected_at,
        ended_at=row.ended_at,
    )


async def unannounced(
    recordings_dir: Path, store: RecordingStore, calls: CallLookup | None, settled: datetime
) -> list[PendingDraft]:
    """Drafts of the recent recordings with audio that no connected call announced, written
    to last before ``settled``, from their call records (the seat is unknown)."""
    drafts: list[PendingDraft] = []
    found = await asyncio.to_thread(recent_recordings, recordings_dir, settled - timedelta(days=1))
    ids = {files.mix.name.removesuffix("-mix.wav"): files for files in found}
    known = await store.known(list(ids)) if ids else set()
    for call_id, files in ids.items():
        if call_id in known:
            continue
        try:
            stat = await asyncio.to_thread(files.mix.stat)
            seconds = await asyncio.to_thread(wav_duration, files.mix)
        except (OSError, ValueError):
            continue
        changed = datetime.fromtimestamp(stat.st_mtime, UTC)
        if changed > settled or seconds < MIN_AUDIO_S:  # still written, or never bridged
            continue
        record = (await calls.get(call_id) if calls is not None else None) or {}
        route = str(record.get("route") or "")
        drafts.append(PendingDraft(
            call_id=call_id, caller_channel="",
            caller_number=str(record.get("caller_number") or ""),
            seat="", seat_channel="",
            skill=route.removeprefix("queue:") if route.startswith("queue:") else "",
            connected_at=changed, ended_at=changed,
            problems=("answered outside the engine's ACD: seat unknown",),
        ))  # fmt: skip
    return drafts
