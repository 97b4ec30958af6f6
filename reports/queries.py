"""The report's SQL: every figure is counted by the database from the raw rows, grouped by
period (a CASE over the periods' bounds, portable to SQLite and PostgreSQL), on SQLAlchemy
Core. Each query returns plain rows; :mod:`reports.figures` turns them into the report.

What counts where:

- calls in: call records (every call that reached the hotline) by the time the call started;
- the queue's figures by call (the ACD's event log, ``queueing.tables``), in the period of
  the call's first ACD event: answered (a ``connect``, not undone by an ``unreached``: a
  callback whose seat answered but whose citizen did not), its wait (the connect's wait),
  abandoned (an ``abandon`` and no connect) and how long it had waited, talk time (the
  ``complete`` events) and the seat that answered (the first ``connect``'s: a call put
  through to another seat connects again);
- work orders by the time they were created; revisits by the time they were scheduled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Float,
    Subquery,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from calls.models import CallRecord
from queueing.tables import AcdEventRow
from reports.periods import Span
from revisit.models import RevisitRow
from workorders.models import WorkOrderEventRow, WorkOrderRow

SATISFIED = ("very_satisfied", "satisfied")  # workorders.orders.Satisfaction, the good ones

Rows = list[Any]


def period_of(column: Any, ends: Sequence[Any]) -> ColumnElement[Any]:
    """The index of the period ``column`` falls in (the periods are consecutive; rows before
    the first or after the last are filtered out by the caller)."""
    return case(*[(column < end, literal(i)) for i, end in enumerate(ends)], else_=None)


def _within(column: Any, spans: Sequence[Span], epoch: bool = False) -> ColumnElement[bool]:
    lo, hi = spans[0].start, spans[-1].end
    if epoch:
        return and_(column >= lo.timestamp(), column < hi.timestamp())
    return and_(column >= lo, column < hi)


def _ends(spans: Sequence[Span], epoch: bool = False) -> list[Any]:
    return [s.end.timestamp() if epoch else s.end for s in spans]


async def calls_in(session: AsyncSession, spans: Sequence[Span]) -> Rows:
    """(period, calls) from the call records."""
    inner = (
        select(period_of(CallRecord.started_at, _ends(spans)).label("p"))
        .where(_within(CallRecord.started_at, spans))
        .subquery()
    )
    return list((await session.execute(select(inner.c.p, func.count()).group_by(inner.c.p))).all())


def acd_calls() -> Subquery:
    """One row per call in the ACD's event log: when it began, answered or abandoned, the
    waits in ms, talk time in ms, how many talks completed, the seat that answered."""
    e = AcdEventRow
    ms = cast(e.data, Float)

    def on(kind: str, value: Any, else_: Any = None) -> ColumnElement[Any]:
        return case((e.type == kind, value), else_=else_)

    return (
        select(
            e.call_id,
            func.min(e.at).label("began"),
            # a callback's seat that connected but whose citizen was not reached: not answered
            case(
                (func.sum(on("connect", 1, 0)) > func.sum(on("unreached", 1, 0)), 1), else_=0
            ).label("answered"),
            func.max(on("connect", ms)).label("wait_ms"),
            func.max(on("abandon", 1, 0)).label("abandon"),
            func.max(on("abandon", ms)).label("abandon_ms"),
            func.sum(on("complete", ms, 0)).label("talk_ms"),
            func.sum(on("complete", 1, 0)).label("talks"),
            _first_seat(e).label("seat"),
        )
        .where(e.type != "seat", e.call_id != "")
        .group_by(e.call_id)
        .subquery()
    )


def _first_seat(e: type[AcdEventRow]) -> ColumnElement[Any]:
    """The seat of the call's first ``connect``: the one that answered it (a seat it was put
    through to later connects again)."""
    later = aliased(AcdEventRow)
    return (
        select(later.seat)
        .where(later.call_id == e.call_id, later.type == "connect")
        .order_by(later.stream_ms, later.stream_seq)
        .limit(1)
        .scalar_subquery()
    )


def _queue_sums(c: Any, sl_ms: float) -> list[ColumnElement[Any]]:
    answered = c.answered == 1
    abandoned = and_(c.answered == 0, c.abandon == 1)
    return [
        func.count().label("offered"),
        func.sum(c.answered).label("answered"),
        func.sum(case((and_(answered, c.wait_ms <= sl_ms), 1), else_=0)).label("within_sl"),
        func.sum(case((answered, c.wait_ms), else_=0)).label("wait_ms"),
        func.sum(case((abandoned, 1), else_=0)).label("abandoned"),
        func.sum(case((abandoned, c.abandon_ms), else_=0)).label("abandon_ms"),
        func.max(case((abandoned, c.abandon_ms), else_=None)).label("abandon_max_ms"),
        func.sum(c.talk_ms).label("talk_ms"),
        func.sum(c.talks).label("talks"),
    ]


async def queue_by_period(session: AsyncSession, spans: Sequence[Span], sl_s: float) -> Rows:
    calls = acd_calls()
    inner = (
        select(period_of(calls.c.began, _ends(spans, epoch=True)).label("p"), calls)
        .where(_within(calls.c.began, spans, epoch=True))
        .subquery()
    )
    query = select(inner.c.p, *_queue_sums(inner.c, sl_s * 1000)).group_by(inner.c.p)
    return list((await session.execute(query)).all())


async def queue_by_seat(session: AsyncSession, spans: Sequence[Span], sl_s: float) -> Rows:
    calls = acd_calls()
    inner = select(calls).where(_within(calls.c.began, spans, epoch=True), calls.c.answered == 1)
    sub = inner.subquery()
    query = select(sub.c.seat, *_queue_sums(sub.c, sl_s * 1000)).group_by(sub.c.seat)
    return list((await session.execute(query)).all())


def _done(action: str) -> ColumnElement[bool]:
    ev = WorkOrderEventRow
    return exists().where(ev.work_order_id == WorkOrderRow.id, ev.action == action)


def orders() -> Subquery:
    """One row per work order with what the report counts about it."""
    w, ev = WorkOrderRow, WorkOrderEventRow
    last_reply = (
        select(func.max(ev.at))
        .where(ev.work_order_id == w.id, ev.action == "reply")
        .scalar_subquery()
    )
    directly = _done("answer")
    dispatched = w.dispatched_at.is_not(None)
    return select(
        w.created_at,
        w.channel,
        w.category,
        w.lead_department,
        w.location_text,
        w.seat,
        case((w.state == "merged", 1), else_=0).label("merged"),
        case((directly, 1), else_=0).label("directly"),
        case((dispatched, 1), else_=0).label("dispatched"),
        case((last_reply.is_not(None), 1), else_=0).label("replied"),
        case(
            (and_(last_reply.is_not(None), w.due_at.is_not(None), last_reply <= w.due_at), 1),
            else_=0,
        ).label("on_time"),  # fmt: skip
        case(
            (and_(directly, ~dispatched, w.rework_count == 0, w.state != "merged"), 1), else_=0
        ).label("first_call"),  # fmt: skip
        case((w.rework_count > 0, 1), else_=0).label("reworked"),
        case((w.extension_days > 0, 1), else_=0).label("extended"),
    ).subquery()


ORDER_SUMS = ("merged", "directly", "dispatched", "replied", "on_time", "first_call", "reworked",
              "extended")  # fmt: skip


def _orders_in(spans: Sequence[Span]) -> Any:
    rows = orders()
    return (
        select(period_of(rows.c.created_at, _ends(spans)).label("p"), rows)
        .where(_within(rows.c.created_at, spans))
        .subquery()
    )


async def orders_by_period(session: AsyncSession, spans: Sequence[Span]) -> Rows:
    o = _orders_in(spans)
    sums = [func.sum(getattr(o.c, name)).label(name) for name in ORDER_SUMS]
    query = select(o.c.p, func.count().label("orders"), *sums).group_by(o.c.p)
    return list((await session.execute(query)).all())


async def orders_by(session: AsyncSession, spans: Sequence[Span], column: str) -> Rows:
    """(period, value of ``column``, orders)."""
    o = _orders_in(spans)
    key = getattr(o.c, column)
    query = select(o.c.p, key, func.count()).group_by(o.c.p, key)
    return list((await session.execute(query)).all())


async def orders_by_seat(session: AsyncSession, spans: Sequence[Span]) -> Rows:
    o = _orders_in(spans)
    query = select(o.c.seat, func.count().label("orders"), func.sum(o.c.directly).label("directly"),
                   func.sum(o.c.dispatched).label("dispatched")).group_by(o.c.seat)  # fmt: skip
    return list((await session.execute(query.where(o.c.seat != ""))).all())


async def revisits_by_period(session: AsyncSession, spans: Sequence[Span]) -> Rows:
    r = RevisitRow
    reached = r.resolved.is_not(None)
    inner = (
        select(
            period_of(r.created_at, _ends(spans)).label("p"),
            case((reached, 1), else_=0).label("reached"),
            case((and_(reached, r.satisfaction.in_(SATISFIED)), 1), else_=0).label("satisfied"),
            case((r.resolved.is_(True), 1), else_=0).label("resolved"),
        )
        .where(_within(r.created_at, spans))
        .subquery()
    )
    c = inner.c
    query = select(c.p, func.count().label("revisits"), func.sum(c.reached).label("reached"),
                   func.sum(c.satisfied).label("satisfied"),
                   func.sum(c.resolved).label("resolved")).group_by(c.p)  # fmt: skip
    return list((await session.execute(query)).all())
