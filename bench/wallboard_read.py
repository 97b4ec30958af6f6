"""Benchmark of one read of the supervisor's figures (prints figures): what each wallboard
refresh after an ACD event, and each Prometheus scrape, costs.

A day of a big city's calls in SQLite (``--calls`` ACD calls since midnight, each entered,
connected or abandoned, completed: about four events a call, as queueing.stats stores
them), ``--orders`` work orders with deadlines, and the shipped seats in the test Redis with
callers waiting. Figures: p50/p99 of ``ReadingsSource.read`` (the ACD snapshot, today's
queue figures, calls, recordings, orders), of the /metrics text rendered from it, and the
reads per second that leaves for open wallboards.

    python -m bench.wallboard_read [--calls 22000] [--orders 20000] [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from redis.asyncio import Redis
from sqlalchemy import insert

from agents.seats import load_seats
from calls.store import CallStore
from hotline.database import create_schema, make_engine, make_sessions
from hotline.readings import ReadingsSource, local_midnight
from hotline.settings import PROJECT_DIR
from hotline.wiring import work_orders
from intake.store import RecordingStore
from queueing.acd import Acd
from queueing.tables import AcdEventRow
from web.metrics import ReadingsCollector
from workorders.models import WorkOrderRow


def acd_events(calls: int, since: float, skills: list[str], rng: random.Random) -> list[dict]:
    rows: list[dict] = []
    span = max(1.0, time.time() - since - 60)
    for n in range(calls):
        at = since + rng.random() * span
        call, skill, seat = f"bench-{n}", rng.choice(skills), f"80{rng.randint(1, 6):02d}"
        wait_ms = int(rng.expovariate(1 / 12_000))
        rows.append(dict(type="enter", at=at, call_id=call, seat="", skill=skill, data=""))
        if rng.random() < 0.05:
            rows.append(dict(type="abandon", at=at + wait_ms / 1000, call_id=call, seat="",
                             skill=skill, data=str(wait_ms)))  # fmt: skip
            continue
        for kind, data in (("offer", wait_ms), ("connect", wait_ms),
                           ("complete", int(rng.gauss(240_000, 60_000)))):  # fmt: skip
            rows.append(dict(type=kind, at=at + wait_ms / 1000, call_id=call, seat=seat,
                             skill=skill, data=str(data)))  # fmt: skip
    for i, row in enumerate(rows):
        row.update(stream_ms=i, stream_seq=0)
    return rows


def orders(count: int, rng: random.Random) -> list[dict]:
    now = datetime.now(UTC)
    states = ["dispatched", "signed", "in_progress", "replied", "archived", "answered"]
    return [
        dict(
            number=f"B{n:010d}",
            channel="phone",
            state=rng.choice(states),
            category="complaint",
            created_at=now - timedelta(days=rng.randint(0, 60)),
            updated_at=now,
            due_at=now + timedelta(hours=rng.uniform(-72, 240)),
            assisting_departments=[],
            attributes={},
        )  # fmt: skip
        for n in range(count)
    ]


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=22_000)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    rng = random.Random(12345)
    seats = load_seats(PROJECT_DIR / "agents" / "seats.toml")
    skills = [s.name for s in seats.skills]
    redis = Redis.from_url(args.redis)
    prefix = f"bench-wallboard-{uuid.uuid4().hex[:8]}:"
    with tempfile.TemporaryDirectory() as tmp:
        db = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        try:
            await create_schema(db)
            sessions = make_sessions(db)
            service = work_orders(sessions)
            since = local_midnight(datetime.now(UTC), service.limits.timezone).timestamp()
            events = acd_events(args.calls, since, skills, rng)
            async with sessions.begin() as session:
                for i in range(0, len(events), 5000):
                    await session.execute(insert(AcdEventRow), events[i : i + 5000])
                await session.execute(insert(WorkOrderRow), orders(args.orders, rng))
            acd = Acd(redis, seats, prefix=prefix)
            await acd.register_seats()
            for ext in ("8001", "8002", "8003"):
                await acd.login(ext, "2468")
                await acd.pause(ext, "bench")
            for n in range(50):
                await acd.enqueue(f"wait-{n}", rng.choice(skills), caller="13900000000")
            source = ReadingsSource(acd, sessions, CallStore(sessions), RecordingStore(sessions),
                                    service, 15.0)  # fmt: skip
            reads, renders = [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                readings = await source._read()
                reads.append(time.perf_counter() - started)
                started = time.perf_counter()
                registry = CollectorRegistry(auto_describe=False)
                registry.register(ReadingsCollector(readings))
                generate_latest(registry)
                renders.append(time.perf_counter() - started)
            overall = readings.figures["overall"]
            print(
                f"day: {args.calls} ACD calls ({len(events)} events), {args.orders} orders; "
                f"offered {overall['offered']}, answered {overall['answered']}, "
                f"service level {overall['service_level']}, overdue {readings.overdue}"
            )
            print(f"read   p50 {statistics.median(reads) * 1000:7.1f} ms  "
                  f"p99 {pct(reads, 0.99) * 1000:7.1f} ms  "
                  f"-> {1 / statistics.median(reads):5.1f} reads/s (one at a time)")  # fmt: skip
            print(
                f"render p50 {statistics.median(renders) * 1000:7.2f} ms  "
                f"p99 {pct(renders, 0.99) * 1000:7.2f} ms  (the /metrics text from a read)"
            )
        finally:
            await db.dispose()
            keys = [k async for k in redis.scan_iter(f"{prefix}*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
