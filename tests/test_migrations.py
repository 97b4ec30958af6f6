"""Alembic migrations: a fresh database upgraded to head has every table, exactly as the models
declare them (no drift), on SQLite and PostgreSQL; upgrading twice is harmless; a database
made by create_all before migrations existed is adopted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sql_databases import KINDS, fresh_database
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from db.base import Base
from hotline.database import create_schema, import_models, in_models

EXPECTED = {
    "alembic_version",
    "call_records",
    "call_events",
    "work_orders",
    "work_order_events",
    "work_order_counters",
    "call_recordings",
    "acd_events",
    "users",
    "api_tokens",
    "web_sessions",
    "audit_log",
    "revisits",
    "revisit_attempts",
    "knowledge_entries",
    "callbacks",
}


@pytest.fixture(params=KINDS)
async def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with fresh_database(request.param, tmp_path) as engine:
        yield engine


def _tables(conn: Connection) -> set[str]:
    """The tables the models declare (the knowledge base's search index is tested apart:
    tests/test_knowledge.py)."""
    return {name for name in inspect(conn).get_table_names() if in_models(name, "table", {})}


def _drift(conn: Connection) -> list[object]:
    import_models()
    return list(
        compare_metadata(
            MigrationContext.configure(conn, opts={"include_name": in_models}), Base.metadata
        )
    )


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
