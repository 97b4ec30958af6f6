"""The SMS webhook's replay check is shared by every engine on one Redis: a signed request
one engine took is refused by another (the real Redis, two web applications mounted by the
engine's own wiring, one database). A Redis that cannot be asked refuses with 503."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlencode

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import PORT_OFFSET
from sql_databases import fresh_database
from web_client import work_order_service

from hotline.secrets import stored_secret
from hotline.settings import Settings
from hotline.wiring import work_order_routes
from queueing.redis_server import RedisServer
from workorders.service import WorkOrderService
from workorders.sms import MAX_SKEW_S, sign

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _engine_app(settings: Settings, service: WorkOrderService, redis: aioredis.Redis) -> TestClient:
    app = web.Application()
    work_order_routes(settings, service, redis)(app)
    return TestClient(TestServer(app))


async def _post(client: TestClient, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    resp = await client.post("/sms/inbound", data=body, headers=FORM | headers)
    return resp.status, await resp.json()


async def test_a_request_one_engine_took_is_refused_by_another(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", 6695 + PORT_OFFSET, secrets.token_urlsafe(16))
    server.start()
    settings = Settings.load(environ={}).replace(
        data_dir=tmp_path / "var", acd_prefix=f"hotline-sms-{os.getpid()}:"
    )
    secret = stored_secret(settings.data_dir, "sms_gateway_secret")
    redis_a = aioredis.Redis.from_url(server.url, socket_timeout=2)
    redis_b = aioredis.Redis.from_url(server.url, socket_timeout=2)
    try:
        async with fresh_database("sqlite", tmp_path) as engine:
            service = await work_order_service(engine)
            async with (
                _engine_app(settings, service, redis_a) as a,
                _engine_app(settings, service, redis_b) as b,
            ):
                body = urlencode({"from": "13800138000", "text": "东大街有人占道摆摊"}).encode()
                stamp = str(int(time.time()))
                headers = {"X-Hotline-Timestamp": stamp,
                           "X-Hotline-Signature": sign(secret, stamp, body)}  # fmt: skip
                status, first = await _post(a, body, headers)
                assert status == 200, first
                status, again = await _post(b, body, headers)  # replayed to the other engine
                assert status == 401 and "replay" in again["error"]["message"], again
                assert (await _post(a, body, headers))[0] == 401
                keys = [k async for k in redis_a.scan_iter(f"{settings.acd_prefix}sms:seen:*")]
                assert len(keys) == 1
                assert 0 < await redis_a.ttl(keys[0]) <= MAX_SKEW_S + 1

                other = urlencode({"from": "13800138001", "text": "路灯不亮"}).encode()
                fresh = {"X-Hotline-Timestamp": stamp,
                         "X-Hotline-Signature": sign(secret, stamp, other)}  # fmt: skip
                status, taken = await _post(b, other, fresh)
                assert status == 200 and taken["number"] != first["number"]

                server.stop()  # nobody can tell a replay now: refused, the gateway retries
                late = urlencode({"from": "13800138002", "text": "噪音扰民"}).encode()
                signed = {"X-Hotline-Timestamp": stamp,
                          "X-Hotline-Signature": sign(secret, stamp, late)}  # fmt: skip
                status, refused = await _post(a, late, signed)
                assert status == 503 and refused["error"]["code"] == "unavailable", refused
                assert not await service.find(caller_phone="13800138002")
    finally:
        await redis_a.aclose()
        await redis_b.aclose()
        server.stop()
