"""Broadcast announcements (ivr/announcements.py) in the test Redis with the IVR's real
prompt synthesiser: what a supervisor may post, what callers get until it expires, and
that a Redis failure sends callers straight to the menu. The route through Asterisk:
tests/test_supervisor_controls.py."""

from __future__ import annotations

import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_channel import FakeChannel, agi_call, hang_up, stream
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import create_async_engine

from calls.store import CallStore
from hotline.database import create_schema, make_sessions
from hotline.settings import PROJECT_DIR
from ivr.announcements import AnnouncementError, Announcements
from ivr.menu import load_menu
from ivr.prompts import PromptLibrary
from ivr.session import IvrSession

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def store(redis: Redis, prefix: str, tmp_path: Path, clock: Clock) -> Announcements:
    library = PromptLibrary(tmp_path / "prompts", {"zh": "cmn", "en": "en"})
    return Announcements(redis, prefix, library, ("zh", "en"), clock=clock)


@pytest.mark.parametrize(
    ("texts", "expires_at", "why"),
    [
        ({}, NOW + timedelta(hours=1), "at least one"),
        ({"fr": "Coupure"}, NOW + timedelta(hours=1), "not a language"),
        ({"zh": "  "}, NOW + timedelta(hours=1), "non-empty"),
        ({"zh": 5}, NOW + timedelta(hours=1), "non-empty string"),
        ({"zh": "停水" * 251}, NOW + timedelta(hours=1), "longer than 500"),
        ({"en": "water\x1b[2J"}, NOW + timedelta(hours=1), "control characters"),
        ({"zh": "停水"}, NOW - timedelta(seconds=1), "in the past"),
        ({"zh": "停水"}, NOW + timedelta(days=32), "31 days"),
        ({"zh": "停水"}, datetime(2026, 12, 7, 18, 0), "offset"),
    ],
)
async def test_what_a_supervisor_may_not_post(
    redis: Redis, prefix: str, tmp_path: Path, texts: dict[str, Any], expires_at: datetime,
    why: str,
) -> None:  # fmt: skip
    with pytest.raises(AnnouncementError, match=why):
        await store(redis, prefix, tmp_path, Clock()).add(texts, expires_at, "lead")
    assert await redis.hlen(f"{prefix}announcements") == 0


async def test_callers_hear_it_in_menu_language_order_until_it_expires(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    clock = Clock()
    announcements = store(redis, prefix, tmp_path, clock)
    until = NOW + timedelta(minutes=30)
    made = await announcements.add({"en": "Water outage.", "zh": "东城区停水。"}, until, "lead")
    assert list(made.texts) == ["zh", "en"] and made.created_by == "lead"
    assert [a.id for a in await announcements.current()] == [made.id]
    files = await announcements.playable()
    assert [(p.id, p.language) for p, _ in files] == [(made.id, "zh"), (made.id, "en")]
    for _, path in files:
        with wave.open(str(path) + ".wav") as sound:
            assert sound.getframerate() == 8000 and sound.getnframes() > 4000  # > 0.5 s

    clock.now = until
    assert await announcements.current() == []
    assert await announcements.playable() == []
    assert await redis.hlen(f"{prefix}announcements") == 0  # the expired one is gone


async def test_removed_early(redis: Redis, prefix: str, tmp_path: Path) -> None:
    announcements = store(redis, prefix, tmp_path, Clock())
    made = await announcements.add({"zh": "停水。"}, NOW + timedelta(hours=1), "lead")
    assert await announcements.remove(made.id)
    assert not await announcements.remove(made.id)
    assert await announcements.playable() == []


async def test_redis_down_sends_callers_straight_to_the_menu(tmp_path: Path) -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    try:
        assert await store(dead, "x:", tmp_path, Clock()).playable() == []
    finally:
        await dead.aclose()


async def test_the_ivr_plays_them_before_the_menu(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    """The engine's IVR route on a scripted call: each language of the announcement is
    streamed (a key may skip it) before the menu's first prompt, and is in the journey."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    await create_schema(engine)
    calls = CallStore(make_sessions(engine))
    menu = load_menu(PROJECT_DIR / "ivr" / "menu.toml")
    clock = Clock()
    announcements = store(redis, prefix, tmp_path, clock)
    made = await announcements.add(
        {"zh": "停水。", "en": "No water."}, NOW + timedelta(hours=1), "l"
    )
    zh, en = [str(path) for _, path in await announcements.playable()]
    library = PromptLibrary(tmp_path / "menu-prompts", menu.voices)
    channel = FakeChannel(agi_call("1800000000.9"), [stream([zh]), stream([en]), hang_up()])
    try:
        await IvrSession(menu, library, calls, announcements=announcements.playable).run(channel)
        channel.check()
        record = await calls.get("1800000000.9")
        assert record is not None
        kinds = [(s["kind"], s["detail"]) for s in record["journey"]]
        assert kinds[:2] == [("announcement", made.id)] * 2 and kinds[2][0] == "menu", kinds
    finally:
        await engine.dispose()
