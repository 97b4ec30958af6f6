"""SQL access for call recordings: one row per connected call, updated as intake goes on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.models import CallRecordingRow


@dataclass(frozen=True)
class CallRecording:
    call_id: str
    caller_number: str
    seat: str
    skill: str
    connected_at: datetime
    ended_at: datetime | None
    status: str
    mix_path: str
    caller_path: str
    operator_path: str
    duration_s: float | None
    transcript: dict[str, Any] | None
    work_order_number: str
    error: str
    deleted_at: datetime | None


def _snapshot(row: CallRecordingRow) -> CallRecording:
    return CallRecording(
        call_id=row.call_id,
        caller_number=row.caller_number,
        seat=row.seat,
        skill=row.skill,
        connected_at=row.connected_at,
        ended_at=row.ended_at,
        status=row.status,
        mix_path=row.mix_path,
        caller_path=row.caller_path,
        operator_path=row.operator_path,
        duration_s=row.duration_s,
        transcript=row.transcript,
        work_order_number=row.work_order_number,
        error=row.error,
        deleted_at=row.deleted_at,
    )


class RecordingStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def started(
        self,
        call_id: str,
        *,
        caller_number: str,
        seat: str,
        skill: str = "",
        connected_at: datetime,
        paths: Sequence[str],
        status: str = "recording",
        error: str = "",
    ) -> None:
        mix, caller, operator = paths
        async with self.sessions.begin() as session:
            row = await self._row(session, call_id)
            if row is None:
                row = CallRecordingRow(call_id=call_id, connected_at=connected_at)
                session.add(row)
            row.caller_number, row.seat, row.skill = caller_number, seat, skill
            row.mix_path, row.caller_path, row.operator_path = mix, caller, operator
            row.status, row.error = status, error

    async def update(self, call_id: str, **changes: Any) -> None:
        async with self.sessions.begin() as session:
            row = await self._row(session, call_id)
            if row is None:
                raise KeyError(f"no recording for call {call_id}")
            for name, value in changes.items():
                setattr(row, name, value)

    async def save(self, call_id: str, *, connected_at: datetime, **fields: Any) -> None:
        """Create or update the call's row (created here if the database was down at connect)."""
        async with self.sessions.begin() as session:
            row = await self._row(session, call_id)
            if row is None:
                row = CallRecordingRow(call_id=call_id, connected_at=connected_at)
                session.add(row)
            for name, value in fields.items():
                setattr(row, name, value)

    async def undrafted(self, before: datetime, limit: int = 200) -> list[CallRecording]:
        """Recordings of calls connected before ``before`` that have no work order yet."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(CallRecordingRow)
                .where(
                    CallRecordingRow.work_order_number == "",
                    CallRecordingRow.connected_at < before,
                    CallRecordingRow.status.in_(("recording", "recorded", "transcribed")),
                )
                .order_by(CallRecordingRow.connected_at)
                .limit(limit)
            )
            return [_snapshot(row) for row in rows]

    async def known(self, call_ids: Sequence[str]) -> set[str]:
        """Which of ``call_ids`` have a recording row."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(CallRecordingRow.call_id).where(CallRecordingRow.call_id.in_(call_ids))
            )
            return set(rows)

    async def count_by_status(self) -> dict[str, int]:
        """Recordings per status: ``recorded`` ones wait for transcription (the backlog)."""
        query = select(CallRecordingRow.status, func.count()).group_by(CallRecordingRow.status)
        async with self.sessions() as session:
            return {status: int(n) for status, n in (await session.execute(query)).all()}

    async def get(self, call_id: str) -> CallRecording | None:
        async with self.sessions() as session:
            row = await self._row(session, call_id)
            return _snapshot(row) if row is not None else None

    async def ended_before(self, cutoff: datetime, limit: int = 1000) -> list[CallRecording]:
        """Recordings of calls that ended before ``cutoff`` and still have files."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(CallRecordingRow)
                .where(CallRecordingRow.ended_at < cutoff, CallRecordingRow.deleted_at.is_(None))
                .order_by(CallRecordingRow.ended_at)
                .limit(limit)
            )
            return [_snapshot(row) for row in rows]

    @staticmethod
    async def _row(session: AsyncSession, call_id: str) -> CallRecordingRow | None:
        row: CallRecordingRow | None = await session.scalar(
            select(CallRecordingRow).where(CallRecordingRow.call_id == call_id)
        )
        return row
