"""The live-event hub (web/live.py): who receives what. An operator only the events of their
own seat, supervisors and admins every event, a department nothing; topics filter; a
subscriber that falls behind is cut off; closing the hub ends every stream. Through the
engine's own web service: the desk's and the stream's routes for every role, and seat
changes made through the seat API reaching each stream from the ACD's event log."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from conftest import TEST_REDIS_URL, web_engine_settings
from redis.asyncio import Redis
from staff import staff_token
from web_client import next_event

from accounts.users import AccountRole, User
from calls.lifecycle import ConnectedCall
from hotline.engine import Hotline
from queueing.events import AcdEvent
from sipsim.ports import SHIFTS
from web.fanout import RedisFanout
from web.live import QUEUE_SIZE, LiveEvent, LiveHub
from workorders.orders import Actor, NewWorkOrder, Role


def user(name: str, role: AccountRole, extension: str = "", department: str = "") -> User:
    return User(id=0, name=name, role=role, extension=extension, department=department)


YANTA = "雁塔区人民政府"
OP1 = user("op1", AccountRole.OPERATOR, "8001")
OP2 = user("op2", AccountRole.OPERATOR, "8002")
LEAD = user("lead", AccountRole.SUPERVISOR)
DEPT = user("yanta", AccountRole.DEPARTMENT, department=YANTA)


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


async def test_two_hubs_on_one_redis_see_each_others_events(redis: Redis, prefix: str) -> None:
    """web.fanout: what hub A publishes reaches hub B's subscribers through the shared
    stream, with its audience kept (a department's news to that department only), and A's
    own subscribers by the same path; B also delivers the ACD's log. With Redis down, A's
    events still reach A's own pages."""
    hubs = [LiveHub(), LiveHub()]
    fanouts = [RedisFanout(hub, redis, prefix, timeout_s=2) for hub in hubs]
    stop = asyncio.Event()
    for hub, fanout in zip(hubs, fanouts, strict=True):
        hub.fanout = fanout
    loops = [asyncio.create_task(f.follow(stop)) for f in fanouts]
    loops += [asyncio.create_task(f.run_sender(stop)) for f in fanouts]
    a, b = hubs
    b_dept, b_lead, a_lead = b.subscribe(DEPT), b.subscribe(LEAD), a.subscribe(LEAD)
    try:
        await asyncio.sleep(0.3)  # both followers have taken their place in the streams
        a.publish(LiveEvent("portal", {"number": "1"}, roles=frozenset(), department=YANTA))
        a.revisit_changed("2", "listed")
        await redis.xadd(f"{prefix}events", {"type": "seat", "ts": "1000", "seat": "8001",
                                             "data": "paused lunch"})  # fmt: skip
        got = await asyncio.wait_for(b_dept.queue.get(), 5)
        assert got is not None and (got.topic, got.data) == ("portal", {"number": "1"})
        topics = [(await asyncio.wait_for(b_lead.queue.get(), 5)) for _ in range(2)]
        seen = sorted((e.topic, e.data.get("state")) for e in topics if e)  # either first
        assert seen == [("acd", "paused"), ("revisit", "listed")]
        own = [(await asyncio.wait_for(a_lead.queue.get(), 5)) for _ in range(2)]
        assert sorted(e.topic for e in own if e) == ["acd", "revisit"]
        assert b_dept.queue.empty()  # neither the revisit nor the seat is a department's

        dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
        fanouts[0].redis = dead
        try:
            a.revisit_changed("3", "tried")
            alone = await asyncio.wait_for(a_lead.queue.get(), 5)
        finally:
            await dead.aclose()
        assert alone is not None and alone.data["order_number"] == "3"
    finally:
        stop.set()
        await asyncio.gather(*loops)


# -- through the engine's own web service (no Asterisk: real Redis and SQLite) ---------------
LIVE_PORT_SHIFT = SHIFTS["live"]


@dataclass
class Web:
    hotline: Hotline
    url: str
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Web]:
    base = tmp_path_factory.mktemp("live")
    s = web_engine_settings(base, "live", LIVE_PORT_SHIFT)
    prefix = s.acd_prefix
    hotline = Hotline(s)
    await hotline.start()
    try:
        tokens = {}
        for name, role, ext, dept in (("op1", AccountRole.OPERATOR, "8001", ""),
                                      ("op2", AccountRole.OPERATOR, "8002", ""),
                                      ("lead", AccountRole.SUPERVISOR, "", ""),
                                      ("admin", AccountRole.ADMIN, "", ""),
                                      ("yanta", AccountRole.DEPARTMENT, "", YANTA)):  # fmt: skip
            tokens[name] = await staff_token(hotline.accounts.accounts, name, role,
                                             extension=ext, department=dept)  # fmt: skip
        yield Web(hotline, f"http://{s.web_host}:{s.web_port}", tokens)
    finally:
        await hotline.stop()
        redis = aioredis.Redis.from_url(TEST_REDIS_URL)
        keys = [key async for key in redis.scan_iter(f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def answer(web: Web, method: str, path: str, who: str = "", **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(
        method, web.url + path, headers=web.auth(who), allow_redirects=False, **kw
    ) as response:  # fmt: skip
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def test_desk_routes_for_every_role(engine: Web) -> None:
    status, body = await answer(engine, "GET", "/api/desk", "op1")
    assert status == 200 and body["seat"] == "8001" and body["state"] == "logged_out"
    assert body["call"] is None and "complaint" in body["categories"]
    assert YANTA in body["departments"] and "lunch" in body["pause_reasons"]
    for who in ("lead", "admin", "yanta"):
        for path in ("/api/desk", "/desk"):
            status, body = await answer(engine, "GET", path, who)
            assert status == 403 and body["error"]["code"] == "forbidden", (who, path)
    status, body = await answer(engine, "GET", "/api/desk")
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    status, page = await answer(engine, "GET", "/desk", "op1")
    assert status == 200 and "/desk/desk.js" in page
    status, _ = await answer(engine, "GET", "/desk")  # a browser without a session
    assert status == 303
    # ready (wrap-up ended early): the operator's own seat only; not in wrap-up is the ACD's 409
    status, body = await answer(engine, "POST", "/api/seats/8002/ready", "op1", json={})
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await answer(engine, "POST", "/api/seats/8001/ready", "op1", json={})
    assert status == 409 and body["error"]["code"] == "seat_state", body


async def test_live_stream_refuses_departments_and_nobody(engine: Web) -> None:
    status, body = await answer(engine, "GET", "/api/live", "yanta")
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await answer(engine, "GET", "/api/live")
    assert status == 401 and body["error"]["code"] == "unauthenticated"


async def next_acd(stream: aiohttp.ClientResponse) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            line = (await stream.content.readline()).decode()
            if line.startswith("data: "):
                data: dict[str, Any] = json.loads(line[6:])
                return data


async def test_seat_changes_reach_their_operator_and_the_supervisors_only(engine: Web) -> None:
    """Seat API -> the ACD's Lua -> its event log in Redis -> the engine's live-events
    loop -> each user's stream, filtered by seat and role."""
    url = engine.url + "/api/live?topics=acd"
    async with aiohttp.ClientSession() as http:
        streams = {}
        for who in ("op1", "op2", "lead"):
            streams[who] = await http.get(url, headers=engine.auth(who))
            assert streams[who].status == 200
            assert streams[who].headers["Content-Type"] == "text/event-stream"
            assert (await streams[who].content.readline()).decode() == "retry: 1000\n"
        try:
            for ext, who in (("8001", "op1"), ("8002", "op2")):
                status, body = await answer(engine, "POST", f"/api/seats/{ext}/login", who,
                                            json={"pin": "2468"})  # fmt: skip
                assert status == 200 and body["state"] == "available", body
            first = await next_acd(streams["op1"])
            assert (first["seat"], first["type"], first["state"]) == ("8001", "seat", "available")
            other = await next_acd(streams["op2"])
            assert other["seat"] == "8002"  # 8001's login never reached op2
            seen = [(await next_acd(streams["lead"]))["seat"] for _ in range(2)]
            assert seen == ["8001", "8002"]
            await engine.hotline.acd.pause("8001", "lunch")  # as *23 2 would
            paused = await next_acd(streams["op1"])
            assert (paused["state"], paused["reason"]) == ("paused", "lunch")
        finally:
            for stream in streams.values():
                stream.close()
            for ext in ("8001", "8002"):
                await engine.hotline.acd.logout(ext)
    assert await _eventually_no_subscribers(engine)


async def _eventually_no_subscribers(engine: Web) -> bool:
    """Streams whose browser went away are dropped at the next write (keep-alive at most)."""
    hub = engine.hotline.live
    for _ in range(5):
        hub.publish(LiveEvent("acd", {"ping": True}))
        await asyncio.sleep(0.2)
        if hub.subscribers == 0:
            return True
    return False


async def test_a_call_pops_on_its_desk_and_its_transcript_follows(engine: Web) -> None:
    """The engine's call listeners announce a caller put through to 8001 (as the ACD
    connector does): op1's stream gets the call with the order opened for it and the
    number's earlier order; the operator corrects the subject; intake's draft of the ended
    call brings the transcript to that order (the subject stays the operator's) and an
    ``order`` event to op1."""
    hotline = engine.hotline
    number = "13912340001"
    earlier = await hotline.work_orders.create(
        NewWorkOrder(channel="phone", caller_phone=number, subject="噪音扰民"),
        Actor("op1", Role.OPERATOR),
    )
    call = ConnectedCall(f"live-{os.getpid()}.1", "PJSIP/citizens-1", number, "8001",
                         "PJSIP/8001-1", "report", datetime.now(UTC))  # fmt: skip
    url = engine.url + "/api/live?topics=call,order"
    async with aiohttp.ClientSession() as http:
        op1 = await http.get(url, headers=engine.auth("op1"))
        op2 = await http.get(url, headers=engine.auth("op2"))
        try:
            await hotline.live.connected(call)
            popped = await next_event(op1, "call")
            assert popped["caller_number"] == number and popped["queue"] == "report"
            assert [o["number"] for o in popped["earlier_orders"]] == [earlier.number]
            order = popped["order"]
            assert order["call_id"] == call.call_id and order["seat"] == "8001"
            assert set(popped["time_limits"]) >= {"complaint", "consultation"}
            status, body = await answer(engine, "PATCH", f"/api/workorders/{order['number']}",
                                        "op1", json={"subject": "路灯不亮"})  # fmt: skip
            assert status == 200 and body["subject"] == "路灯不亮"
            text = "你好 小寨东路的路灯一直不亮"
            drafted = await hotline.work_orders.draft_from_call(
                number, call.connected_at, text, "/recordings/x.wav", call.call_id,
                seat="8001", queue="report",
            )  # fmt: skip
            assert drafted.number == order["number"]
            event = await next_event(op1, "order")
            while event["transcript"] != text:  # the order opened at the pop came first
                event = await next_event(op1, "order")
            assert event["number"] == order["number"] and event["subject"] == "路灯不亮"
            assert event["description"] == text
            with pytest.raises(TimeoutError):  # nothing of it on another seat's desk
                async with asyncio.timeout(1):
                    await next_event(op2, "call")
        finally:
            op1.close()
            op2.close()
    stored = await hotline.work_orders.get(order["number"])
    assert stored.transcript == text and stored.subject == "路灯不亮"
    assert [e.action for e in stored.history][-1] == "transcript"


async def test_a_call_recorded_but_not_transcribed_brings_its_recording_to_the_open_order(
    engine: Web,
) -> None:
    """Without a speech model intake drafts a call with its recording and no transcript: the
    order opened when the call was put through gets the recording all the same."""
    hotline = engine.hotline
    number = "13912340002"
    call = ConnectedCall(f"live-{os.getpid()}.2", "PJSIP/citizens-2", number, "8001",
                         "PJSIP/8001-2", "report", datetime.now(UTC))  # fmt: skip
    await hotline.live.connected(call)
    opened = await hotline.work_orders.by_call(call.call_id)
    assert opened is not None and not opened.recording_path
    drafted = await hotline.work_orders.draft_from_call(
        number, call.connected_at, "", "/recordings/y-mix.wav", call.call_id, seat="8001",
        queue="report",
    )  # fmt: skip
    assert drafted.number == opened.number and drafted.recording_path == "/recordings/y-mix.wav"
    assert (await hotline.work_orders.get(opened.number)).recording_path == drafted.recording_path
