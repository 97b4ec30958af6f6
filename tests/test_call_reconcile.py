"""Open call records of calls Asterisk no longer has are closed (calls.reconcile): a live call
and a record too young to judge stay open. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sql_databases import fresh_database

from calls.callerid import parse_caller_id
from calls.reconcile import UNHEARD, close_ended
from calls.store import CallStore
from db.base import Base, utcnow
from hotline.database import import_models, make_sessions


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_records_of_calls_asterisk_no_longer_has_are_closed(
    kind: str, tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as engine:
        import_models()
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        calls = CallStore(make_sessions(engine))
        old = utcnow() - timedelta(minutes=5)
        caller = parse_caller_id("13912345678")
        for uniqueid in ("talking", "gone"):
            await calls.open(uniqueid, f"PJSIP/citizens-{uniqueid}", caller, started_at=old)
        await calls.open("new", "PJSIP/citizens-new", caller)  # its channel may not be listed
        await calls.open("ended", "PJSIP/citizens-ended", caller, started_at=old)
        await calls.close("ended", cause=16, cause_text="Normal Clearing")
        asked = []

        async def live() -> set[str]:
            asked.append(True)
            return {"talking"}

        assert await close_ended(calls, live) == 1
        gone = await calls.get("gone")
        assert gone is not None and gone["ended_at"] and gone["hangup_cause_text"] == UNHEARD
        for open_ in ("talking", "new"):
            record = await calls.get(open_)
            assert record is not None and record["ended_at"] is None, open_
        ended = await calls.get("ended")
        assert ended is not None and ended["hangup_cause_text"] == "Normal Clearing"
        assert await close_ended(calls, live) == 0
        assert len(asked) == 2
        # Several boxes on one database: each engine closes only its own box's calls.
        await calls.open("box-b-1.1", "PJSIP/citizens-b", caller, started_at=old)
        assert await close_ended(calls, live, box="box-a") == 0
        assert await close_ended(calls, live, box="box-b") == 1
