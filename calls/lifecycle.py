"""What happens to a call after the IVR, as seen by domains that react to it.

The ACD connector (queueing) announces a citizen's call reaching a seat and that call
ending; listeners such as recording and work-order intake react without the connector
knowing them. Listener failures are the listener's to log: the call goes on regardless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ConnectedCall:
    call_id: str  # the citizen channel's Asterisk uniqueid (the call record's uniqueid)
    caller_channel: str  # e.g. PJSIP/citizens-00000001
    caller_number: str | None
    seat: str  # the seat's extension, e.g. "8001"
    seat_channel: str  # e.g. PJSIP/8001-00000002
    skill: str
    connected_at: datetime
    ended_at: datetime | None = None


class CallListener(Protocol):
    async def connected(self, call: ConnectedCall) -> None:
        """The citizen and the seat are bridged (both channels up)."""
        ...

    async def finished(self, call: ConnectedCall) -> None:
        """The connected call ended (``ended_at`` set); both channels are gone."""
        ...
