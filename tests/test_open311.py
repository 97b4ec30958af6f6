"""Open311 GeoReport v2 contract: every endpoint and error, JSON and XML; plus staff API and SMS.

The routes are mounted on the web service's own application (``web.app.make_app``, with its
error middleware), as the engine mounts them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient
from sql_databases import fresh_database
from web_client import KEY, signed, web_client, work_order_service, xml

from workorders.sms import sign

NOISE = {"api_key": KEY, "service_code": "noise", "lat": "34.22", "long": "108.95",
         "description": "工地夜间施工", "attribute[WHEN]": "night",
         "attribute[PUBLISH]": "yes"}  # fmt: skip


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    async with fresh_database("sqlite", tmp_path) as engine:
        async with web_client(await work_order_service(engine)) as test_client:
            yield test_client


async def test_services_json_and_xml(client: TestClient) -> None:
    resp = await client.get("/open311/v2/services.json")
    assert resp.status == 200
    services = await resp.json()
    noise = next(s for s in services if s["service_code"] == "noise")
    assert noise["metadata"] is True and noise["type"] == "realtime" and noise["group"] == "环境"
    assert noise["keywords"] == ["噪音", "施工", "扰民"]  # GeoReport's schema: an array
    resp = await client.get("/open311/v2/services.xml")
    assert resp.status == 200 and resp.content_type == "text/xml"
    root = xml(await resp.text())
    assert root.tag == "services"
    assert [s.findtext("service_code") for s in root] == ["noise", "road", "policy"]
    assert root[0].findtext("metadata") == "true"
    assert root[0].findtext("keywords") == "噪音, 施工, 扰民"  # XML: comma separated


async def test_service_definition(client: TestClient) -> None:
    body = await (await client.get("/open311/v2/services/noise.json")).json()
    when = body["attributes"][0]
    assert body["service_code"] == "noise"
    assert when["code"] == "WHEN" and when["datatype"] == "singlevaluelist" and when["required"]
    assert {"key": "night", "name": "夜间（22时至次日6时）"} in when["values"]
    consent = body["attributes"][-1]  # every service asks for consent to publication
    assert consent["code"] == "PUBLISH" and not consent["required"]
    assert [v["key"] for v in consent["values"]] == ["yes", "no"]
    root = xml(await (await client.get("/open311/v2/services/noise.xml")).text())
    assert root.tag == "service_definition"
    assert root.find("attributes/attribute/values/value/key").text == "day"
    for fmt in ("json", "xml"):
        resp = await client.get(f"/open311/v2/services/nope.{fmt}")
        assert resp.status == 404


async def test_post_request_then_read_it(client: TestClient) -> None:
    resp = await client.post("/open311/v2/requests.json", data=NOISE)
    assert resp.status == 200
    [answer] = await resp.json()
    public_id = answer["service_request_id"]  # random, not the sequential work order number
    assert len(public_id) >= 16 and "token" not in answer and "account_id" not in answer
    assert answer["service_notice"] == "5个工作日内答复（工单号20261123000001）"
    [req] = await (await client.get(f"/open311/v2/requests/{public_id}.json")).json()
    assert req["status"] == "open" and req["service_code"] == "noise"
    assert req["requested_datetime"] == "2026-11-23T10:00:00+08:00"
    assert req["lat"] == 34.22 and req["description"] == "工地夜间施工"
    assert "expected_datetime" not in req  # absent (not dispatched yet): omitted, never null
    root = xml(await (await client.get(f"/open311/v2/requests/{public_id}.xml")).text())
    assert root.tag == "service_requests" and root[0].findtext("service_request_id") == public_id
    resp = await client.post("/open311/v2/requests.xml", data=NOISE)
    second = xml(await resp.text())[0].findtext("service_request_id")
    assert second and second != public_id
    assert (await client.get("/open311/v2/requests/20261123000001.json")).status == 404


async def test_batch_service_answers_a_token(client: TestClient) -> None:
    form = {"api_key": KEY, "service_code": "policy", "address_string": "雁塔区小寨",
            "description": "请问公积金怎么提取"}  # fmt: skip
    [answer] = await (await client.post("/open311/v2/requests.json", data=form)).json()
    assert "service_request_id" not in answer
    token = answer["token"]
    [found] = await (await client.get(f"/open311/v2/tokens/{token}.json")).json()
    assert found["token"] == token and len(found["service_request_id"]) >= 16
    root = xml(await (await client.get(f"/open311/v2/tokens/{token}.xml")).text())
    assert root[0].findtext("token") == token
    for fmt in ("json", "xml"):
        assert (await client.get(f"/open311/v2/tokens/nope.{fmt}")).status == 404


async def test_requests_filters(client: TestClient) -> None:
    [noise] = await (await client.post("/open311/v2/requests.json", data=NOISE)).json()
    road = {"api_key": KEY, "service_code": "road", "address_id": "A-17",
            "attribute[PUBLISH]": "yes"}  # fmt: skip
    await client.post("/open311/v2/requests.json", data=road)
    listed = await (await client.get("/open311/v2/requests.json")).json()
    assert len(listed) == 2
    only = await (await client.get("/open311/v2/requests.json?service_code=road")).json()
    assert [r["service_code"] for r in only] == ["road"]
    assert await (await client.get("/open311/v2/requests.json?status=closed")).json() == []
    by_id = (
        f"/open311/v2/requests.json?service_request_id={noise['service_request_id']}"
        "&service_code=road"
    )
    assert [r["service_code"] for r in await (await client.get(by_id)).json()] == ["noise"]
    window = "start_date=2026-11-01T00:00:00%2B08:00&end_date=2026-11-22T00:00:00%2B08:00"
    assert await (await client.get(f"/open311/v2/requests.json?{window}")).json() == []
    root = xml(await (await client.get("/open311/v2/requests.xml?status=open")).text())
    assert len(root.findall("request")) == 2


@pytest.mark.parametrize(
    ("form", "status", "words"),
    [
        ({**NOISE, "api_key": ""}, 403, "api_key is required"),
        ({**NOISE, "api_key": "wrong"}, 403, "not valid"),
        ({k: v for k, v in NOISE.items() if k != "service_code"}, 400, "service_code is required"),
        ({**NOISE, "service_code": "nope"}, 400, "not a known service"),
        ({k: v for k, v in NOISE.items() if k not in ("lat", "long")}, 400, "location"),
        ({**NOISE, "lat": "north"}, 400, "decimal"),
        ({**NOISE, "description": "长" * 4001}, 400, "4000"),
        ({k: v for k, v in NOISE.items() if k != "attribute[WHEN]"}, 400, "WHEN is required"),
        ({**NOISE, "attribute[WHEN]": "noon"}, 400, "not one of"),
        ({**NOISE, "jurisdiction_id": "other.gov"}, 404, "jurisdiction"),
        ({**NOISE, "media_url": "javascript:alert(1)"}, 400, "http or https"),
        ({**NOISE, "media_url": "data:text/html,x"}, 400, "http or https"),
        ({**NOISE, "address_string": "东大街\x1b[2J"}, 400, "control characters"),
        ({**NOISE, "description": "夜间\x00施工"}, 400, "control characters"),
        ({**NOISE, "first_name": "王" * 40}, 400, "first_name is longer"),
        ({**NOISE, "email": "x" * 300}, 400, "email is longer"),
        ({**NOISE, "attribute[SOURCE]": "工" * 300}, 400, "at most 256"),
        ({**NOISE, "attribute[PUBLISH]": "maybe"}, 400, "not one of"),
        ({**NOISE, "lat": "nan", "long": "nan"}, 400, "out of range"),
    ],
)
async def test_post_request_errors(
    client: TestClient, form: dict[str, str], status: int, words: str
) -> None:
    resp = await client.post("/open311/v2/requests.json", data=form)
    assert resp.status == status
    [error] = await resp.json()
    assert error["code"] == status and words in error["description"]
    resp = await client.post("/open311/v2/requests.xml", data=form)
    assert resp.status == status
    root = xml(await resp.text())
    assert root.tag == "errors" and root[0].tag == "error"
    assert root[0].findtext("code") == str(status) and words in root[0].findtext("description")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("start_date=yesterday", "not an ISO 8601"),
        ("start_date=2026-11-01T00:00:00", "time zone"),
        ("start_date=2026-01-01T00:00:00Z&end_date=2026-11-01T00:00:00Z", "90 days"),
        ("start_date=2026-11-02T00:00:00Z&end_date=2026-11-01T00:00:00Z", "before"),
        ("status=pending", "open or closed"),
    ],
)
async def test_requests_query_errors(client: TestClient, query: str, words: str) -> None:
    for fmt in ("json", "xml"):
        resp = await client.get(f"/open311/v2/requests.{fmt}?{query}")
        assert resp.status == 400
        text = await resp.text()
        assert words in text


async def test_unknown_request_and_resource(client: TestClient) -> None:
    resp = await client.get("/open311/v2/requests/20990101000001.json")
    assert resp.status == 404 and (await resp.json())[0]["code"] == 404
    resp = await client.get("/open311/v2/requests/20990101000001.xml")
    assert resp.status == 404 and xml(await resp.text()).tag == "errors"
    resp = await client.get("/open311/v2/services.csv")
    assert resp.status == 404 and (await resp.json())[0]["code"] == 404


async def test_staff_api_roles_and_public_status(client: TestClient) -> None:
    op = {"Authorization": "Bearer op-token"}
    yanta = {"Authorization": "Bearer yanta-token"}
    body = {"channel": "phone", "description": "小寨工地施工噪音太吵，投诉", "caller_phone": "138"}
    assert (await client.post("/api/workorders", json=body)).status == 401
    resp = await client.post("/api/workorders", json=body, headers=op)
    assert resp.status == 201
    number = (await resp.json())["number"]
    resp = await client.post(f"/api/workorders/{number}/sign", json={}, headers=yanta)
    assert resp.status == 409
    assert "registered" in (await resp.json())["error"]["message"]
    resp = await client.post(f"/api/workorders/{number}/dispatch", json={}, headers=yanta)
    assert resp.status == 403
    resp = await client.post(f"/api/workorders/{number}/dispatch", json={}, headers=op)
    assert (await resp.json())["lead_department"] == "雁塔区人民政府"
    resp = await client.post(f"/api/workorders/{number}/sign", json={}, headers=yanta)
    assert (await resp.json())["state"] == "signed"
    resp = await client.patch(f"/api/workorders/{number}", json={"subject": "夜间施工"}, headers=op)
    assert (await resp.json())["subject"] == "夜间施工"
    # Numbers are sequential: the public lookup by number answers the state and nothing else.
    status = await (await client.get(f"/api/status/{number}")).json()
    assert status == {"number": number, "state": "signed", "label": "部门已签收，办理中"}
    resp = await client.get("/api/status/20990101000001")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def sms(
    client: TestClient, fields: dict[str, str], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """POST a form to the SMS webhook, signed as the gateway signs it unless ``headers``."""
    body = urlencode(fields).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               **(signed(body) if headers is None else headers)}  # fmt: skip
    resp = await client.post("/sms/inbound", data=body, headers=headers)
    return resp.status, await resp.json()


async def test_sms_webhook(client: TestClient) -> None:
    status, body = await sms(client, {"from": "13800138000", "text": "东大街有人占道摆摊"})
    assert status == 200
    assert body["number"] == "20261123000001" and body["number"] in body["reply"]
    status, body = await sms(client, {"from": "13900139000", "text": "长" * 151})
    assert status == 400 and "150" in body["reply"]
    assert body["error"]["code"] == "invalid_input"


async def test_sms_signature_timestamp_and_replay(client: TestClient) -> None:
    fields = {"from": "13800138000", "text": "东大街有人占道摆摊"}
    status, body = await sms(client, fields, headers={})
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    raw = urlencode(fields).encode()
    status, body = await sms(client, fields, headers=signed(raw, at=time.time() - 600))
    assert status == 401 and "from now" in body["error"]["message"]
    forged = signed(raw) | {"X-Hotline-Signature": sign("guessed", str(int(time.time())), raw)}
    assert (await sms(client, fields, headers=forged))[0] == 401
    headers = signed(raw)
    assert (await sms(client, fields, headers=headers))[0] == 200
    status, body = await sms(client, fields, headers=headers)  # the same request again
    assert status == 401 and "replay" in body["error"]["message"]


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"text"', b"null", b"{not json"])
async def test_sms_json_body_must_be_an_object(client: TestClient, payload: bytes) -> None:
    headers = {"Content-Type": "application/json", **signed(payload)}
    resp = await client.post("/sms/inbound", data=payload, headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_input"
