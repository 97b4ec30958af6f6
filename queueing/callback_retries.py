"""Queue callbacks on the one outbound dialer: every call to the citizen recorded in SQL,
retried, then listed for supervisors.

The callback route (:mod:`queueing.callback`) tells the schedule when the seat's channel
starts dialling the citizen (:meth:`CallbackSchedule.dialing`: a line of the outbound
dialer in use, counted in its limit with the revisit calls), and how it ended. A citizen who
did not answer (busy, no answer, failed) is due again ``interval_s`` later (default 10
minutes), up to ``retries`` times (default 2); then the callback is listed as failed
(``GET /api/callbacks/failed``). The outbound dialer's loop (:mod:`revisit.dialer`) books
each due retry as a new callback in its skill's queue (``<call id>-r<n>``), which rings a
seat first like the first one; a conditional UPDATE decides which engine books it, so it is
booked once. A citizen's leg left "dialing" by a dead engine is due again after ``lease_s``.
Callbacks keep their own rules: no calling hours (the citizen asked to be called now).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calls.callerid import mask_number
from db.base import utcnow
from queueing.acd import Acd
from queueing.models import AcdError
from queueing.tables import CallbackRow

log = logging.getLogger(__name__)

_RETRY = re.compile(r"^(?P<base>.+)-r(?P<n>\d+)$")


class CallbackState(StrEnum):
    DIALING = "dialing"  # the seat's channel is dialling the citizen: an outbound line in use
    DUE = "due"  # not answered: called again at due_at
    BOOKED = "booked"  # a retry waits in its queue for a seat
    DONE = "done"  # the citizen answered
    FAILED = "failed"  # not answered after every retry: on the supervisors' list


@dataclass(frozen=True)
class CallbackRetryOptions:
    retries: int = 2
    interval_s: float = 600.0
    ring_s: int = 30  # the citizen's phone rings this long, then the call counts as not answered
    lease_s: float = 120.0  # a citizen's leg "dialing" longer than this was left by a dead engine

    def __post_init__(self) -> None:
        if not 0 < self.ring_s < self.lease_s:
            raise ValueError(f"callback_ring_s {self.ring_s}: from 1 to {self.lease_s:.0f} s")


def retry_of(call_id: str) -> tuple[str, int]:
    """The first callback's id and how many retries ``call_id`` is (0: the first call)."""
    match = _RETRY.match(call_id)
    return (match["base"], int(match["n"])) if match else (call_id, 0)


def after_call(attempts: int, status: str, options: CallbackRetryOptions) -> CallbackState:
    """Where a callback goes after its ``attempts``-th call to the citizen ended ``status``."""
    if status == "ANSWER":
        return CallbackState.DONE
    return CallbackState.DUE if attempts <= options.retries else CallbackState.FAILED


async def lines_in_use(session: AsyncSession) -> int:
    """Citizens' legs of callbacks ringing now: lines of the outbound dialer's limit."""
    count = await session.scalar(
        select(func.count()).where(CallbackRow.state == CallbackState.DIALING.value)
    )
    return int(count or 0)


