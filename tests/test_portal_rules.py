"""The work-order rules the department portal adds, against real SQL (SQLite and
PostgreSQL): progress notes by the lead or an assisting department, an assisting
department's part of the reply, the orders a department leads or assists in (never
another's), and the news each department is told of (dispatch, rework, urging) with
notices that carry nothing of who complained."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser

import pytest
from conftest import eventually
from test_workorder_service import NOISE, OPERATOR, SUPERVISOR, Clock, clock, engine, service  # noqa: F401

from workorders.errors import Forbidden, IllegalTransition, InvalidInput
from workorders.mail import DepartmentMail, MailSettings
from workorders.models import WorkOrderRow
from workorders.notices import notices
from workorders.orders import Actor, NewWorkOrder, Role, WorkOrder, snapshot
from workorders.service import WorkOrderService
from workorders.states import State
from workorders.supervision import supervise
from workorders.timelimits import TimeLimits

YANTA = Actor("雁塔区值班员", Role.DEPARTMENT, "雁塔区人民政府")
ECO = Actor("生态环境值班员", Role.DEPARTMENT, "市生态环境局")
GAS = Actor("燃气值班员", Role.DEPARTMENT, "市燃气集团")
PHONE = "13912345678"


async def dispatched(service: WorkOrderService) -> WorkOrder:  # noqa: F811
    new = NewWorkOrder(channel="phone", description=NOISE, caller_phone=PHONE,
                       caller_name="张三")  # fmt: skip
    order = await service.create(new, OPERATOR)
    return await service.dispatch(order.number, OPERATOR, lead_department=YANTA.department,
                                  assisting=[ECO.department])  # fmt: skip


async def test_notes_and_assisting_replies(service: WorkOrderService) -> None:  # noqa: F811
    order = await dispatched(service)
    await service.sign(order.number, YANTA)
    await service.add_note(order.number, YANTA, "已联系施工单位")
    await service.add_note(order.number, ECO, "已安排夜间噪声监测")
    with pytest.raises(Forbidden):
        await service.add_note(order.number, GAS, "不是我们的")
    with pytest.raises(InvalidInput):
        await service.add_note(order.number, YANTA, "  ")
    done = await service.assist_reply(order.number, ECO, "监测超标，已立案处罚")
    with pytest.raises(Forbidden):  # the lead replies with reply, not as an assistant
        await service.assist_reply(order.number, YANTA, "x")
    with pytest.raises(Forbidden):  # an assisting department may not sign, return or reply
        await service.reply(order.number, ECO, "办结")
    tail = [(h.actor, h.action, h.note, h.from_state, h.to_state) for h in done.history[-3:]]
    assert tail == [
        ("雁塔区值班员", "note", "已联系施工单位", "signed", "signed"),
        ("生态环境值班员", "note", "已安排夜间噪声监测", "signed", "signed"),
        ("生态环境值班员", "assist-reply", "监测超标，已立案处罚", "signed", "signed"),
    ]
    replied = await service.reply(order.number, YANTA, "已督促施工单位夜间停工")
    assert replied.state is State.REPLIED
    with pytest.raises(IllegalTransition):  # the order no longer needs its assistants
        await service.assist_reply(order.number, ECO, "补充")


async def test_a_department_finds_what_it_leads_or_assists(service: WorkOrderService) -> None:  # noqa: F811
    order = await dispatched(service)
    other = await service.create(NewWorkOrder(channel="web", description="燃气表漏气"), OPERATOR)
    await service.dispatch(other.number, OPERATOR, lead_department=GAS.department, assisting=[])
    found = {d.department: [o.number for o in await service.find(involving=d.department)]
             for d in (YANTA, ECO, GAS)}  # fmt: skip
    assert found == {YANTA.department: [order.number], ECO.department: [order.number],
                     GAS.department: [other.number]}  # fmt: skip
    with pytest.raises(Forbidden):
        await service.get(order.number, GAS)


async def test_departments_are_told_of_dispatch_rework_and_urging(
    service: WorkOrderService,  # noqa: F811
    clock: Clock,  # noqa: F811
) -> None:
    told: list[tuple[str, str]] = []
    service.on_department_news = lambda order, news: told.append((order.number, news))
    order = await dispatched(service)
    assert told == [(order.number, "dispatched")]
    assert order.due_at is not None
    clock.now = order.due_at - timedelta(hours=1)
    await supervise(service)
    clock.now = order.due_at + timedelta(hours=1)
    await supervise(service)
    assert told[1:] == [(order.number, "urged"), (order.number, "escalated")]

    sent = notices(order, "dispatched")
    assert [(n.department, n.part) for n in sent] == [(YANTA.department, "lead"),
                                                       (ECO.department, "assisting")]  # fmt: skip
    zone = service.limits.timezone
    mail = sent[0].email("12345@example.org", "yanta@example.org", zone)
    text = BytesParser(policy=policy.default).parsebytes(mail.as_bytes())
    body = text.get_content() if not text.is_multipart() else ""
    assert order.number in text["Subject"] and sent[0].due_text(zone) in text["Subject"]
    assert sent[0].due_text(zone) in body
    for secret in (PHONE, PHONE[-4:], "张三", "工地晚上施工"):  # the description is left out
        assert secret not in text.as_string() and secret not in body


async def test_mail_to_a_dead_gateway_is_retried_then_given_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = MailSettings("127.0.0.1", port, "12345@example.org",
                            {YANTA.department: "yanta@example.org"}, timeout_s=1.0,
                            retries=2, retry_s=0.05)  # fmt: skip
    mail = DepartmentMail(settings, TimeLimits.load().timezone)
    notice = notices(_order_for_mail(), "urged")
    assert [mail.post(n) for n in notice] == [True, False]  # the assisting one has no address
    stop = asyncio.Event()
    running = asyncio.create_task(mail.run(stop))
    try:
        await eventually(lambda: _given_up(mail), 10, "the e-mail to be given up")
    finally:
        stop.set()
        await running
    assert (mail.sent, mail.failed) == (0, 1)
    assert caplog.text.count("e-mail to 雁塔区人民政府 failed") == 2
    assert "given up after 3 attempts" in caplog.text


def _order_for_mail() -> WorkOrder:
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    row = WorkOrderRow(number="20261123000001", channel="phone", state="dispatched",
                       created_at=now, updated_at=now, caller_phone=PHONE, category="complaint",
                       subject="噪音", lead_department=YANTA.department,
                       assisting_departments=[ECO.department], due_at=now)  # fmt: skip
    row.history = []
    return snapshot(row)


async def _given_up(mail: DepartmentMail) -> bool:
    return bool(mail.failed)
