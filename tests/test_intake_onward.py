"""When a transferred call's recording is complete (intake.onward), without a network: a call
goes on if a transfer was announced or its call record has a transfer step, and it is over
at the citizen's Hangup or when Asterisk's channel list no longer has it."""

from __future__ import annotations

import asyncio
from typing import Any

from intake.onward import OnwardCalls


class FakeAmi:
    """AMI ``Status``: the channels Asterisk has (their uniqueids)."""

    def __init__(self, live: set[str]) -> None:
        self.live = live
        self.asked = 0

    async def action(self, action: dict[str, str], *, as_list: bool = False) -> Any:
        assert action == {"Action": "Status"}
        self.asked += 1
        return [{"Event": "Status", "Uniqueid": u} for u in self.live]


class FakeCalls:
    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        self.records = records

    async def get(self, uniqueid: str) -> dict[str, Any] | None:
        return self.records.get(uniqueid)


TRANSFERRED = {"journey": [{"kind": "menu"}, {"kind": "transfer", "node": "queue:business"}]}


async def test_a_call_goes_on_if_announced_or_its_record_says_transferred() -> None:
    calls = FakeCalls({"restarted": TRANSFERRED, "plain": {"journey": [{"kind": "menu"}]}})
    onward = OnwardCalls(FakeAmi(set()), calls, timeout_s=1)
    onward.transferred("announced")
    assert await onward.goes_on("announced")
    assert await onward.goes_on("restarted")  # an engine restarted since: the record says so
    assert not await onward.goes_on("plain")
    assert not await onward.goes_on("unknown")
    assert not await OnwardCalls(FakeAmi(set()), None, timeout_s=1).goes_on("restarted")


async def test_it_is_over_at_the_citizens_hangup() -> None:
    ami = FakeAmi({"call-1", "other"})
    onward = OnwardCalls(ami, None, timeout_s=1, poll_s=60)
    onward.transferred("call-1")
    waiting = asyncio.create_task(onward.wait_over("call-1"))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # Asterisk still has the channel: the second party talks on
    onward.on_hangup({"Uniqueid": "other"})
    await asyncio.sleep(0.05)
    assert not waiting.done()
    onward.on_hangup({"Uniqueid": "call-1"})
    await asyncio.wait_for(waiting, 1)
    assert not await onward.goes_on("call-1")  # forgotten once over


async def test_a_missed_hangup_is_found_in_asterisks_channel_list() -> None:
    ami = FakeAmi({"call-1"})
    onward = OnwardCalls(ami, None, timeout_s=1, poll_s=0.05)
    waiting = asyncio.create_task(onward.wait_over("call-1"))
    await asyncio.sleep(0.12)
    assert not waiting.done() and ami.asked >= 2
    ami.live.clear()  # gone, no Hangup event heard (AMI reconnecting, say)
    await asyncio.wait_for(waiting, 1)
