"""Alembic migrations: a fresh database upgraded to head has every table, exactly as the models
declare them (no drift), on SQLite and PostgreSQL; upgrading twice is harmless; a database
made by create_all before migrations existed is adopted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hotline.database import Base, create_schema, import_models

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
EXPECTED = {
    "alembic_version",
    "call_records",
    "call_events",
    "work_orders",
    "work_order_events",
    "work_order_counters",
    "call_recordings",
    "acd_events",
}


async def _postgres(schema: str) -> AsyncEngine:
    admin = create_async_engine(PG_URL)
    try:
        async with asyncio.timeout(5), admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except (OSError, TimeoutError) as exc:
        pytest.skip(f"PostgreSQL at {PG_URL} unreachable: {exc}")
    finally:
        await admin.dispose()
    return create_async_engine(PG_URL, connect_args={"server_settings": {"search_path": schema}})


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    schema = f"mig_test_{uuid.uuid4().hex[:8]}"
    if request.param == "sqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    else:
        engine = await _postgres(schema)
    yield engine
    await engine.dispose()
    if request.param == "postgresql":
        admin = create_async_engine(PG_URL)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _drift(conn: Connection) -> list[object]:
    import_models()
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


async def test_fresh_database_upgrades_to_the_models(fresh: AsyncEngine) -> None:
    await create_schema(fresh)
    async with fresh.connect() as conn:
        assert await conn.run_sync(_tables) == EXPECTED
        assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        assert await conn.run_sync(_drift) == [], "models changed without a migration"
    await create_schema(fresh)  # the engine runs it at every start
    async with fresh.connect() as conn:
        assert await conn.run_sync(_tables) == EXPECTED


async def test_database_made_before_migrations_is_adopted(fresh: AsyncEngine) -> None:
    import_models()
    legacy = [t for t in Base.metadata.sorted_tables if t.name != "call_recordings"]
    async with fresh.begin() as conn:
        await conn.run_sync(Base.metadata.create_all, tables=legacy)
        await conn.execute(
            text("INSERT INTO work_order_counters (day, last) VALUES ('20260101', 7)")
        )
    await create_schema(fresh)
    async with fresh.connect() as conn:
        assert await conn.run_sync(_tables) == EXPECTED
        kept = await conn.execute(text("SELECT last FROM work_order_counters"))
        assert kept.scalar_one() == 7
        assert await conn.run_sync(_drift) == []
