"""The work-order service against real SQL: SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sql_databases import KINDS, fresh_database
from sqlalchemy.ext.asyncio import AsyncEngine

from db.base import Base
from hotline.database import make_sessions
from workorders.dispatch import DispatchRules
from workorders.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from workorders.models import TABLES
from workorders.orders import Actor, NewWorkOrder, Role, Satisfaction
from workorders.service import PhoneStatus, WorkOrderService
from workorders.states import State
from workorders.supervision import SupervisionReport, supervise
from workorders.timelimits import TimeLimits

OPERATOR = Actor("王敏", Role.OPERATOR)
SUPERVISOR = Actor("李强", Role.SUPERVISOR)
YANTA = Actor("雁塔区值班员", Role.DEPARTMENT, "雁塔区人民政府")
WATER = Actor("水务值班员", Role.DEPARTMENT, "市水务集团")
NOISE = "我要投诉，小寨附近的工地晚上施工噪音太吵了，我家住在长安南路88号"


class Clock:
    """A settable clock so time limits and supervision are deterministic."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=KINDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with fresh_database(request.param, tmp_path) as engine:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all, tables=TABLES)
        yield engine


@pytest.fixture
def clock() -> Clock:
    # Monday 23 November 2026, 10:00 in Beijing.
    return Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))


@pytest.fixture
def service(engine: AsyncEngine, clock: Clock) -> WorkOrderService:
    return WorkOrderService(
        make_sessions(engine), DispatchRules.load(), TimeLimits.load(), clock=clock
    )


async def test_call_draft_is_numbered_and_suggested(service: WorkOrderService) -> None:
    order = await service.draft_from_call(
        "13800138000", datetime(2026, 11, 23, 1, 55, tzinfo=UTC), NOISE, "recordings/c1.wav", "c1"
    )
    assert order.number == "20261123000001"
    assert order.channel == "phone" and order.caller_phone == "13800138000"
    assert order.category == "complaint" and order.subject == "噪音扰民"
    assert order.location_text == "长安南路88号"
    assert order.lead_department == "雁塔区人民政府"
    assert order.assisting_departments == ("市生态环境局",)
    assert order.transcript == NOISE and order.recording_path == "recordings/c1.wav"
    assert order.state is State.REGISTERED
    assert [h.action for h in order.history] == ["create"]
    second = await service.create(
        NewWorkOrder(channel="web", description="请问公积金怎么提取"), OPERATOR
    )
    assert second.number == "20261123000002"


async def test_concurrent_numbers_are_unique(service: WorkOrderService) -> None:
    orders = await asyncio.gather(
        *(
            service.create(NewWorkOrder(channel="web", description="咨询"), OPERATOR)
            for _ in range(8)
        )
    )
    assert len({o.number for o in orders}) == 8


async def test_full_loop_with_history(service: WorkOrderService, clock: Clock) -> None:
    order = await service.create(NewWorkOrder(channel="phone", description=NOISE), OPERATOR)
    n = order.number
    order = await service.dispatch(n, OPERATOR)
    # Complaint: 5 working days from Monday 23 November → Monday 30 November, end of day.
    assert order.state is State.DISPATCHED
    assert order.due_at == datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC)
    assert (await service.sign(n, YANTA)).state is State.SIGNED
    assert (await service.start(n, YANTA)).state is State.IN_PROGRESS
    order = await service.request_extension(n, YANTA, days=3, reason="需协调施工方")
    assert order.state is State.EXTENSION_REQUESTED
    order = await service.approve_extension(n, SUPERVISOR)
    assert order.due_at == datetime(2026, 12, 3, 15, 59, 59, tzinfo=UTC)
    assert order.extension_days == 3
    order = await service.reply(n, YANTA, "已责令施工方夜间停工")
    assert (await service.review(n, OPERATOR, passed=True)).state is State.REVIEWED
    order = await service.record_revisit(
        n, Actor("revisit", Role.SYSTEM), satisfaction=Satisfaction.SATISFIED, resolved=True
    )
    assert order.state is State.REVISITED and order.satisfaction == "satisfied"
    order = await service.archive(n, OPERATOR)
    assert order.state is State.ARCHIVED
    actions = [h.action for h in order.history]
    assert actions == [
        "create", "dispatch", "sign", "start", "request_extension", "approve_extension",
        "reply", "review", "revisit", "archive",
    ]  # fmt: skip
    assert order.history[2].actor == "雁塔区值班员" and order.history[2].role == "department"
    assert order.history[2].from_state == "dispatched" and order.history[2].to_state == "signed"
    assert await service.phone_status(n) == PhoneStatus(State.ARCHIVED, None, None)


