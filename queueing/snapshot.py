"""The ACD's live figures read from Redis: waiting per queue, longest wait, seats by state."""

from __future__ import annotations

from collections import Counter
from typing import Any

from redis.asyncio import Redis

from agents.states import SeatState, SeatStatus
from queueing.models import AcdSnapshot, QueueStats


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def read_snapshot(
    redis: Redis, prefix: str, skills: list[str], now_s: float, default_aht_s: float
) -> AcdSnapshot:
    """One consistent-enough read (pipelined, not atomic: figures for a screen)."""
    p = prefix
    extensions = sorted(_s(e) for e in await redis.smembers(f"{p}seats"))
    pipe = redis.pipeline(transaction=False)
    for skill in skills:
        pipe.zcard(f"{p}q:{skill}")
        pipe.zrange(f"{p}qt:{skill}", 0, 0, withscores=True)
        pipe.smembers(f"{p}staff:{skill}")
        pipe.hget(f"{p}aht", skill)
    pipe.smembers(f"{p}callbacks")
    for ext in extensions:
        pipe.hgetall(f"{p}seat:{ext}")
    results = await pipe.execute()
    callbacks = {_s(c) for c in results[4 * len(skills)]}
    cb_pipe = redis.pipeline(transaction=False)
    for call_id in sorted(callbacks):
        cb_pipe.hget(f"{p}call:{call_id}", "skill")
    cb_skills = Counter(_s(s) for s in await cb_pipe.execute() if s)
    seats = tuple(
        seat_status(ext, {_s(k): _s(v) for k, v in raw.items()})
        for ext, raw in zip(extensions, results[4 * len(skills) + 1 :], strict=True)
        if raw
    )
    available = {s.extension for s in seats if s.state is SeatState.AVAILABLE}
    queues = []
    for i, skill in enumerate(skills):
        waiting, oldest, staff, aht = results[4 * i : 4 * i + 4]
        queues.append(
            QueueStats(
                skill=skill,
                waiting=int(waiting),
                callbacks=cb_skills.get(skill, 0),
                longest_wait_s=max(0.0, now_s - oldest[0][1] / 1000) if oldest else 0.0,
                staffed=len(staff),
                available=len({_s(e) for e in staff} & available),
                aht_s=float(_s(aht)) / 1000 if aht else default_aht_s,
            )
        )
    return AcdSnapshot(
        at=now_s,
        queues=tuple(queues),
        seats=seats,
        seats_by_state=dict(Counter(s.state.value for s in seats)),
    )


def seat_status(extension: str, h: dict[str, str]) -> SeatStatus:
    def seconds(name: str) -> float:
        return float(h.get(name) or 0) / 1000

    return SeatStatus(
        extension=extension,
        state=SeatState(h.get("state", "logged_out")),
        since=seconds("since"),
        reason=h.get("reason", ""),
        call_id=h.get("call", ""),
        idle_since=seconds("idle"),
        ring_until=seconds("ring_until"),
        wrap_until=seconds("wrap_until"),
    )
