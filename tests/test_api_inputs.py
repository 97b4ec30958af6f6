"""Every API validates its input: 400 (or 404/405/415) in one error shape, never a 500.

Also GeoReport v2's JSON shapes (keywords an array, no nulls) and its error list for
oversized or malformed requests. On SQLite and PostgreSQL (which enforces column widths).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema_rs
import pytest
from aiohttp.test_utils import TestClient
from sql_databases import KINDS, fresh_database
from web_client import KEY, LEAD, OPERATOR, web_client, work_order_service, xml

ONE_SHAPE = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}}}},
}  # fmt: skip
# GeoReport v2's shapes (open311.org/GeoReport_v2), as JSON Schema.
TEXT, NUMBER = {"type": "string"}, {"type": "number"}
GEOREPORT_SERVICES = {"type": "array", "items": {
    "type": "object", "required": ["service_code", "service_name", "type", "metadata"],
    "properties": {"service_code": TEXT, "service_name": TEXT, "description": TEXT,
                   "metadata": {"type": "boolean"}, "group": TEXT,
                   "type": {"enum": ["realtime", "batch", "blackbox"]},
                   "keywords": {"type": "array", "items": TEXT}}}}  # fmt: skip
GEOREPORT_REQUESTS = {"type": "array", "items": {
    "type": "object", "required": ["service_request_id", "status", "service_code",
                                   "requested_datetime"],
    "properties": {name: TEXT for name in (
        "service_request_id", "status_notes", "service_name", "service_code", "description",
        "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
        "expected_datetime", "address", "address_id", "zipcode", "media_url")}
    | {"status": {"enum": ["open", "closed"]}, "lat": NUMBER, "long": NUMBER}}}  # fmt: skip
GEOREPORT_ERRORS = {"type": "array", "minItems": 1, "items": {
    "type": "object", "required": ["code", "description"],
    "properties": {"code": {"type": "integer"}, "description": TEXT}}}  # fmt: skip


@pytest.fixture(params=KINDS)
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestClient]:
    async with fresh_database(request.param, tmp_path) as engine:
        async with web_client(await work_order_service(engine)) as test_client:
            yield test_client


async def refused(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body: dict[str, Any] = await resp.json()
    jsonschema_rs.validate(ONE_SHAPE, body)
    if code is not None:
        assert body["error"]["code"] == code
    return body


async def new_order(client: TestClient) -> str:
    body = {"channel": "phone", "description": "小寨工地施工噪音", "caller_phone": "13800010001"}
    resp = await client.post("/api/workorders", json=body, headers=OPERATOR)
    assert resp.status == 201
    return str((await resp.json())["number"])


@pytest.mark.parametrize(
    ("query", "words"),
    [("limit=abc", "whole number"), ("limit=-1", "between 1 and 1000"),
     ("limit=0", "between"), ("limit=5000", "between"), ("state=nope", "unknown state")],
)  # fmt: skip
async def test_work_order_list_parameters(client: TestClient, query: str, words: str) -> None:
    body = await refused(await client.get(f"/api/workorders?{query}", headers=OPERATOR), 400)
    assert words in body["error"]["message"]
    for _ in range(3):
        await new_order(client)
    resp = await client.get("/api/workorders?limit=2", headers=OPERATOR)
    assert resp.status == 200 and len(await resp.json()) == 2


@pytest.mark.parametrize(
    ("body", "words"),
    [({"passed": "false"}, "JSON boolean"), ({"passed": 0}, "JSON boolean"), ({}, "required"),
     ({"passed": True, "note": 5}, "must be a string")],
)  # fmt: skip
async def test_booleans_must_be_json_booleans(
    client: TestClient, body: dict[str, Any], words: str
) -> None:
    number = await new_order(client)
    resp = await client.post(f"/api/workorders/{number}/review", json=body, headers=OPERATOR)
    assert words in (await refused(resp, 400, "invalid_input"))["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [{"channel": "phone", "lat": "north"}, {"channel": "phone", "lat": 91},
     {"channel": "phone", "subject": "长" * 129}, {"channel": "phone", "caller_phone": "1" * 40},
     {"channel": "phone", "urgent": "yes"}, {"channel": "phone", "assisting_departments": "x"},
     {"channel": "phone", "description": "a\x00b"}, {"channel": "phone", "recording_path": "/"},
     {"channel": "phone", "public_id": "mine", "published": True}, {"description": "x"},
     {"channel": "carrier-pigeon"}],
)  # fmt: skip
async def test_work_order_fields_are_typed_and_bounded(
    client: TestClient, body: dict[str, Any]
) -> None:
    """Each of these was stored as given (a 500 on PostgreSQL for the too-long ones)."""
    await refused(await client.post("/api/workorders", json=body, headers=OPERATOR), 400)
    patch = {k: v for k, v in body.items() if k != "channel"}
    if "channel" in body and patch:  # the same field when an order is corrected
        number = await new_order(client)
        resp = await client.patch(f"/api/workorders/{number}", json=patch, headers=OPERATOR)
        await refused(resp, 400)


async def test_bodies_routes_and_methods_share_the_shape(client: TestClient) -> None:
    number = await new_order(client)
    url = f"/api/workorders/{number}/sign"
    for data, status, code in (
        (b"{not json", 400, "invalid_input"),
        (b"[1, 2]", 400, "invalid_input"),
        (b"null", 400, "invalid_input"),
    ):
        headers = OPERATOR | {"Content-Type": "application/json"}
        await refused(await client.post(url, data=data, headers=headers), status, code)
    headers = OPERATOR | {"Content-Type": "text/plain"}
    await refused(await client.post(url, data=b"note", headers=headers), 415)
    await refused(await client.get("/api/nothing-here"), 404, "not_found")
    await refused(await client.delete("/api/workorders", headers=OPERATOR), 405)
    await refused(await client.post(f"/api/workorders/{number}/fly", json={}, headers=OPERATOR),
                  404, "not_found")  # fmt: skip
    await refused(await client.get("/api/workorders"), 401, "unauthenticated")
    await refused(await client.get("/api/calls"), 401, "unauthenticated")
    await refused(await client.get("/api/calls?limit=abc", headers=LEAD), 400)
    await refused(await client.get("/api/calls?limit=-1", headers=LEAD), 400)
    assert (await client.get("/api/calls?limit=3", headers=LEAD)).status == 200
    await refused(await client.get("/api/status/not-a-number"), 404, "not_found")
    await refused(
        await client.post("/api/workorders", data=io.BytesIO(b"x" * (2 * 1024 * 1024)),
                          headers=OPERATOR | {"Content-Type": "application/json"}),
        413, "payload_too_large",
    )  # fmt: skip


async def test_open311_json_follows_georeport_schemas(client: TestClient) -> None:
    services = await (await client.get("/open311/v2/services.json")).json()
    jsonschema_rs.validate(GEOREPORT_SERVICES, services)
    form = {"api_key": KEY, "service_code": "road", "address_id": "A-17",
            "attribute[PUBLISH]": "yes"}  # fmt: skip
    assert (await client.post("/open311/v2/requests.json", data=form)).status == 200
    requests = await (await client.get("/open311/v2/requests.json")).json()
    assert requests and "lat" not in requests[0] and "expected_datetime" not in requests[0]
    jsonschema_rs.validate(GEOREPORT_REQUESTS, requests)


async def test_open311_oversized_and_malformed_requests(client: TestClient) -> None:
    """GeoReport's own error list (the documented exception), never a bare 413 or a 500."""
    url = "/open311/v2/requests"
    big = urlencode({"api_key": KEY, "service_code": "noise", "description": "长" * 400_000})
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    broken = b'--xyz\r\nContent-Disposition: form-data; name="api_key"\r\n\r\nkey\r\n--'
    for fmt in ("json", "xml"):
        for resp in (
            await client.post(f"{url}.{fmt}", data=io.BytesIO(big.encode()), headers=form),
            await client.post(f"{url}.{fmt}", data=broken,
                              headers={"Content-Type": "multipart/form-data; boundary=xyz"}),
            await client.post(f"{url}.{fmt}", data=b"%zz=\xff\xfe",
                              headers={"Content-Type": "application/x-www-form-urlencoded"}),
        ):  # fmt: skip
            assert resp.status in (400, 403), await resp.text()
            if fmt == "json":
                jsonschema_rs.validate(GEOREPORT_ERRORS, await resp.json())
            else:
                assert xml(await resp.text()).tag == "errors"
