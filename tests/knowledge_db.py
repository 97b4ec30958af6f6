"""A knowledge base for tests: a fresh SQLite or PostgreSQL database migrated as the engine
does (``create_schema``), the work orders on it with a settable clock, and the knowledge
service the engine's wiring builds on them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sql_databases import fresh_database
from sqlalchemy.ext.asyncio import AsyncEngine
from web_client import Clock

from hotline.database import create_schema, make_sessions
from hotline.wiring import knowledge_base
from knowledge.service import KnowledgeService
from workorders.dispatch import DispatchRules
from workorders.service import WorkOrderService
from workorders.timelimits import TimeLimits


@dataclass
class KnowledgeDb:
    kind: str
    engine: AsyncEngine
    clock: Clock
    orders: WorkOrderService
    service: KnowledgeService


@asynccontextmanager
async def knowledge_db(kind: str, tmp_path: Path) -> AsyncIterator[KnowledgeDb]:
    async with fresh_database(kind, tmp_path) as engine:
        await create_schema(engine)
        clock = Clock()
        orders = WorkOrderService(
            make_sessions(engine), DispatchRules.load(), TimeLimits.load(), clock=clock
        )
        yield KnowledgeDb(kind, engine, clock, orders, await knowledge_base(orders))
