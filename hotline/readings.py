"""The hotline's figures at one moment, read from their owners when asked (nothing counted
twice): the ACD's snapshot and today's queue figures (:mod:`queueing.snapshot`,
:mod:`queueing.stats`), today's calls by route (:mod:`calls.store`), the recordings waiting
for transcription (:mod:`intake.store`), the work orders by state and near or past their
time limit (:mod:`workorders.store`). ``/metrics`` (:mod:`web.metrics`) and the supervisor's
wallboard (:mod:`web.wallboard`) both read them.

"Today" starts at midnight in the hotline's time zone: the one of the time limits
(``workorders/timelimits.toml``), used for every time a supervisor sees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calls.store import CallStore
from intake.store import RecordingStore
from queueing.acd import Acd
from queueing.models import AcdSnapshot
from queueing.stats import queue_figures
from workorders.orders import WorkOrder
from workorders.service import WorkOrderService
from workorders.states import SUPERVISED

TRANSCRIPTION_BACKLOG = "recorded"  # a recording's status while it waits for its transcript


@dataclass(frozen=True)
class Readings:
    at: float  # epoch seconds
    timezone: ZoneInfo
    acd: AcdSnapshot
    figures: Mapping[str, Any]  # queueing.stats.queue_figures since local midnight
    seat_names: Mapping[str, str]  # extension -> name, from the seats file
    calls: Mapping[tuple[str, str], int]  # (route, outcome) -> calls started today
    recordings: Mapping[str, int]  # status -> recordings
    orders_by_state: Mapping[str, int]
    overdue: int
    near_deadline: int  # within the urge window, not yet overdue
    deadlines: tuple[WorkOrder, ...]  # near or past their deadline, earliest first

    @property
    def transcription_backlog(self) -> int:
        return self.recordings.get(TRANSCRIPTION_BACKLOG, 0)


def local_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    return now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class ReadingsSource:
    """Reads the figures, one read at a time: a request waits for the read under way and
    takes the next one, which began after it was made, unless another waiter began it
    already (a burst of ACD events on many open pages costs two reads, never a stale one).
    After each read it rests as long as the read took, so reading takes at most half the
    engine's time however often pages ask."""

    acd: Acd
    sessions: async_sessionmaker[AsyncSession]  # the ACD event log's (queueing.stats)
    calls: CallStore
    recordings: RecordingStore
    work_orders: WorkOrderService
    service_level_s: float
    clock: Callable[[], float] = time.time
    deadline_rows: int = 50
    _last: Readings | None = field(default=None, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _rest_until: float = field(default=0.0, init=False, repr=False)

    async def read(self) -> Readings:
        asked = self.clock()
        async with self._lock:
            last = self._last
            if last is None or last.at < asked:  # read before the request: may miss its news
                # rest as long as the last read took: reads take at most half of the time
                # (a big city's day of figures takes seconds: bench/wallboard_read.py)
                await asyncio.sleep(max(0.0, self._rest_until - self.clock()))
                started = self.clock()
                last = self._last = await self._read()
                self._rest_until = 2 * self.clock() - started
            return last

    async def _read(self) -> Readings:
        now_s = self.clock()
        now = datetime.fromtimestamp(now_s, UTC)
        limits = self.work_orders.limits
        midnight = local_midnight(now, limits.timezone)
        snapshot = await self.acd.snapshot(now_s)
        figures = await queue_figures(self.sessions, snapshot, since=midnight.timestamp(),
                                      service_level_s=self.service_level_s,
                                      count_stored=False)  # fmt: skip
        overdue, _ = await self.work_orders.due_before(now, SUPERVISED, limit=0)
        near, deadlines = await self.work_orders.due_before(
            now + limits.urge_before, SUPERVISED, limit=self.deadline_rows
        )
        return Readings(
            at=now_s,
            timezone=limits.timezone,
            acd=snapshot,
            figures=figures,
            seat_names={s.extension: s.name for s in self.acd.seats.seats},
            calls=await self.calls.count_by_route(midnight),
            recordings=await self.recordings.count_by_status(),
            orders_by_state=await self.work_orders.count_by_state(),
            overdue=overdue,
            near_deadline=near - overdue,
            deadlines=tuple(deadlines),
        )
