"""Fresh test databases: a SQLite file, or a PostgreSQL schema of the test's own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
KINDS = ["sqlite", "postgresql"]


@asynccontextmanager
async def fresh_database(kind: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty database of ``kind``; PostgreSQL gets its own schema (dropped afterwards) so
    test suites sharing the server stay apart, and is skipped if the server is unreachable."""
    if kind == "sqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    schema = f"test_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(PG_URL)
    try:
        async with asyncio.timeout(5), admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except (OSError, TimeoutError) as exc:
        await admin.dispose()
        pytest.skip(f"PostgreSQL at {PG_URL} unreachable: {exc}")
    engine = create_async_engine(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()