async def test_return_reassign_and_rework(service: WorkOrderService) -> None:
    n = (await service.create(NewWorkOrder(channel="phone", description=NOISE), OPERATOR)).number
    await service.dispatch(n, OPERATOR)
    with pytest.raises(InvalidInput):
        await service.return_order(n, YANTA, " ")
    order = await service.return_order(n, YANTA, "属供水问题")
    assert order.state is State.RETURNED
    order = await service.reassign(n, OPERATOR, lead_department="市水务集团", assisting=[])
    assert order.state is State.DISPATCHED and order.lead_department == "市水务集团"
    with pytest.raises(Forbidden):
        await service.sign(n, YANTA)  # no longer Yanta's order
    await service.sign(n, WATER)
    await service.reply(n, WATER, "已修复")
    await service.review(n, OPERATOR, passed=True)
    order = await service.record_revisit(
        n, OPERATOR, satisfaction=Satisfaction.DISSATISFIED, resolved=False, note="仍然漏水"
    )
    assert order.state is State.DISPATCHED and order.rework_count == 1
    assert [h.action for h in order.history][-2:] == ["revisit", "rework"]


async def test_illegal_transition_names_the_state(service: WorkOrderService) -> None:
    n = (await service.create(NewWorkOrder(channel="web", description="请问"), OPERATOR)).number
    with pytest.raises(IllegalTransition, match="cannot sign a work order that is registered"):
        await service.sign(n, SUPERVISOR)
    with pytest.raises(Forbidden):
        await service.approve_extension(n, OPERATOR)
    with pytest.raises(NotFound):
        await service.sign("20990101000001", SUPERVISOR)


async def test_answer_directly_update_and_merge(service: WorkOrderService) -> None:
    first = await service.create(NewWorkOrder(channel="phone", description=NOISE), OPERATOR)
    dup = await service.create(NewWorkOrder(channel="sms", description=NOISE), OPERATOR)
    order = await service.update(dup.number, OPERATOR, {"caller_name": "张先生", "urgent": True})
    assert order.caller_name == "张先生" and order.urgent
    with pytest.raises(InvalidInput):
        await service.update(dup.number, OPERATOR, {"state": "archived"})
    merged = await service.merge(dup.number, first.number, OPERATOR)
    assert merged.state is State.MERGED and merged.merged_into == first.number
    status = await service.phone_status(dup.number)
    assert status == PhoneStatus(State.MERGED, first.number, None)
    target = await service.get(first.number)
    assert target.history[-1].action == "merged"
    q = await service.create(
        NewWorkOrder(channel="web", description="请问公积金怎么提取"), OPERATOR
    )
    answered = await service.answer(q.number, OPERATOR, "凭身份证到公积金中心办理")
    assert answered.state is State.ANSWERED


async def test_phone_status_lookup(service: WorkOrderService) -> None:
    n = (await service.create(NewWorkOrder(channel="phone", description=NOISE), OPERATOR)).number
    await service.dispatch(n, OPERATOR)
    status = await service.phone_status(n)
    assert status == PhoneStatus(State.DISPATCHED, None, date(2026, 11, 30))
    assert await service.phone_status("20990101000001") is None
    assert await service.phone_status("abc") is None


async def test_supervision_urges_then_escalates(service: WorkOrderService, clock: Clock) -> None:
    n = (await service.create(NewWorkOrder(channel="phone", description=NOISE), OPERATOR)).number
    await service.dispatch(n, OPERATOR)
    assert await supervise(service) == SupervisionReport()
    clock.now = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # due the same day
    assert await supervise(service) == SupervisionReport(urged=(n,))
    assert await supervise(service) == SupervisionReport()  # urged once only

    clock.now += timedelta(days=1)
    assert await supervise(service) == SupervisionReport(escalated=(n,))
    order = await service.get(n)
    assert [h.action for h in order.history][-2:] == ["urge", "escalate"]
    assert order.supervision_level == 2
