"""Benchmark the knowledge base's Chinese search: import N entries (jieba's words for each,
the index kept by the database), then searches as operators type them. Prints the import
rate and search latency p50/p99 for SQLite (FTS5) and, if reachable, PostgreSQL (GIN);
not a test.

    python -m bench.knowledge_search [--entries 5000] [--searches 300] [--postgres URL]

Entries are the shipped seed's, each N/20 times with a numbered title and another seed
entry's content appended, so the words and their spread are real.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hotline.database import create_schema, make_sessions
from hotline.settings import PROJECT_DIR
from hotline.wiring import knowledge_base
from knowledge import files
from workorders.dispatch import DispatchRules
from workorders.service import WorkOrderService
from workorders.timelimits import TimeLimits

QUERIES = ("社保卡补办", "停水", "噪音扰民", "暖气不热怎么办", "公积金提取",
           "请问身份证丢了怎么补领", "电梯困人", "过期食品",
           "流动摊贩占道", "燃气泄漏")  # fmt: skip


def entries(count: int) -> list[dict[str, Any]]:
    seed = files.read(PROJECT_DIR / "knowledge" / "seed.json")
    made = []
    for i in range(count):
        base, other = seed[i % len(seed)], seed[(i * 7 + 3) % len(seed)]
        made.append({**base, "title": f"{base['title'][:100]} 第{i}号",
                     "content": f"{base['content']}\n{other['content']}"})  # fmt: skip
    return made


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def run(name: str, engine: AsyncEngine, count: int, searches: int) -> None:
    await create_schema(engine)
    orders = WorkOrderService(make_sessions(engine), DispatchRules.load(), TimeLimits.load())
    kb = await knowledge_base(orders)
    records = entries(count)
    started = time.perf_counter()
    await kb.import_entries(records, "bench")
    took = time.perf_counter() - started
    latencies, found = [], []
    for i in range(searches):
        query = QUERIES[i % len(QUERIES)]
        started = time.perf_counter()
        result = await kb.search(query, limit=20)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append(len(result.hits))
    print(f"{name:10} import {count} entries in {took:.1f} s ({count / took:.0f}/s); "
          f"search p50 {statistics.median(latencies):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms, "
          f"mean hits {statistics.mean(found):.1f} of at most 20")  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_async_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'kb.db'}")
        try:
            await run("SQLite", engine, args.entries, args.searches)
        finally:
            await engine.dispose()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(args.postgres)
    try:
        async with asyncio.timeout(5), admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except (OSError, TimeoutError) as exc:
        print(f"PostgreSQL at {args.postgres} unreachable: {exc}")
        await admin.dispose()
        return
    engine = create_async_engine(
        args.postgres, connect_args={"server_settings": {"search_path": schema}}
    )
    try:
        await run("PostgreSQL", engine, args.entries, args.searches)
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
