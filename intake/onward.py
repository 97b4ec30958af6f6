"""Calls that go on after their seat's part: a transfer moves the citizen's channel on (to a
queue, a named seat, an emergency number, a three-way call) and the recording with it: the
MixMonitor the dialplan started on that channel records whenever the channel is bridged, so
the conversation with the second party lands in the same files. Such a call's recording is
complete, and its work order drafted, only when the citizen's channel has hung up; before
that, stopping the recording (as after an ordinary call) would lose the second part.

A call goes on if a transfer was announced here (:meth:`OnwardCalls.transferred`, by
:mod:`queueing.transfer` before it moves the channel, or from AMI's transfer events) or its
call record holds a ``transfer`` step (an engine restarted meanwhile). The end is the
citizen's AMI ``Hangup`` (:meth:`OnwardCalls.on_hangup`), checked against Asterisk's channel
list now and then in case that event was missed (AMI reconnecting).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Protocol

from intake.recovery import AmiStatus, CallLookup, live_calls

log = logging.getLogger(__name__)

KEEP_MARKS = 1024  # transferred calls remembered until their intake looks at them
TRANSIENT = (OSError, TimeoutError, ConnectionError)


class AmiEvent(Protocol):
    def get(self, key: str, default: str = "") -> str: ...


class OnwardCalls:
    def __init__(
        self, ami: AmiStatus, calls: CallLookup | None, timeout_s: float, poll_s: float = 30.0
    ) -> None:
        self.ami, self.calls = ami, calls
        self.timeout_s, self.poll_s = timeout_s, poll_s
        self._marked: OrderedDict[str, None] = OrderedDict()
        self._waiting: dict[str, asyncio.Event] = {}

    def transferred(self, call_id: str) -> None:
        """The citizen's channel of ``call_id`` is moved on to a second party."""
        self._marked[call_id] = None
        while len(self._marked) > KEEP_MARKS:
            self._marked.popitem(last=False)

    def on_hangup(self, event: AmiEvent) -> None:
        """AMI Hangup: a citizen's channel whose recording waits for it has ended."""
        ended = self._waiting.get(event.get("Uniqueid", ""))
        if ended is not None:
            ended.set()

    async def goes_on(self, call_id: str) -> bool:
        """Was the call transferred (here, or as its call record says)?"""
        if call_id in self._marked:
            return True
        if self.calls is None:
            return False
        try:
            async with asyncio.timeout(self.timeout_s):
                record = await self.calls.get(call_id)
        except TRANSIENT as exc:  # the mark is the usual answer; the record is for restarts
            log.warning("call %s: call record not read (%s); taken as not transferred",
                        call_id, exc)  # fmt: skip
            return False
        return record is not None and any(
            step.get("kind") == "transfer" for step in record.get("journey", [])
        )

    async def wait_over(self, call_id: str) -> None:
        """Until the citizen's channel of ``call_id`` is gone (its Hangup, or Asterisk's channel
        list no longer has it)."""
        ended = self._waiting.setdefault(call_id, asyncio.Event())
        try:
            while True:
                live = await live_calls(self.ami, self.timeout_s)
                if live is not None and call_id not in live:
                    return
                try:
                    await asyncio.wait_for(ended.wait(), timeout=self.poll_s)
                    return
                except TimeoutError:
                    continue
        finally:
            self._waiting.pop(call_id, None)
            self._marked.pop(call_id, None)
