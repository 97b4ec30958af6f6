"""Storing and listing call records (SQLAlchemy, async)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from calls.callerid import CallerId
from calls.models import CallEvent, CallRecord
from db.base import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JourneyStep:
    kind: str
    node: str | None = None
    detail: str | None = None
    at: datetime | None = None


class CallStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._writing: dict[str, asyncio.Event] = {}  # uniqueid -> the IVR's writes are done

    @contextmanager
    def writing(self, uniqueid: str) -> Iterator[None]:
        """While a call's IVR writes its journey and route (after letting the caller go on),
        :meth:`close` of that call waits: a record is whole once it is closed."""
        done = self._writing[uniqueid] = asyncio.Event()
        try:
            yield
        finally:
            done.set()
            if self._writing.get(uniqueid) is done:
                del self._writing[uniqueid]

    async def open(
        self, uniqueid: str, channel: str, caller: CallerId, *, started_at: datetime | None = None
    ) -> int:
        """Create the record when the call reaches the IVR (or return the existing one);
        ``started_at`` when the call began before the engine heard of it."""
        async with self._sessions.begin() as session:
            existing = await session.scalar(
                select(CallRecord.id).where(CallRecord.uniqueid == uniqueid)
            )
            if existing is not None:
                return existing
            record = CallRecord(
                uniqueid=uniqueid,
                channel=channel[:128],
                caller_number=caller.number,
                caller_raw=caller.raw,
                started_at=started_at or utcnow(),
            )
            session.add(record)
            await session.flush()
            return record.id

    async def add_steps(self, call_id: int, steps: list[JourneyStep]) -> None:
        async with self._sessions.begin() as session:
            session.add_all(
                CallEvent(
                    call_id=call_id,
                    at=s.at or utcnow(),
                    kind=s.kind,
                    node=s.node,
                    detail=(s.detail or None) and s.detail[:255],
                )
                for s in steps
            )

    async def add_step_to(self, uniqueid: str, step: JourneyStep) -> bool:
        """One step on the record of ``uniqueid`` (a transfer, say); False if none exists."""
        async with self._sessions.begin() as session:
            call_id = await session.scalar(
                select(CallRecord.id).where(CallRecord.uniqueid == uniqueid)
            )
            if call_id is None:
                return False
            detail = (step.detail or None) and step.detail[:255]
            session.add(CallEvent(call_id=call_id, at=step.at or utcnow(), kind=step.kind,
                                  node=step.node, detail=detail))  # fmt: skip
            return True

    async def finish_ivr(
        self,
        call_id: int,
        *,
        route: str | None,
        reason: str,
        language: str,
        entered: str | None,
    ) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(CallRecord)
                .where(CallRecord.id == call_id)
                .values(route=route, route_reason=reason, language=language, entered_number=entered)
            )

    async def close(
        self,
        uniqueid: str,
        *,
        cause: int | None,
        cause_text: str | None,
        at: datetime | None = None,
    ) -> bool:
        """Close the record with the hangup cause; False if the call never reached the IVR."""
        if (writing := self._writing.get(uniqueid)) is not None:
            await writing.wait()
        async with self._sessions.begin() as session:
            record = await session.scalar(select(CallRecord).where(CallRecord.uniqueid == uniqueid))
            if record is None:
                return False
            if record.ended_at is None or record.hangup_cause is None:
                record.ended_at = record.ended_at or at or utcnow()
                record.hangup_cause = cause
                record.hangup_cause_text = cause_text
                session.add(
                    CallEvent(
                        call_id=record.id,
                        at=record.ended_at,
                        kind="hangup",
                        detail=f"{cause} {cause_text or ''}".strip(),
                    )
                )
            return True

    async def open_before(self, before: datetime, limit: int = 1000, prefix: str = "") -> list[str]:
        """Uniqueids (starting with ``prefix``) of the records not closed yet that started
        before ``before``."""
        async with self._sessions() as session:
            found = await session.scalars(
                select(CallRecord.uniqueid)
                .where(
                    CallRecord.ended_at.is_(None),
                    CallRecord.started_at < before,
                    CallRecord.uniqueid.startswith(prefix, autoescape=True),
                )  # fmt: skip
                .order_by(CallRecord.started_at)
                .limit(limit)
            )
            return list(found)

    async def count_by_route(self, since: datetime) -> dict[tuple[str, str], int]:
        """Calls started since ``since`` by (route, outcome): the route the IVR chose
        (``none``: it chose none) and why it ended there (the IVR's reason: ``key``,
        ``timeout``, ``hangup``..., or ``in_ivr`` while the caller is still in the menu)."""
        query = (
            select(CallRecord.route, CallRecord.route_reason, func.count())
            .where(CallRecord.started_at >= since)
            .group_by(CallRecord.route, CallRecord.route_reason)
        )
        async with self._sessions() as session:
            return {
                (route or "none", reason or "in_ivr"): int(n)
                for route, reason, n in (await session.execute(query)).all()
            }

    async def get(self, uniqueid: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            record = await session.scalar(
                select(CallRecord)
                .where(CallRecord.uniqueid == uniqueid)
                .options(selectinload(CallRecord.events))
            )
            return None if record is None else _as_dict(record)

    async def of_number(self, number: str, limit: int = 10) -> list[dict[str, Any]]:
        """The latest calls from one caller number, newest first (the operator's desk)."""
        async with self._sessions() as session:
            records = await session.scalars(
                select(CallRecord)
                .where(CallRecord.caller_number == number)
                .order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
                .limit(limit)
                .options(selectinload(CallRecord.events))
            )
            return [_as_dict(r) for r in records]

    async def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            records = await session.scalars(
                select(CallRecord)
                .order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
                .limit(limit)
                .options(selectinload(CallRecord.events))
            )
            return [_as_dict(r) for r in records]


def _as_dict(record: CallRecord) -> dict[str, Any]:
    return {
        "uniqueid": record.uniqueid,
        "channel": record.channel,
        "caller_number": record.caller_number,
        "caller_raw": record.caller_raw,
        "started_at": record.started_at.isoformat(),
        "ended_at": record.ended_at.isoformat() if record.ended_at else None,
        "language": record.language,
        "route": record.route,
        "route_reason": record.route_reason,
        "entered_number": record.entered_number,
        "hangup_cause": record.hangup_cause,
        "hangup_cause_text": record.hangup_cause_text,
        "journey": [
            {"at": e.at.isoformat(), "kind": e.kind, "node": e.node, "detail": e.detail}
            for e in record.events
        ],
    }
