"""What staff read of the revisit schedule: the list by state, one order's revisit with its
attempts, and the day's figures (reach, resolved and satisfaction rates)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calls.callerid import mask_number
from revisit.models import RevisitAttemptRow, RevisitRow
from revisit.rules import RevisitPolicy, RevisitState
from workorders.errors import InvalidInput, NotFound
from workorders.orders import Satisfaction


class RevisitViews:
    """The reading side of :class:`revisit.service.RevisitService`."""

    sessions: async_sessionmaker[AsyncSession]
    policy: RevisitPolicy
    clock: Callable[[], datetime]

    async def listing(self, state: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        query = select(RevisitRow).order_by(RevisitRow.due_at.desc()).limit(limit)
        if state:
            if state not in set(RevisitState):
                raise InvalidInput(
                    f"unknown revisit state {state!r}; one of {', '.join(RevisitState)}"
                )
            query = query.where(RevisitRow.state == state)
        async with self.sessions() as session:
            return [_view(row) for row in await session.scalars(query)]

    async def show(self, number: str) -> dict[str, Any]:
        async with self.sessions() as session:
            return _view(await self._latest(session, number), history=True)

    async def _latest(self, session: AsyncSession, number: str) -> RevisitRow:
        row = await session.scalar(
            select(RevisitRow)
            .where(RevisitRow.order_number == number)
            .order_by(RevisitRow.round.desc())
            .limit(1)
        )
        if row is None:
            raise NotFound(f"no revisit of work order {number}")
        return row

    async def figures(self, day_start: datetime | None = None) -> dict[str, Any]:
        """The day's figures: reach rate (revisits called today whose citizen answered),
        resolved and satisfaction rates (of results stored today), and the counts by state."""
        now = self.clock()
        if day_start is None:
            local = now.astimezone(self.policy.timezone)
            day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        async with self.sessions() as session:
            called = await session.execute(
                select(
                    RevisitAttemptRow.revisit_id,
                    func.max(case((RevisitAttemptRow.answered_at.is_not(None), 1), else_=0)),
                )
                .where(RevisitAttemptRow.started_at >= day_start)
                .group_by(RevisitAttemptRow.revisit_id)
            )
            reached = [bool(r[1]) for r in called]
            results = (
                await session.execute(
                    select(RevisitRow.resolved, RevisitRow.satisfaction).where(
                        RevisitRow.state == RevisitState.DONE.value, RevisitRow.done_at >= day_start
                    )
                )
            ).all()
            counts = dict(
                (
                    await session.execute(
                        select(RevisitRow.state, func.count()).group_by(RevisitRow.state)
                    )
                ).all()
            )
        happy = {Satisfaction.VERY_SATISFIED.value, Satisfaction.SATISFIED.value}
        return {
            "since": day_start.isoformat(),
            "called": len(reached),
            "reached": sum(reached),
            "reach_rate": _rate(sum(reached), len(reached)),
            "results": len(results),
            "resolved_rate": _rate(sum(1 for r in results if r.resolved), len(results)),
            "satisfaction_rate": _rate(
                sum(1 for r in results if r.satisfaction in happy), len(results)
            ),
            "by_state": {state.value: int(counts.get(state.value, 0)) for state in RevisitState},
        }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _view(row: RevisitRow, *, history: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "order_number": row.order_number,
        "round": row.round,
        "state": row.state,
        "manual_reason": row.manual_reason or None,
        "phone": mask_number(row.phone),
        "language": row.language or None,
        "due_at": row.due_at.isoformat(),
        "attempts": row.attempts,
        "resolved": row.resolved,
        "satisfaction": row.satisfaction or None,
        "result_by": row.result_by or None,
        "done_at": row.done_at.isoformat() if row.done_at else None,
        # not resolved or dissatisfied: reworked, and on the supervisor's list
        "attention": row.resolved is False or row.satisfaction == Satisfaction.DISSATISFIED,
    }
    if history:
        view["history"] = [
            {
                "started_at": a.started_at.isoformat(),
                "answered": a.answered_at is not None,
                "ended_at": a.ended_at.isoformat() if a.ended_at else None,
                "outcome": a.outcome or "in_flight",
                "engine": a.owner,
            }
            for a in row.history
        ]
    return view
