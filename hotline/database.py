"""The SQL database every domain stores into: one async engine, the schema by migration.

SQLite file by default (``sqlite+aiosqlite``), PostgreSQL by URL (``postgresql+asyncpg``).
Domain packages declare their tables on :class:`db.base.Base`; the schema is Alembic's
(``migrations/``): :func:`create_schema` upgrades the database to the latest revision. A
table or column change needs a new revision: ``alembic revision --autogenerate -m "..."``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from db.base import Base
from hotline.private import FILE_MODE, private_file

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# The first revision: the schema as create_all made it before migrations existed.
BASELINE_REVISION = "0001"
_MIGRATION_LOCK = 12345  # PostgreSQL advisory lock: engines starting together migrate once


def make_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url, pool_pre_ping=True)
    file = engine.url.database
    if engine.url.get_backend_name() == "sqlite" and file and file != ":memory:":
        # citizens' data: 0600 from the first byte (SQLite gives its journals the same mode)
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT, FILE_MODE))
        private_file(Path(file))
    return engine


def make_sessions(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


def import_models() -> None:
    """Import every domain's tables so that they are registered on :class:`db.base.Base`."""
    import accounts.models  # noqa: F401
    import calls.models  # noqa: F401
    import intake.models  # noqa: F401
    import knowledge.models  # noqa: F401
    import queueing.tables  # noqa: F401
    import revisit.models  # noqa: F401
    import workorders.models  # noqa: F401


def in_models(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name``: whether a database object is compared with the models.
    The knowledge base's search index (an FTS5 table with its shadow tables and triggers,
    or a GIN index) is made by its migration, not declared on the models."""
    from knowledge.models import is_search_index

    return not is_search_index(name)


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration for migrating over ``connection`` (see migrations/env.py)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade_to_head(connection: Connection) -> None:
    """Bring the database on ``connection`` to the latest revision (blocking, idempotent)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config = alembic_config(connection)
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables and "work_orders" in tables:
        log.warning(
            "database made before migrations: completing the first revision's tables and "
            "marking it %s",
            BASELINE_REVISION,
        )
        import_models()
        Base.metadata.create_all(connection)
        command.stamp(config, BASELINE_REVISION)
    command.upgrade(config, "head")


async def create_schema(engine: AsyncEngine) -> None:
    """Upgrade the database to the latest migration (creates every table on a fresh one)."""
    async with engine.begin() as conn:
        await conn.run_sync(upgrade_to_head)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