class CallbackSchedule:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        acd: Acd,
        kick: Callable[[], None],
        options: CallbackRetryOptions,
        owner: str,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions, self.acd, self.kick, self.options = sessions, acd, kick, options
        self.owner, self.clock = owner, clock

    async def dialing(self, call_id: str, number: str, skill: str) -> None:
        """The seat's channel starts dialling the citizen of callback ``call_id``."""
        base, _ = retry_of(call_id)
        values = {"state": CallbackState.DIALING.value, "owner": self.owner,
                  "updated_at": self.clock()}  # fmt: skip
        try:
            async with self.sessions.begin() as session:
                moved = await session.execute(
                    update(CallbackRow).where(CallbackRow.call_id == base).values(**values)
                )
                if moved.rowcount == 0:  # type: ignore[attr-defined]
                    session.add(CallbackRow(call_id=base, number=number, skill=skill,
                                            attempts=0, last_status="", **values))  # fmt: skip
        except IntegrityError:
            pass  # two reports of one first call: the row is there
        except (SQLAlchemyError, OSError) as exc:
            log.error("callback %s: its call not recorded (%s)", base, exc)

    async def ended(self, call_id: str, number: str, status: str) -> CallbackState | None:
        """The call to the citizen of callback ``call_id`` ended with DIALSTATUS ``status``:
        done, due again, or failed (None: not recorded, the database failed)."""
        base, _ = retry_of(call_id)
        who = f"callback {base} to {mask_number(number)}"
        now = self.clock()
        try:
            async with self.sessions.begin() as session:
                row = await session.scalar(
                    select(CallbackRow).where(CallbackRow.call_id == base).with_for_update()
                )
                if row is None:
                    log.error("%s: ended (%s) but never recorded as dialling", who, status)
                    return None
                row.attempts += 1
                state = after_call(row.attempts, status, self.options)
                row.state, row.last_status, row.owner, row.updated_at = state.value, status, "", now
                if state is CallbackState.DUE:
                    row.due_at = now + timedelta(seconds=self.options.interval_s)
                attempts = row.attempts
        except (SQLAlchemyError, OSError) as exc:
            log.error("%s: ended (%s), and nothing recorded (%s)", who, status, exc)
            return None
        if state is CallbackState.DUE:
            log.info("%s: not answered (%s); tried again in %.0f s (retry %d of %d)", who,
                     status, self.options.interval_s, attempts, self.options.retries)  # fmt: skip
        elif state is CallbackState.FAILED:
            log.warning("%s: not answered %d times (%s); listed as a failed callback", who,
                        attempts, status)  # fmt: skip
        return state

    async def book_due(self) -> list[str]:
        """Book every retry that is due as a callback in its queue; returns their ids. Legs
        a dead engine left dialling are due again first."""
        now = self.clock()
        stale = (CallbackRow.state == CallbackState.DIALING.value) & (
            CallbackRow.updated_at < now - timedelta(seconds=self.options.lease_s)
        )
        async with self.sessions.begin() as session:  # counted as a call not answered
            for state, which in ((CallbackState.DUE, CallbackRow.attempts < self.options.retries),
                                 (CallbackState.FAILED, CallbackRow.attempts >= 0)):  # fmt: skip
                await session.execute(
                    update(CallbackRow).where(stale, which)
                    .values(state=state.value, due_at=now, owner="", updated_at=now,
                            attempts=CallbackRow.attempts + 1, last_status="INTERRUPTED")
                )  # fmt: skip
            due = list(
                await session.scalars(
                    select(CallbackRow)
                    .where(CallbackRow.state == CallbackState.DUE.value, CallbackRow.due_at <= now)
                    .order_by(CallbackRow.due_at)
                    .limit(50)
                )
            )
        booked = []
        for row in due:
            async with self.sessions.begin() as session:
                taken = await session.execute(
                    update(CallbackRow)
                    .where(CallbackRow.id == row.id, CallbackRow.state == CallbackState.DUE.value)
                    .values(state=CallbackState.BOOKED.value, updated_at=now)
                )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another engine booked it
            call_id = f"{row.call_id}-r{row.attempts}"
            try:
                await self.acd.enqueue(call_id, row.skill, caller=row.number)
                await self.acd.to_callback(call_id, row.number)
            except (AcdError, RedisError, OSError, TimeoutError) as exc:
                log.error("callback retry %s not booked (%s); tried again later", call_id, exc)
                async with self.sessions.begin() as session:
                    await session.execute(
                        update(CallbackRow).where(CallbackRow.id == row.id)
                        .values(state=CallbackState.DUE.value)
                    )  # fmt: skip
                continue
            booked.append(call_id)
        if booked:
            self.kick()
        return booked

    async def failed(self) -> list[dict[str, Any]]:
        """The failed callbacks, masked numbers, newest first."""
        async with self.sessions() as session:
            rows = list(
                await session.scalars(
                    select(CallbackRow)
                    .where(CallbackRow.state == CallbackState.FAILED.value)
                    .order_by(CallbackRow.updated_at.desc())
                    .limit(500)
                )
            )
        return [
            {
                "call_id": r.call_id,
                "number": mask_number(r.number),
                "skill": r.skill,
                "attempts": r.attempts,
                "last_status": r.last_status,
                "at": r.updated_at.isoformat(),
            }  # fmt: skip
            for r in rows
        ]


SCHEDULE: web.AppKey[CallbackSchedule] = web.AppKey("callback_schedule")


async def get_failed(request: web.Request) -> web.Response:
    return web.json_response({"failed": await request.app[SCHEDULE].failed()})


def add_routes(app: web.Application, schedule: CallbackSchedule) -> None:
    app[SCHEDULE] = schedule
    app.router.add_get("/api/callbacks/failed", get_failed)
