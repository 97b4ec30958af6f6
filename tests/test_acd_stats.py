"""Statistics from the ACD's event log (pure figures; the SQL writer against real Redis and
SQLite), and the configuration the seats file renders for Asterisk."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import create_async_engine

from agents.seats import SeatsError, parse_seats
from hotline import wiring
from hotline.database import create_schema, make_sessions
from hotline.settings import PROJECT_DIR, Settings
from ivr.menu import load_menu
from pbx.config import render_all
from queueing.models import AcdSnapshot, QueueStats
from queueing.stats import EventLogWriter, _figures, queue_figures


def row(type_: str, call: str, data: str = "", skill: str = "report") -> SimpleNamespace:
    return SimpleNamespace(type=type_, call_id=call, data=data, skill=skill, seat="8001")


def test_figures_follow_the_call_center_definitions() -> None:
    rows = [
        row("enter", "a"), row("enter", "b"), row("enter", "c"),
        row("offer", "a", "5000"), row("connect", "a", "5000"),
        row("requeue", "b", "no-answer"), row("connect", "b", "20000"),
        row("abandon", "c", "30000"),
        row("complete", "a", "60000"), row("complete", "b", "120000"),
    ]  # fmt: skip
    f = _figures("report", rows, 15.0, (2, 42.0, 1))
    assert (f.offered, f.answered, f.abandoned, f.answered_within_sl) == (3, 2, 1, 1)
    assert f.service_level == pytest.approx(1 / 3, abs=1e-4)
    assert f.answer_rate == pytest.approx(2 / 3, abs=1e-4)
    assert f.asa_s == 12.5 and f.aht_s == 90.0
    assert (f.waiting, f.longest_wait_s, f.callbacks_waiting) == (2, 42.0, 1)


def test_a_callback_not_reached_is_not_answered() -> None:
    """The seat answered callback "a" (connect) and its citizen did not: neither answered nor
    in ASA/AHT nor in the service level's calls; counted as a callback not reached."""
    rows = [
        row("enter", "a"), row("connect", "a", "40000"), row("unreached", "a", "4000"),
        row("enter", "b"), row("connect", "b", "5000"), row("complete", "b", "60000"),
    ]  # fmt: skip
    f = _figures("report", rows, 15.0, (0, 0.0, 0))
    assert (f.offered, f.answered, f.abandoned, f.callbacks_unreached) == (2, 1, 0, 1)
    assert (f.asa_s, f.aht_s, f.service_level, f.answer_rate) == (5.0, 60.0, 1.0, 1.0)


def test_a_call_put_through_to_a_second_seat_is_answered_once_with_its_own_wait() -> None:
    """Call "a" waited 20 s for seat 8001, which put it through to a seat reached by name
    (connect again, with 0: queueing.direct): one answered call, its wait 20 s, two talks."""
    rows = [
        row("enter", "a"), row("connect", "a", "20000"), row("complete", "a", "30000"),
        row("connect", "a", "0"), row("complete", "a", "90000"),
    ]  # fmt: skip
    f = _figures("report", rows, 15.0, (0, 0.0, 0))
    assert (f.offered, f.answered, f.answered_within_sl) == (1, 1, 0)
    assert (f.asa_s, f.aht_s) == (20.0, 60.0)


def test_no_calls_no_ratios() -> None:
    f = _figures("report", [], 15.0, (0, 0.0, 0))
    assert f.service_level is None and f.answer_rate is None and f.asa_s is None


async def test_event_log_reaches_sql_once(tmp_path: Path) -> None:
    redis = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    prefix = f"hotline-stats-test-{uuid.uuid4().hex[:8]}:"
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'stats.db'}")
    try:
        await create_schema(engine)
        for type_, call, data in [("enter", "x", "139"), ("connect", "x", "3000"),
                                  ("complete", "x", "9000")]:  # fmt: skip
            fields = {"type": type_, "ts": "1000", "call": call, "seat": "8001",
                      "skill": "report", "data": data}  # fmt: skip
            await redis.xadd(f"{prefix}events", fields)  # type: ignore[arg-type]
        writer = EventLogWriter(redis, prefix, make_sessions(engine))
        assert await writer.catch_up() == 3
        assert await writer.catch_up() == 0
        again = EventLogWriter(redis, prefix, make_sessions(engine))  # a restarted engine
        again.last_id = await again._resume_point()
        assert await again.catch_up() == 0
        snapshot = AcdSnapshot(at=2.0, queues=(QueueStats("report", 0, 0, 0.0, 1, 1, 9.0),),
                               seats=())  # fmt: skip
        stats = await queue_figures(make_sessions(engine), snapshot, since=0)
        assert stats["overall"]["answered"] == 1 and stats["overall"]["aht_s"] == 9.0
        assert stats["events_stored"] == 3
    finally:
        await redis.delete(f"{prefix}events")
        await redis.aclose()
        await engine.dispose()


def test_seats_render_pjsip_and_the_fallback_queues(tmp_path: Path) -> None:
    settings = Settings.load(environ={}).replace(data_dir=tmp_path, seat_qualify_s=0)
    menu = load_menu(settings.menu_file)
    rendered = render_all(wiring.pbx_config(settings, menu))
    queues = rendered["queues.conf"]
    for skill in ("report", "consultation", "business", "operator"):
        assert f"[hotline-{skill}]" in queues
    assert "member => PJSIP/8003,0,Zhang Min,PJSIP/8003" in queues
    assert "[8001-auth]" in rendered["pjsip_seats.conf"]
    assert "qualify_frequency=0" in rendered["pjsip_seats.conf"]
    assert "Queue(hotline-${EXTEN}" in rendered["extensions.conf"]
    assert "[hotline-relax]" in rendered["queuerules.conf"]


def test_a_menu_queue_without_a_skill_is_refused() -> None:
    text = (PROJECT_DIR / "agents" / "seats.toml").read_text(encoding="utf-8")
    text = text.replace("[skills.business]", "[skills.businesses]").replace(
        "business = ", "businesses = "
    )
    seats = parse_seats(text)
    menu = load_menu(Settings.load(environ={}).menu_file)
    with pytest.raises(SeatsError, match="business"):
        wiring.check_menu_queues(menu, seats)
