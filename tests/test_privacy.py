"""No citizen's words leak: the public Open311 feed, public ids, per-role views, SMS follow-ups.

Everything goes through the web service's own application and a real SQL database.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sql_databases import KINDS, fresh_database
from web_client import (
    KEY,
    OPERATOR,
    YANTA,
    Clock,
    send_sms,
    web_client,
    work_order_service,
    xml,
)

from workorders.orders import SYSTEM, NewWorkOrder, Role
from workorders.service import WorkOrderService
from workorders.states import State

FEED_JSON, FEED_XML = "/open311/v2/requests.json", "/open311/v2/requests.xml"
#: what must never reach the public feed, from every channel below
SECRETS = ("13800010001", "13900020002", "13700030003", "张三丰", "zhang@example.cn",
           "dev-4711", "acct-99", "身份证号610", "区长办公室", "举报楼下",
           "recordings/")  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=KINDS)
async def service(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[WorkOrderService]:
    async with fresh_database(request.param, tmp_path) as engine:
        yield await work_order_service(engine, clock)


@pytest.fixture
async def client(service: WorkOrderService) -> AsyncIterator[TestClient]:
    async with web_client(service) as test_client:
        yield test_client


async def open311(client: TestClient, **fields: str) -> dict[str, Any]:
    form = {"api_key": KEY, "service_code": "noise", "address_string": "小寨东路工地",
            "description": "工地夜间施工", "attribute[WHEN]": "night", **fields}  # fmt: skip
    resp = await client.post("/open311/v2/requests.json", data=form)
    assert resp.status == 200, await resp.text()
    [answer] = await resp.json()
    return dict(answer)


async def test_public_feed_shows_only_consented_open311_requests(
    client: TestClient, service: WorkOrderService
) -> None:
    personal = {"first_name": "三丰", "last_name": "张", "phone": "13800010001",
                "email": "zhang@example.cn", "device_id": "dev-4711",
                "account_id": "acct-99"}  # fmt: skip
    shown = await open311(client, **personal, **{"attribute[PUBLISH]": "yes"})
    hidden = await open311(
        client, description="身份证号610 区长办公室", **{"attribute[PUBLISH]": "no"}
    )
    await open311(client, description="举报楼下 区长办公室")  # no answer to PUBLISH: not public
    later_confidential = await open311(client, **{"attribute[PUBLISH]": "yes"})
    status, sms = await send_sms(client, "13900020002", "举报楼下 区长办公室 身份证号610")
    assert status == 200
    await service.draft_from_call("13700030003", datetime.now(UTC),
                                  "我叫张三丰，举报楼下", "recordings/c1.wav", "c1")  # fmt: skip
    fax = {"channel": "fax", "description": "举报楼下", "caller_phone": "13700030003"}
    assert (await client.post("/api/workorders", json=fax, headers=OPERATOR)).status == 201
    [confidential] = await service.find(public_ids=[later_confidential["service_request_id"]])
    resp = await client.patch(f"/api/workorders/{confidential.number}",
                              json={"confidential": True}, headers=OPERATOR)  # fmt: skip
    assert resp.status == 200

    feed = await client.get(FEED_JSON)
    rows, text = await feed.json(), await feed.text()
    assert [r["service_request_id"] for r in rows] == [shown["service_request_id"]]
    assert rows[0]["description"] == "工地夜间施工" and rows[0]["address"] == "小寨东路工地"
    xml_text = await (await client.get(FEED_XML)).text()
    assert [r.findtext("service_request_id") for r in xml(xml_text)] == [
        shown["service_request_id"]
    ]
    for body in (text, xml_text):
        leaked = [s for s in SECRETS if s in body]
        assert not leaked, f"the public feed shows {leaked}"
        assert not re.search(r"\b2026\d{10}\b", body), "a sequential order number is public"

    # By its public id (known to its citizen only), an unpublished request shows its progress.
    for answer in (hidden, later_confidential):
        one = await client.get(f"/open311/v2/requests/{answer['service_request_id']}.json")
        [row] = await one.json()
        assert row["status"] == "open" and row["service_code"] == "noise"
        assert not {"description", "address", "lat", "long", "media_url"} & set(row)
        assert not [s for s in SECRETS if s in json.dumps(row, ensure_ascii=False)]


async def test_public_ids_are_random_and_numbers_answer_only_the_state(
    client: TestClient, service: WorkOrderService
) -> None:
    ids = [(await open311(client, **{"attribute[PUBLISH]": "yes"}))["service_request_id"]
           for _ in range(3)]  # fmt: skip
    assert len(set(ids)) == 3 and all(len(i) >= 16 and not i.isdigit() for i in ids)
    assert (await client.get("/open311/v2/requests/20261123000001.json")).status == 404
    by_number = "/open311/v2/requests.json?service_request_id=20261123000001,20261123000002"
    assert await (await client.get(by_number)).json() == []
    status = await (await client.get("/api/status/20261123000001")).json()
    assert set(status) == {"number", "state", "label"} and status["state"] == "registered"
    # The phone lookup (3 + number + #) still tells where the order stands.
    phone = await service.phone_status("20261123000001")
    assert phone is not None and phone.state is State.REGISTERED


async def test_each_role_sees_what_it_needs(client: TestClient, service: WorkOrderService) -> None:
    order = await service.draft_from_call("13800010001", datetime.now(UTC),
                                          "我叫张三丰，小寨工地夜间施工噪音太吵",
                                          "recordings/c2.wav", "c2")  # fmt: skip
    assert order.service_code == order.category  # a phone order carries a service code
    resp = await client.patch(f"/api/workorders/{order.number}", headers=OPERATOR,
                              json={"caller_name": "张三丰"})  # fmt: skip
    assert resp.status == 200
    resp = await client.post(f"/api/workorders/{order.number}/dispatch", json={}, headers=OPERATOR)
    assert (await resp.json())["lead_department"] == "雁塔区人民政府"

    centre = await (await client.get(f"/api/workorders/{order.number}", headers=OPERATOR)).json()
    assert centre["caller_phone"] == "13800010001" and centre["caller_name"] == "张三丰"
    department = await (await client.get(f"/api/workorders/{order.number}", headers=YANTA)).json()
    assert department["caller_phone"] == "138****0001"  # need not call: masked
    assert department["caller_name"] == "张三丰" and department["transcript"]
    assert department["description"] == centre["description"]  # what to act on
    assert department["location_text"] == centre["location_text"]

    resp = await client.patch(f"/api/workorders/{order.number}", json={"confidential": True},
                              headers=OPERATOR)  # fmt: skip
    assert resp.status == 200
    for view in (
        await (await client.get(f"/api/workorders/{order.number}", headers=YANTA)).json(),
        (await (await client.get("/api/workorders", headers=YANTA)).json())[0],
    ):
        assert view["description"] and view["location_text"]  # content and place
        for who in ("caller_name", "caller_phone", "email", "transcript", "recording_path"):
            assert view[who] == "", f"a department sees {who} of a confidential order"
        assert "13800010001" not in json.dumps(view) and "张三丰" not in json.dumps(
            {k: v for k, v in view.items() if k != "description" and k != "history"},
            ensure_ascii=False,
        )
    assert order.seen_by(Role.SUPERVISOR)["caller_phone"] == "13800010001"

    # E-mail is contact data too: only the centre, which calls back, sees it.
    web = {"channel": "web", "description": "小寨路灯不亮", "email": "zhang@example.cn",
           "lead_department": "雁塔区人民政府"}  # fmt: skip
    number = (await (await client.post("/api/workorders", json=web, headers=OPERATOR)).json())[
        "number"
    ]
    await client.post(f"/api/workorders/{number}/dispatch", json={}, headers=OPERATOR)
    seen = await (await client.get(f"/api/workorders/{number}", headers=YANTA)).json()
    assert seen["email"] == "" and seen["description"] == "小寨路灯不亮"


async def test_sms_follow_up_joins_the_open_order(
    client: TestClient, service: WorkOrderService, clock: Clock
) -> None:
    status, first = await send_sms(client, "13800010001", "有人占道摆摊，影响通行")
    assert status == 200 and "请回复补充具体地点" in str(first["reply"])
    status, follow = await send_sms(client, "13800010001", "在东大街88号")
    assert status == 200 and follow["number"] == first["number"]
    order = await service.get(str(first["number"]))
    assert order.history[-1].action == "follow-up" and order.history[-1].note == "在东大街88号"
    assert "东大街88号" in order.location_text and "东大街88号" in order.description
    assert order.service_code  # an SMS order carries a service code (its kind)
    assert len(await service.find(caller_phone="13800010001")) == 1

    status, other = await send_sms(client, "13900020002", "在东大街88号")  # another number
    assert status == 200 and other["number"] != first["number"]
    clock.advance(hours=73)
    status, late = await send_sms(client, "13800010001", "还是没人管")
    assert status == 200 and late["number"] != first["number"]  # past the window: a new order


async def test_sms_follow_up_never_reopens_a_closed_order(
    client: TestClient, service: WorkOrderService
) -> None:
    status, first = await send_sms(client, "13800010001", "请问公积金怎么提取")
    number = str(first["number"])
    await client.post(f"/api/workorders/{number}/answer", json={"answer": "请到公积金中心"},
                      headers=OPERATOR)  # fmt: skip
    assert (await service.get(number)).state is State.ANSWERED
    status, again = await send_sms(client, "13800010001", "谢谢，还有一个问题")
    assert status == 200 and again["number"] != number


async def test_xml_never_carries_characters_xml_forbids(
    client: TestClient, service: WorkOrderService
) -> None:
    """Data stored before the input checks (or by other paths) still renders as valid XML."""
    await service.create(
        NewWorkOrder(channel="web", service_code="noise", description="夜间\x0b施工\x1b[0m\x0c",
                     location_text="小寨\x07", public_id="legacy-public-id-1", published=True),
        SYSTEM,
    )  # fmt: skip
    [row] = xml(await (await client.get(FEED_XML)).text())
    assert row.findtext("description") == "夜间施工[0m" and row.findtext("address") == "小寨"
