"""What Asterisk says about the channels of seats: the second source the ACD checks before
it trusts (or after it missed) an event.

:func:`list_channels` asks AMI ``CoreShowChannels`` and types the answer; :func:`seat_channel`
picks a seat's channel (``PJSIP/<ext>-...``) in a call, optionally linked to one caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from panoramisk.message import Message

from pbx.ami import AmiClient


@dataclass(frozen=True)
class Channel:
    name: str  # e.g. PJSIP/8001-00000002
    uniqueid: str
    linkedid: str  # the first channel of the call: the citizen's own uniqueid
    state: str  # Up, Ring, Ringing, Down, ...
    bridge_id: str  # non-empty once bridged with another channel

    @classmethod
    def from_event(cls, event: Message) -> Channel:
        return cls(
            name=event.get("Channel", ""),
            uniqueid=event.get("Uniqueid", ""),
            linkedid=event.get("Linkedid", ""),
            state=event.get("ChannelStateDesc", ""),
            bridge_id=event.get("BridgeId", ""),
        )

    @property
    def talking(self) -> bool:
        """Answered and bridged: a conversation (or a callback) is going on."""
        return self.state == "Up" and bool(self.bridge_id)

    def of_seat(self, extension: str) -> bool:
        return self.name.startswith(f"PJSIP/{extension}-")


# Lists the channels Asterisk has now (raises if Asterisk cannot be asked).
ListChannels = Callable[[], Awaitable[Sequence[Channel]]]


def ami_channels(ami: AmiClient, timeout_s: float = 5.0) -> ListChannels:
    async def list_channels() -> Sequence[Channel]:
        async with asyncio.timeout(timeout_s):
            answer: Any = await ami.action({"Action": "CoreShowChannels"}, as_list=True)
        messages = answer if isinstance(answer, list) else [answer]
        return [Channel.from_event(m) for m in messages if m.get("Event") == "CoreShowChannel"]

    return list_channels


def seat_of(channel: str) -> str:
    """The seat (PJSIP endpoint) of a channel name: ``PJSIP/8001-00000002`` -> ``8001``;
    "" for a channel that is not PJSIP."""
    if not channel.startswith("PJSIP/"):
        return ""
    return channel.removeprefix("PJSIP/").rsplit("-", 1)[0]


def seat_channel(channels: Sequence[Channel], extension: str, call_id: str = "") -> Channel | None:
    """The seat's channel (in the call ``call_id`` if given: linked to that caller)."""
    for channel in channels:
        if channel.of_seat(extension) and (not call_id or channel.linkedid == call_id):
            return channel
    return None
