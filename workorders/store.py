"""SQL side of the work-order service: numbering, loading under a lock, history, queries.

:class:`WorkOrderStore` runs one action on one order in one transaction (:meth:`_act`):
row lock, role check, state transition, history line. The service builds on it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from datetime import datetime

from sqlalchemy import String, cast, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.base import utcnow
from workorders.dispatch import DispatchRules
from workorders.errors import Forbidden, NotFound
from workorders.models import WorkOrderCounter, WorkOrderEventRow, WorkOrderRow
from workorders.orders import Actor, Role, WorkOrder, snapshot
from workorders.states import Action, State, next_state
from workorders.timelimits import TimeLimits

log = logging.getLogger(__name__)
_ACTIONS = frozenset(a.value for a in Action)

R = Role
_CENTRE = {R.OPERATOR, R.SUPERVISOR}
_DEPARTMENT = {R.DEPARTMENT, R.SUPERVISOR}
PERMISSIONS: dict[str, set[Role]] = {
    "create": {*_CENTRE, R.SYSTEM},
    "update": _CENTRE,
    Action.ANSWER: _CENTRE,
    Action.DISPATCH: _CENTRE,
    Action.REASSIGN: _CENTRE,
    Action.SIGN: _DEPARTMENT,
    Action.RETURN: _DEPARTMENT,
    Action.START: _DEPARTMENT,
    Action.REQUEST_EXTENSION: _DEPARTMENT,
    Action.REPLY: _DEPARTMENT,
    Action.APPROVE_EXTENSION: {R.SUPERVISOR},
    Action.REFUSE_EXTENSION: {R.SUPERVISOR},
    Action.REVIEW: _CENTRE,
    Action.REJECT_REPLY: _CENTRE,
    Action.REVISIT: {*_CENTRE, R.SYSTEM},
    Action.REWORK: {*_CENTRE, R.SYSTEM},
    Action.ARCHIVE: {*_CENTRE, R.SYSTEM},
    Action.MERGE: _CENTRE,
    "merged": _CENTRE,  # the history line on the order a duplicate was merged into
    "follow-up": {R.SYSTEM},  # the citizen adds to an open order (an SMS follow-up)
    "transcript": {R.SYSTEM},  # a call's transcript reaches the order opened during the call
    "taken-over": {R.SYSTEM},  # a call put through to another seat: its order goes along
    "note": {*_CENTRE, R.DEPARTMENT},  # a progress note (办理进度), no state change
    "assist-reply": {R.DEPARTMENT},  # an assisting department's part of the reply (协办反馈)
    "supervise": {R.SUPERVISOR, R.SYSTEM},
    "urge": {R.SUPERVISOR, R.SYSTEM},
    "escalate": {R.SUPERVISOR, R.SYSTEM},
}


#: actions an assisting department may take too (the others: the lead department only)
ASSISTING_MAY = frozenset({"note", "assist-reply"})


def authorize(actor: Actor, action: str, order: WorkOrderRow | None = None) -> None:
    """Refuse an actor whose role may not take ``action``, or a department not leading it
    (for :data:`ASSISTING_MAY`: neither leading nor assisting)."""
    if actor.role not in PERMISSIONS[action]:
        raise Forbidden(f"a {actor.role} may not {action} work orders")
    if actor.role is R.DEPARTMENT and order is not None:
        involved = [order.lead_department]
        if action in ASSISTING_MAY:
            involved += list(order.assisting_departments or ())
        if actor.department not in involved:
            raise Forbidden(f"work order {order.number} is not led by {actor.department}")


def may_view(actor: Actor, order: WorkOrder) -> bool:
    if actor.role is not R.DEPARTMENT:
        return True
    return actor.department in (order.lead_department, *order.assisting_departments)


class WorkOrderStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rules: DispatchRules,
        limits: TimeLimits,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.rules = rules
        self.limits = limits
        self.clock = clock

    # -- reading --------------------------------------------------------------------------
    async def get(self, number: str, actor: Actor | None = None) -> WorkOrder:
        async with self.sessions() as session:
            order = snapshot(await self._load(session, number, lock=False))
        if actor is not None and not may_view(actor, order):
            raise Forbidden(f"work order {number} is not {actor.department}'s")
        return order

    async def by_token(self, token: str) -> WorkOrder:
        async with self.sessions() as session:
            row = (
                await session.execute(select(WorkOrderRow).where(WorkOrderRow.token == token))
            ).scalar_one_or_none()
            if row is None:
                raise NotFound(f"no request with token {token}")
            return snapshot(row)

    async def by_public_id(self, public_id: str) -> WorkOrder:
        """An Open311 request by its public id (never the sequential number)."""
        async with self.sessions() as session:
            query = select(WorkOrderRow).where(WorkOrderRow.public_id == public_id)
            row = (await session.execute(query)).scalar_one_or_none()
            if row is None:
                raise NotFound(f"no request {public_id[:64]}")
            return snapshot(row)

    async def find(
        self,
        *,
        numbers: Collection[str] | None = None,
        public_ids: Collection[str] | None = None,
        published: bool = False,
        caller_phone: str | None = None,
        channel: str | None = None,
        service_code: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        states: Collection[State] | None = None,
        department: str | None = None,
        involving: str | None = None,
        limit: int = 1000,
    ) -> list[WorkOrder]:
        """Orders matching every filter given, newest first (``department``: the lead
        department; ``involving``: the lead or an assisting department)."""
        query = select(WorkOrderRow).order_by(WorkOrderRow.created_at.desc()).limit(limit)
        if numbers is not None:
            query = query.where(WorkOrderRow.number.in_(list(numbers)))
        if public_ids is not None:
            query = query.where(WorkOrderRow.public_id.in_(list(public_ids)))
        if published:  # the public feed: consent given at submission, not confidential since
            query = query.where(
                WorkOrderRow.published.is_(True),
                WorkOrderRow.confidential.is_(False),
                WorkOrderRow.public_id.is_not(None),
            )
        if caller_phone is not None:
            query = query.where(WorkOrderRow.caller_phone == caller_phone)
        if channel is not None:
            query = query.where(WorkOrderRow.channel == channel)
        if service_code:
            query = query.where(WorkOrderRow.service_code == service_code)
        if start is not None:
            query = query.where(WorkOrderRow.created_at >= start)
        if end is not None:
            query = query.where(WorkOrderRow.created_at <= end)
        if states is not None:
            query = query.where(WorkOrderRow.state.in_([s.value for s in states]))
        if department:
            query = query.where(WorkOrderRow.lead_department == department)
        if involving:  # the JSON list's text holds the name as the JSON serialiser wrote it
            listed = cast(WorkOrderRow.assisting_departments, String)
            query = query.where(
                or_(
                    WorkOrderRow.lead_department == involving,
                    listed.contains(json.dumps(involving), autoescape=True),
                )
            )
        async with self.sessions() as session:
            return [snapshot(row) for row in (await session.execute(query)).scalars()]

    async def count_by_state(self) -> dict[str, int]:
        """How many orders stand in each state (states with none are left out)."""
        query = select(WorkOrderRow.state, func.count()).group_by(WorkOrderRow.state)
        async with self.sessions() as session:
            return {state: int(n) for state, n in (await session.execute(query)).all()}

    async def due_before(
        self, until: datetime, states: Collection[State], limit: int = 50
    ) -> tuple[int, list[WorkOrder]]:
        """Orders in ``states`` whose time limit ends before ``until``: how many, and the
        first ``limit`` of them, earliest deadline first (near or past their deadline)."""
        where = (WorkOrderRow.state.in_([s.value for s in states]), WorkOrderRow.due_at < until)
        async with self.sessions() as session:
            count = await session.scalar(select(func.count(WorkOrderRow.id)).where(*where))
            rows = await session.scalars(
                select(WorkOrderRow).where(*where).order_by(WorkOrderRow.due_at).limit(limit)
            )
            return int(count or 0), [snapshot(row) for row in rows]

    async def _load(self, session: AsyncSession, number: str, *, lock: bool) -> WorkOrderRow:
        query = select(WorkOrderRow).where(WorkOrderRow.number == number)
        if lock:
            query = query.with_for_update()
        row = (await session.execute(query)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no work order {number}")
        return row

    def _event(
        self, actor: Actor, action: str, source: str, target: str, note: str, at: datetime
    ) -> WorkOrderEventRow:
        return WorkOrderEventRow(at=at, actor=actor.name, role=actor.role.value, action=action,
                                 from_state=source, to_state=target, note=note)  # fmt: skip

    async def _act(
        self,
        number: str,
        actor: Actor,
        action: str,
        note: str = "",
        change: Callable[[WorkOrderRow, datetime], None] | None = None,
    ) -> WorkOrder:
        """Run one action on one order under a row lock; transitions and history in one place."""
        async with self.sessions.begin() as session:
            row = await self._load(session, number, lock=True)
            authorize(actor, action, row)
            source = State(row.state)
            target = next_state(source, Action(action)) if action in _ACTIONS else source
            now = self.clock()
            if change is not None:
                change(row, now)
            row.state = target.value
            row.updated_at = now
            row.history.append(self._event(actor, action, source, target, note, now))
            await session.flush()
            log.info(
                "work order %s: %s by %s (%s → %s)", number, action, actor.name, source, target
            )
            return snapshot(row)

    async def _next_number(self, session: AsyncSession, now: datetime) -> str:
        """``YYYYMMDD`` (local date) + a 6-digit daily sequence, digits only for the keypad."""
        day = self.limits.local_date(now).strftime("%Y%m%d")
        bump = (
            update(WorkOrderCounter)
            .where(WorkOrderCounter.day == day)
            .values(last=WorkOrderCounter.last + 1)
            .returning(WorkOrderCounter.last)
        )
        for _ in range(3):
            last = (await session.execute(bump)).scalar_one_or_none()
            if last is not None:
                return f"{day}{last:06d}"
            try:
                async with session.begin_nested():
                    session.add(WorkOrderCounter(day=day, last=1))
                return f"{day}{1:06d}"
            except IntegrityError:
                log.debug("counter for %s created concurrently; bumping it", day)
        raise RuntimeError(f"could not number a work order for {day}")
