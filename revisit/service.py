"""The revisit schedule in SQL: scheduling closed orders, claiming due revisits atomically
(two engines never place one twice), each attempt's end, results on the work order (by call
or entered by an operator), the manual list and the day's figures."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calls.callerid import mask_number
from calls.models import CallRecord
from db.base import utcnow
from revisit.models import RevisitAttemptRow, RevisitRow
from revisit.rules import (
    Outcome,
    RevisitPolicy,
    RevisitState,
    after_attempt,
    first_due,
    in_hours,
    manual_reason,
    open_at,
    retry_due,
)
from revisit.views import RevisitViews
from workorders.errors import InvalidInput, NotFound
from workorders.models import WorkOrderRow
from workorders.orders import Actor, Role, Satisfaction
from workorders.service import WorkOrderService
from workorders.states import State

log = logging.getLogger(__name__)

REVISIT_CALL = Actor("revisit-call", Role.SYSTEM)
#: orders that are revisited once they reach these states: reviewed, or answered directly
REVISITED_FROM = (State.REVIEWED, State.ANSWERED)
_CLAIMS = 0x12345_0009  # the advisory lock that serialises claims between engines (PostgreSQL)
SATISFACTION_KEYS = {
    "1": Satisfaction.VERY_SATISFIED,
    "2": Satisfaction.SATISFIED,
    "3": Satisfaction.DISSATISFIED,
}


@dataclass(frozen=True)
class Claimed:
    """One attempt this engine placed: the call to make."""

    revisit_id: int
    channel_id: str
    order_number: str
    phone: str
    language: str


class RevisitService(RevisitViews):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        work_orders: WorkOrderService,
        policy: RevisitPolicy,
        *,
        may_dial: Callable[[str], bool],
        clock: Callable[[], datetime] = utcnow,
        other_lines: Callable[[AsyncSession], Awaitable[int]] | None = None,
    ) -> None:
        self.sessions, self.work_orders = sessions, work_orders
        self.policy, self.may_dial, self.clock = policy, may_dial, clock
        #: the outbound dialer's lines other calls hold (callbacks ringing citizens), counted
        #: in the claim's transaction against the one limit (``policy.concurrency``)
        self.other_lines = other_lines
        self.working_day = work_orders.limits.calendar.is_working_day
        #: told (order number, new state) after a revisit changed: the wallboard's live event
        self.on_change: Callable[[str, str], None] | None = None

    def _changed(self, number: str, state: str) -> None:
        if self.on_change is not None:
            self.on_change(number, state)

    # -- scheduling ---------------------------------------------------------------------------
    async def schedule_closed(self, limit: int = 200) -> int:
        """A revisit for every reviewed (or directly answered) order without one for its
        current round, closed within the policy's window (not every old order of a database
        the revisits were added to); citizens not to be called go straight to the manual list."""
        since = self.clock() - self.policy.window
        missing = (
            select(WorkOrderRow, CallRecord.language)
            .outerjoin(
                RevisitRow,
                and_(
                    RevisitRow.order_number == WorkOrderRow.number,
                    RevisitRow.round == WorkOrderRow.rework_count,
                ),
            )
            .outerjoin(
                CallRecord,
                and_(WorkOrderRow.call_id != "", CallRecord.uniqueid == WorkOrderRow.call_id),
            )
            .where(
                WorkOrderRow.state.in_([s.value for s in REVISITED_FROM]),
                WorkOrderRow.updated_at >= since,
                RevisitRow.id.is_(None),
            )
            .limit(limit)
        )
        made = 0
        async with self.sessions() as session:
            rows = (await session.execute(missing)).all()
        for order, language in rows:
            why = manual_reason(
                phone=order.caller_phone,
                confidential=order.confidential,
                attributes=dict(order.attributes or {}),
                may_dial=self.may_dial,
            )
            now = self.clock()
            row = RevisitRow(
                order_number=order.number,
                round=order.rework_count,
                state=(RevisitState.MANUAL if why else RevisitState.DUE).value,
                manual_reason=why.value if why else "",
                phone=order.caller_phone,
                language=language or "",
                due_at=first_due(now, self.policy, self.working_day),
                attempts=0,
                owner="",
                satisfaction="",
                result_by="",
                created_at=now,
            )
            try:
                async with self.sessions.begin() as session:
                    session.add(row)
            except IntegrityError:
                continue  # scheduled meanwhile by another engine
            made += 1
            self._changed(order.number, row.state)
            log.info(
                "revisit of work order %s (%s): %s",
                order.number,
                mask_number(order.caller_phone),
                why or f"due {row.due_at.isoformat()}",
            )
        return made

    # -- the dialer's side ---------------------------------------------------------------------
    async def claim(self, owner: str) -> list[Claimed]:
        """Due revisits for this engine to call now, within calling hours and the limit of
        simultaneous calls. Counting the calls in flight and taking the due ones is one
        transaction, serialised between engines (PostgreSQL: an advisory lock; SQLite: its
        one writer, a conflicting engine takes nothing this round); each is taken by a
        conditional UPDATE as well, so only one engine ever places it."""
        now = self.clock()
        if not self.policy.calls or not in_hours(now, self.policy, self.working_day):
            return []
        try:
            return await self._claim(owner, now)
        except OperationalError as exc:  # SQLite: another engine was claiming at that moment
            log.debug("revisit claim skipped this round: %s", exc)
            return []

    async def _claim(self, owner: str, now: datetime) -> list[Claimed]:
        claimed: list[Claimed] = []
        async with self.sessions.begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIMS})
            else:  # take SQLite's write lock first, so the count below cannot go stale
                await session.execute(
                    update(RevisitRow).where(RevisitRow.id == -1).values(owner="")
                )
            busy = await session.scalar(
                select(func.count()).where(RevisitRow.state == RevisitState.DIALING.value)
            )
            others = await self.other_lines(session) if self.other_lines is not None else 0
            slots = self.policy.concurrency - int(busy or 0) - others
            if slots <= 0:
                return []
            rows = list(
                await session.scalars(
                    select(RevisitRow)
                    .where(RevisitRow.state == RevisitState.DUE.value, RevisitRow.due_at <= now)
                    .order_by(RevisitRow.due_at, RevisitRow.id)
                    .limit(slots)
                )
            )
            for row in rows:
                taken = await session.execute(
                    update(RevisitRow)
                    .where(RevisitRow.id == row.id, RevisitRow.state == RevisitState.DUE.value)
                    .values(
                        state=RevisitState.DIALING.value,
                        owner=owner,
                        lease_until=now + self.policy.lease,
                    )
                    .execution_options(synchronize_session=False)
                )
                if taken.rowcount != 1:  # type: ignore[attr-defined]
                    continue  # another engine took it
                channel_id = f"rv-{row.id}-{secrets.token_hex(6)}"
                session.add(
                    RevisitAttemptRow(
                        revisit_id=row.id,
                        channel_id=channel_id,
                        owner=owner,
                        started_at=now,
                        outcome="",
                    )
                )
                claimed.append(
                    Claimed(row.id, channel_id, row.order_number, row.phone, row.language)
                )
        return claimed

    async def recover(self, owner: str, *, at_start: bool = False) -> int:
        """Attempts left in flight by a dead engine (this one, at its start; any, once their
        lease ran out) are recorded as interrupted and their revisits tried again later."""
        now = self.clock()
        stale = RevisitRow.lease_until < now
        if at_start:
            stale = stale | (RevisitRow.owner == owner)
        async with self.sessions() as session:
            channels = list(
                await session.scalars(
                    select(RevisitAttemptRow.channel_id)
                    .join(RevisitRow)
                    .where(
                        RevisitRow.state == RevisitState.DIALING.value,
                        stale,
                        RevisitAttemptRow.outcome == "",
                    )
                )
            )
        for channel_id in channels:
            log.warning("revisit attempt %s was in flight when its engine stopped", channel_id)
            await self.finish(channel_id, Outcome.INTERRUPTED)
        return len(channels)

    async def answered(self, channel_id: str) -> Claimed | None:
        """The citizen answered attempt ``channel_id`` (the route starts): None if unknown or
        already ended."""
        async with self.sessions.begin() as session:
            attempt = await self._attempt(session, channel_id)
            if attempt is None or attempt.outcome:
                return None
            attempt.answered_at = attempt.answered_at or self.clock()
            r = attempt.revisit
            return Claimed(r.id, channel_id, r.order_number, r.phone, r.language)

    async def finish(
        self, channel_id: str, outcome: Outcome, *, unanswered_only: bool = False
    ) -> bool:
        """Record how attempt ``channel_id`` ended, once (a later report of the same end is
        ignored), and move its revisit on: done, due again later, or manual."""
        now = self.clock()
        async with self.sessions.begin() as session:
            attempt = await self._attempt(session, channel_id, lock=True)
            if attempt is None or attempt.outcome:
                return False
            if unanswered_only and attempt.answered_at is not None:
                return False  # the route reports the end of an answered call itself
            attempt.outcome, attempt.ended_at = outcome.value, now
            revisit = attempt.revisit
            if outcome is not Outcome.INTERRUPTED:
                revisit.attempts += 1
            state = after_attempt(revisit.attempts, outcome, self.policy)
            revisit.state, revisit.owner, revisit.lease_until = state.value, "", None
            if state is RevisitState.DUE:
                revisit.due_at = retry_due(now, self.policy, self.working_day)
            elif state is RevisitState.MANUAL:
                revisit.manual_reason = (
                    "no_survey" if outcome is Outcome.NO_SURVEY else "attempts_exhausted"
                )
            elif state is RevisitState.DONE:
                revisit.done_at = now
            number = revisit.order_number
            log.info(
                "revisit of %s, attempt %s: %s (%d attempts) -> %s",
                number,
                channel_id,
                outcome,
                revisit.attempts,
                state,
            )
        self._changed(number, state.value)
        return True

    async def complete(self, channel_id: str, resolved: bool, satisfaction: Satisfaction) -> None:
        """The citizen answered both questions: the result goes on the work order (the work
        orders' revisit rule sends it back for rework when needed), then the attempt ends."""
        async with self.sessions() as session:
            attempt = await self._attempt(session, channel_id)
            if attempt is None:
                raise NotFound(f"no revisit attempt {channel_id}")
            number = attempt.revisit.order_number
        await self.work_orders.record_revisit(
            number, REVISIT_CALL, satisfaction=satisfaction, resolved=resolved, note="revisit call"
        )
        async with self.sessions.begin() as session:
            attempt = await self._attempt(session, channel_id, lock=True)
            assert attempt is not None
            attempt.revisit.resolved = resolved
            attempt.revisit.satisfaction = satisfaction.value
            attempt.revisit.result_by = "call"
        await self.finish(channel_id, Outcome.COMPLETED)

    async def _attempt(
        self, session: AsyncSession, channel_id: str, *, lock: bool = False
    ) -> RevisitAttemptRow | None:
        query = select(RevisitAttemptRow).where(RevisitAttemptRow.channel_id == channel_id)
        if lock:
            query = query.with_for_update()
        attempt = await session.scalar(query)
        if attempt is not None:
            await session.refresh(attempt, ["revisit"])
        return attempt

    # -- staff ----------------------------------------------------------------------------------
    async def record_by_hand(
        self, number: str, actor: Actor, *, resolved: bool, satisfaction: Satisfaction, note: str
    ) -> dict[str, Any]:
        """An operator called the citizen (the manual list) and records the result."""
        async with self.sessions() as session:
            row = await self._latest(session, number)
            if row.state in (RevisitState.DONE, RevisitState.DIALING):
                raise InvalidInput(f"the revisit of {number} is {row.state}")
        await self.work_orders.record_revisit(
            number, actor, satisfaction=satisfaction, resolved=resolved, note=note or "by hand"
        )
        async with self.sessions.begin() as session:
            row = await self._latest(session, number)
            row.state, row.done_at = RevisitState.DONE.value, self.clock()
            row.resolved, row.satisfaction, row.result_by = resolved, satisfaction.value, actor.name
        self._changed(number, RevisitState.DONE.value)
        return await self.show(number)

    async def not_needed(self, channel_id: str, state: str) -> None:
        """The order left the states a revisit is for before its call (archived, say):
        the attempt ends unplaced and the revisit is closed without a result."""
        await self.finish(channel_id, Outcome.INTERRUPTED)
        async with self.sessions.begin() as session:
            attempt = await self._attempt(session, channel_id, lock=True)
            if attempt is not None and attempt.revisit.state == RevisitState.DUE.value:
                attempt.revisit.state = RevisitState.DONE.value
                attempt.revisit.result_by = f"not needed: order {state}"[:64]
                attempt.revisit.done_at = self.clock()
        log.info("revisit attempt %s not placed: the order is %s", channel_id, state)

    async def run_now(self) -> int:
        """Every due revisit due now (calling hours and the line limit still apply)."""
        async with self.sessions.begin() as session:
            moved = await session.execute(
                update(RevisitRow)
                .where(RevisitRow.state == RevisitState.DUE.value)
                .values(due_at=self.clock())
            )
            return int(moved.rowcount)  # type: ignore[attr-defined]

    def next_open(self) -> datetime:
        return open_at(self.clock(), self.policy, self.working_day)
