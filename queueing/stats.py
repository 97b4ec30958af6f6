"""Live statistics from the ACD's own event log, kept in SQL like Asterisk's queue_log.

:class:`EventLogWriter` tails the Redis stream (:mod:`queueing.events`) into the
``acd_events`` table, resuming after the last stored entry. :func:`queue_figures` computes,
per queue and overall, over a period: calls offered, answered, abandoned, service level
(answered within ``service_level_s`` over answered + abandoned), ASA (average wait of the
answered), AHT (average talk time of the completed), answer rate (answered over answered +
abandoned); callback attempts whose citizen was not reached (``unreached``: the seat
answered, the citizen did not) count as none of these; the live part (waiting, longest wait,
seats by state) comes from the ACD's snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from queueing.events import AcdEvent, read_events
from queueing.models import AcdSnapshot
from queueing.tables import AcdEventRow

log = logging.getLogger(__name__)


def _split(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


class EventLogWriter:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        sessions: async_sessionmaker[AsyncSession],
        *,
        block_ms: int = 500,
        timeout_s: float = 5.0,
    ) -> None:
        self.redis, self.prefix, self.sessions = redis, prefix, sessions
        self.block_ms, self.timeout_s = block_ms, timeout_s
        self.last_id = "0-0"
        self._lock = asyncio.Lock()  # the tailing loop and catch_up never store one event twice

    async def _resume_point(self) -> str:
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(AcdEventRow.stream_ms, AcdEventRow.stream_seq)
                    .order_by(AcdEventRow.stream_ms.desc(), AcdEventRow.stream_seq.desc())
                    .limit(1)
                )
            ).first()
        return f"{row[0]}-{row[1]}" if row else "0-0"

    async def _store_new(self, events: list[AcdEvent]) -> int:
        async with self._lock:
            last = _split(self.last_id)
            new = [e for e in events if _split(e.id) > last]
            if new:
                await self.store(new)
                self.last_id = new[-1].id
            return len(new)

    async def store(self, events: list[AcdEvent]) -> None:
        async with self.sessions() as session, session.begin():
            for e in events:
                ms, seq = _split(e.id)
                session.add(
                    AcdEventRow(
                        stream_ms=ms,
                        stream_seq=seq,
                        type=e.type,
                        at=e.at,
                        call_id=e.call_id,
                        seat=e.seat,
                        skill=e.skill,
                        data=e.data[:128],
                    )  # fmt: skip
                )

    async def catch_up(self) -> int:
        """Store every event not stored yet; returns how many."""
        events = await read_events(self.redis, self.prefix, self.last_id, count=1000,
                                   timeout_s=self.timeout_s)  # fmt: skip
        return await self._store_new(events)

    async def run(self, stopping: asyncio.Event) -> None:
        failing = False
        while not stopping.is_set():
            try:
                if self.last_id == "0-0":
                    self.last_id = await self._resume_point()
                events = await read_events(
                    self.redis, self.prefix, self.last_id, count=1000,
                    block_ms=self.block_ms, timeout_s=self.timeout_s,
                )  # fmt: skip
                await self._store_new(events)
                failing = False
            except IntegrityError:
                log.warning("ACD events already stored (another writer?); resuming after them")
                self.last_id = await self._resume_point()
            except (RedisError, SQLAlchemyError, OSError, TimeoutError) as exc:
                if not failing:
                    log.warning("ACD event log not stored (%s); retrying", exc)
                failing = True
                await asyncio.sleep(1.0)


@dataclass(frozen=True)
class QueueFigures:
    queue: str
    waiting: int
    longest_wait_s: float
    callbacks_waiting: int
    callbacks_unreached: int  # callback attempts the citizen did not answer
    offered: int
    answered: int
    abandoned: int
    answered_within_sl: int
    service_level: float | None  # 0..1
    asa_s: float | None
    aht_s: float | None
    answer_rate: float | None  # 0..1


FIGURE_EVENTS = ("enter", "connect", "abandon", "complete", "unreached")  # what _figures counts


def _figures(
    queue: str, rows: list[Any], sl_s: float, live: tuple[int, float, int]
) -> QueueFigures:
    entered: set[str] = set()
    waits: dict[str, int] = {}  # a call's first connect: its wait (a seat it was put
    # through to later connects again with the call's own wait, or 0 when reached by name)
    gave_up: set[str] = set()
    talks: list[int] = []
    unreached = 0
    for r in rows:  # one pass: a big city's day is ~100,000 events
        kind = r.type
        if kind == "enter":
            entered.add(r.call_id)
        elif kind == "connect":
            waits.setdefault(r.call_id, int(float(r.data or 0)))
        elif kind == "abandon":
            gave_up.add(r.call_id)
        elif kind == "complete":
            talks.append(int(float(r.data or 0)))
        elif kind == "unreached":  # its seat answered (connect), the citizen did not
            waits.pop(r.call_id, None)
            unreached += 1
    abandoned = gave_up - set(waits)
    answered = len(waits)
    within = sum(1 for ms in waits.values() if ms <= sl_s * 1000)
    closed = answered + len(abandoned)
    return QueueFigures(
        queue=queue,
        waiting=live[0],
        longest_wait_s=round(live[1], 1),
        callbacks_waiting=live[2],
        callbacks_unreached=unreached,
        offered=len(entered),
        answered=answered,
        abandoned=len(abandoned),
        answered_within_sl=within,
        service_level=round(within / closed, 4) if closed else None,
        asa_s=round(sum(waits.values()) / answered / 1000, 2) if answered else None,
        aht_s=round(sum(talks) / len(talks) / 1000, 2) if talks else None,
        answer_rate=round(answered / closed, 4) if closed else None,
    )


async def queue_figures(
    sessions: async_sessionmaker[AsyncSession],
    snapshot: AcdSnapshot,
    *,
    since: float | None = None,
    service_level_s: float = 15.0,
    count_stored: bool = True,
) -> dict[str, Any]:
    """Per-queue and overall figures since ``since`` (default: the last 24 hours);
    ``count_stored``: also count every event stored, of all time (a scan of the table)."""
    since = time.time() - 24 * 3600 if since is None else since
    async with sessions() as session:
        rows = (
            await session.execute(
                select(
                    AcdEventRow.type,
                    AcdEventRow.call_id,
                    AcdEventRow.skill,
                    AcdEventRow.data,
                    AcdEventRow.seat,
                )  # fmt: skip
                .where(AcdEventRow.at >= since, AcdEventRow.type.in_(FIGURE_EVENTS))
                .order_by(AcdEventRow.id)
            )
        ).all()
        stored = None
        if count_stored:
            stored = (await session.execute(select(func.count(AcdEventRow.id)))).scalar_one()
    live = {q.skill: (q.waiting, q.longest_wait_s, q.callbacks) for q in snapshot.queues}
    by_skill: dict[str, list[Any]] = {skill: [] for skill in live}
    for r in rows:  # one pass, not one per queue (a big city's day is ~100,000 events)
        if r.skill:
            by_skill.setdefault(r.skill, []).append(r)
    queues = [
        _figures(s, by_skill[s], service_level_s, live.get(s, (0, 0.0, 0)))
        for s in sorted(by_skill)
    ]
    overall = _figures(
        "all", list(rows), service_level_s,
        (snapshot.waiting, snapshot.longest_wait_s, sum(q.callbacks for q in snapshot.queues)),
    )  # fmt: skip
    return {
        "at": snapshot.at,
        "since": since,
        "service_level_s": service_level_s,
        "overall": asdict(overall),
        "queues": [asdict(q) for q in queues],
        "seats_by_state": dict(snapshot.seats_by_state),
        "seats": [
            {
                "extension": s.extension,
                "state": s.state.value,
                "reason": s.reason,
                "since": s.since,
            }  # fmt: skip
            for s in snapshot.seats
        ],
        "events_stored": stored,
    }
