"""Alembic environment: the tables every domain declares on ``db.base.Base``.

The engine runs migrations through :func:`hotline.database.create_schema`, which hands its
own connection in ``config.attributes["connection"]``; the ``alembic`` command line connects
to the URL in ``sqlalchemy.url`` or, if unset, the one the hotline settings name.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from db.base import Base, UTCDateTime
from hotline.database import import_models, in_models

config = context.config
import_models()
target_metadata = Base.metadata


def render_item(kind: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write our UTC timestamp type as the plain column type it stores."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copy
        render_item=render_item,
        compare_type=True,
        include_name=in_models,  # the knowledge base's search index is the migration's own
    )
    with context.begin_transaction():
        context.run_migrations()


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from hotline.settings import Settings

    return Settings.load().effective_database_url


async def run_online() -> None:
    engine = create_async_engine(database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_with)
            await connection.commit()
    finally:
        await engine.dispose()


given: Connection | None = config.attributes.get("connection")
if given is not None:
    run_with(given)
else:
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(run_online())
