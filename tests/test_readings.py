"""The figures' reader shares reads among concurrent requests and never hands a request a
read that began before it (a wallboard asking after an ACD event must see that event)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, cast
from zoneinfo import ZoneInfo

from hotline.readings import Readings, ReadingsSource
from queueing.models import AcdSnapshot


class CountingSource(ReadingsSource):
    reads = 0

    async def _read(self) -> Readings:
        started = self.clock()
        self.reads += 1
        await asyncio.sleep(0.05)  # the Redis and SQL round trips
        return replace(EMPTY, at=started)


EMPTY = Readings(at=0.0, timezone=ZoneInfo("Asia/Shanghai"), acd=AcdSnapshot(0.0, (), ()),
                 figures={}, seat_names={}, calls={}, recordings={}, orders_by_state={},
                 overdue=0, near_deadline=0, deadlines=())  # fmt: skip


def source() -> CountingSource:
    owners = cast(Any, None)
    return CountingSource(owners, owners, owners, owners, owners, 15.0,
                          clock=asyncio.get_running_loop().time)  # fmt: skip


async def test_a_burst_of_requests_costs_at_most_two_reads() -> None:
    figures = source()
    results = await asyncio.gather(*(figures.read() for _ in range(20)))
    assert figures.reads <= 2
    assert all(r.at >= 0 for r in results)


async def test_a_request_never_gets_a_read_that_began_before_it() -> None:
    figures = source()
    first = asyncio.create_task(figures.read())
    await asyncio.sleep(0.01)  # the first read is under way
    asked = asyncio.get_running_loop().time()
    second = await figures.read()
    assert second.at >= asked and (await first).at < asked
    assert figures.reads == 2
    again = await figures.read()  # asked after the second read began: a new one
    assert again.at > second.at and figures.reads == 3
