"""Several boxes on one Redis: an engine reconciles the seats on its own box's calls only,
and frees a seat left on a call of a box whose engine is gone (queueing.recovery)."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from agents.seats import load_seats
from agents.states import SeatState
from hotline.settings import PROJECT_DIR
from queueing.acd import Acd
from queueing.channels import Channel
from queueing.dialing import DialWatch
from queueing.dispatcher import Dispatcher
from queueing.ownership import Ownership
from queueing.recovery import Recovery

SEATS = load_seats(PROJECT_DIR / "agents" / "seats.toml")


async def _no_channels() -> list[Channel]:
    return []  # box a's Asterisk has none of box b's calls


async def _hangup(_channel: str) -> None:
    raise AssertionError("nothing to hang up on box a")


async def test_seats_on_another_box_s_calls(redis: Redis, prefix: str) -> None:
    b = Acd(redis, SEATS, prefix=prefix, owner="engine-b")
    await b.register_seats()
    for ext in ("8001", "8002"):
        await b.login(ext, "2468")
    now = time.time()
    # 8001: connected by box b's own Queue() (no ACD entry; box b's engine follows it)
    await b.native("connect", "hotline12345-b-1.1", seat="8001", skill="report", at=now)
    # 8002: answered a caller box b's engine holds
    await b.enqueue("hotline12345-b-1.2", "report", now=now)
    assert [a.seat for a in await b.dispatch_once()] == ["8002"]
    await b.answered("hotline12345-b-1.2")

    a = Acd(redis, SEATS, prefix=prefix, owner="engine-a")
    ownership = Ownership(redis, prefix, "engine-a")
    recovery = Recovery(a, Dispatcher(a, ownership=ownership), ownership, _no_channels,
                        DialWatch(), _hangup, box="hotline12345-a")  # fmt: skip
    await Ownership(redis, prefix, "engine-b").renew()  # box b's engine lives
    await recovery.reconcile()
    assert (await a.seat("8001")).state is SeatState.ON_CALL
    assert (await a.seat("8002")).state is SeatState.ON_CALL

    await redis.delete(f"{prefix}engine:engine-b")  # box b's engine is gone: its lease expired
    await recovery.reconcile()
    assert (await a.seat("8001")).state is SeatState.ON_CALL  # box b's queue call: not ours
    assert (await a.seat("8002")).state is not SeatState.ON_CALL
    assert (await a.seat("8002")).state is not SeatState.PAUSED
