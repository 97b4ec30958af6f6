"""Benchmark: how long the operator's desk waits for what it shows (web/live.py, web/desk.py).

Starts the engine without Asterisk (real Redis and SQLite, every route the engine mounts),
logs in one operator per seat and opens their ``/api/live`` streams (aiohttp as the
browser's EventSource), then measures two paths:

* call: the engine's call listeners announce a caller put through to a seat (as the ACD
  connector does once the bridge is up); the desk's context is gathered (the order opened,
  the call record, earlier orders and calls) and the ``call`` event reaches that seat's
  stream. The number has ``--history`` earlier orders.
* seat: the ACD changes a seat's state in Redis (Lua, as the seat API or a feature code
  does); the engine's ``live-events`` loop (web.fanout) reads the event log and the ``acd`` event
  reaches the stream.

Usage::

    python -m bench.desk_pop [--calls 50] [--history 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from accounts.users import AccountRole
from calls.lifecycle import ConnectedCall
from hotline.engine import Hotline
from hotline.settings import Settings
from sipsim.ports import SHIFTS, engine_ports
from workorders.orders import Actor, NewWorkOrder, Role

PIN = "2468"
SEAT = "8001"


async def next_event(lines: aiohttp.StreamReader, topic: str) -> dict[str, object]:
    name = ""
    while True:
        line = (await lines.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name == topic:
            data: dict[str, object] = json.loads(line[6:])
            return data


def report(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(f"{name}: n={len(ms)} p50={statistics.median(ms):.1f} ms p99={p99:.1f} ms "
          f"max={ms[-1]:.1f} ms")  # fmt: skip


REDIS_URL = os.environ.get("HOTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")  # a scratch Redis


async def run(calls: int, history: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-desk-"))
    prefix = f"bench-desk-{os.getpid()}:acd:"
    s = Settings.load(environ={"HOTLINE_REDIS_URL": REDIS_URL}).replace(
        data_dir=base / "var", recordings_dir=base / "recordings", manage_asterisk=False,
        acd_prefix=prefix, **engine_ports(SHIFTS["bench-desk-pop"]),
    )  # fmt: skip
    hotline = Hotline(s)
    await hotline.start()
    try:
        accounts = hotline.accounts.accounts
        await accounts.add_user("bench-op", AccountRole.OPERATOR, extension=SEAT, actor="bench")
        token = await accounts.issue_token("bench-op", actor="bench")
        number = "13900000000"
        for i in range(history):
            await hotline.work_orders.create(
                NewWorkOrder(channel="phone", caller_phone=number, subject=f"earlier {i}"),
                Actor("bench", Role.OPERATOR),
            )
        url = f"http://{s.web_host}:{s.web_port}/api/live?topics=call,acd"
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as stream:
            call_s, seat_s = [], []
            for i in range(calls):
                call = ConnectedCall(f"bench-{os.getpid()}-{i}", "PJSIP/citizens-1", number, SEAT,
                                     f"PJSIP/{SEAT}-1", "report", datetime.now(UTC))  # fmt: skip
                started = time.perf_counter()
                waiting = asyncio.create_task(next_event(stream.content, "call"))
                await hotline.live.connected(call)
                event = await asyncio.wait_for(waiting, 10)
                call_s.append(time.perf_counter() - started)
                assert event["call_id"] == call.call_id
                started = time.perf_counter()
                waiting = asyncio.create_task(next_event(stream.content, "acd"))
                if i % 2 == 0:
                    await hotline.acd.login(SEAT, PIN)
                else:
                    await hotline.acd.logout(SEAT)
                await asyncio.wait_for(waiting, 10)
                seat_s.append(time.perf_counter() - started)
        report(f"call -> desk (context with {history} earlier orders)", call_s)
        report("seat state in Redis -> desk", seat_s)
    finally:
        await hotline.stop()
        redis = aioredis.Redis.from_url(REDIS_URL)
        keys = [key async for key in redis.scan_iter(f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--history", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.history))


if __name__ == "__main__":
    main()
