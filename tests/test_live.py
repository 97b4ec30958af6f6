"""The live-event hub (web/live.py): who receives what. An operator only the events of their
own seat, supervisors and admins every event, a department nothing; topics filter; a
subscriber that falls behind is cut off; closing the hub ends every stream."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from accounts.users import AccountRole, User
from calls.lifecycle import ConnectedCall
from queueing.events import AcdEvent
from web.live import QUEUE_SIZE, LiveEvent, LiveHub


def user(name: str, role: AccountRole, extension: str = "", department: str = "") -> User:
    return User(id=0, name=name, role=role, extension=extension, department=department)


OP1 = user("op1", AccountRole.OPERATOR, "8001")
OP2 = user("op2", AccountRole.OPERATOR, "8002")
LEAD = user("lead", AccountRole.SUPERVISOR)
DEPT = user("yanta", AccountRole.DEPARTMENT, department="雁塔区人民政府")


def drained(hub_sub: object) -> list[LiveEvent]:
    queue = hub_sub.queue  # type: ignore[attr-defined]
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def test_a_call_reaches_its_seat_and_the_supervisors_only() -> None:
    hub = LiveHub()
    subs = {u.name: hub.subscribe(u) for u in (OP1, OP2, LEAD, DEPT)}
    call = ConnectedCall("1700.1", "PJSIP/citizens-1", "13912345678", "8001", "PJSIP/8001-2",
                         "consultation", datetime.now(UTC))  # fmt: skip
    await hub.connected(call)
    got = {name: drained(sub) for name, sub in subs.items()}
    assert [e.data["caller_number"] for e in got["op1"]] == ["13912345678"]
    assert [e.topic for e in got["lead"]] == ["call"]
    assert got["op2"] == [] and got["yanta"] == []


async def test_acd_seat_events_are_typed_and_filtered_by_topic() -> None:
    hub = LiveHub()
    desk = hub.subscribe(OP2, frozenset({"acd"}))
    calls_only = hub.subscribe(OP2, frozenset({"call"}))
    hub.acd_event(AcdEvent("1-0", "seat", 1.0, "", "8002", "", "paused lunch"))
    hub.acd_event(AcdEvent("2-0", "seat", 2.0, "", "8001", "", "available "))
    (event,) = drained(desk)
    assert event.data["state"] == "paused" and event.data["reason"] == "lunch"
    assert drained(calls_only) == []


async def test_a_slow_subscriber_is_cut_off_and_close_ends_streams() -> None:
    hub = LiveHub()
    slow, other = hub.subscribe(LEAD), hub.subscribe(LEAD, frozenset({"order"}))
    for i in range(QUEUE_SIZE + 1):
        hub.publish(LiveEvent("acd", {"i": i}))
    assert hub.subscribers == 1  # the slow one is gone, its stream told to end
    assert drained(slow)[-1] is None
    await hub.close()
    assert await asyncio.wait_for(other.queue.get(), 1) is None
