"""Supervision (督办): urge orders near their deadline, escalate overdue ones.

Each order is urged once and escalated once per time limit (a new limit after dispatch,
extension or rework starts over); every step lands in the order's history.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from workorders.errors import WorkOrderError
from workorders.orders import Actor, Role
from workorders.service import WorkOrderService
from workorders.states import SUPERVISED

log = logging.getLogger(__name__)

SUPERVISOR_JOB = Actor("supervision", Role.SYSTEM)
URGED, ESCALATED = 1, 2


@dataclass(frozen=True)
class SupervisionReport:
    urged: tuple[str, ...] = ()
    escalated: tuple[str, ...] = ()


async def supervise(service: WorkOrderService, actor: Actor = SUPERVISOR_JOB) -> SupervisionReport:
    """One pass over the orders departments still owe an answer on."""
    now = service.clock()
    urged: list[str] = []
    escalated: list[str] = []
    for order in await service.find(states=SUPERVISED, limit=100_000):
        if order.due_at is None:
            continue
        if order.due_at < now and order.supervision_level < ESCALATED:
            level, note, bucket = ESCALATED, "overdue: escalated to the supervisor", escalated
        elif order.due_at - now <= service.limits.urge_before and order.supervision_level < URGED:
            due = service.limits.format_day(order.due_at)
            level, note, bucket = URGED, f"due {due}: urged {order.lead_department}", urged
        else:
            continue
        try:
            await service.supervise_one(order.number, actor, level, note)
        except WorkOrderError as exc:  # replied or returned since the query: nothing to urge
            log.debug("work order %s left alone by supervision: %s", order.number, exc)
            continue
        bucket.append(order.number)
    if urged or escalated:
        log.info("supervision urged %s and escalated %s work orders", len(urged), len(escalated))
    return SupervisionReport(tuple(urged), tuple(escalated))


async def run_supervision(
    service: WorkOrderService, stop: asyncio.Event, interval_s: float = 300.0
) -> None:
    """Supervise every ``interval_s`` until ``stop`` is set; a failed pass is logged, not fatal."""
    while not stop.is_set():
        try:
            await supervise(service)
        except Exception:
            log.exception("supervision pass failed; trying again in %s s", interval_s)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            pass
