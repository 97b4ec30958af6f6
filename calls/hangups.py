"""Why a call ended, for its record: AMI's Hangup event, corrected by who asked to hang up.

A caller who hangs up (a SIP BYE) makes the channel driver queue a hangup
(``HangupRequest``, with the network's cause or none); Asterisk, the engine or a seat's side
ending the call ask with ``SoftHangupRequest``. A channel inside an AGI when the caller hung
up reaches its ``Hangup`` event with cause 0 ("Unknown") or a stale one such as 3 ("No route
to destination"). So when the caller's side asked first, the record says so: the request's
cause, or 16 (normal clearing, what a BYE is); otherwise the ``Hangup`` event's cause stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Q.850 causes as Asterisk names them (causes.h / ast_cause2str), the ones a hotline sees.
CAUSE_TEXTS = {
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    27: "Destination out of order",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    127: "Interworking, unspecified",
}
CALLER_HUNG_UP = "caller hung up"
NORMAL_CLEARING = 16
_NOT_THE_CALLER = 0


class AmiEvent(Protocol):
    def get(self, key: str, default: str = "") -> str: ...


@dataclass(frozen=True)
class HangupCause:
    code: int | None
    text: str | None


class HangupCauses:
    """Remembers the caller's hangup request per call until the channel's Hangup event."""

    def __init__(self) -> None:
        self._requested: dict[str, int] = {}

    def requested(self, event: AmiEvent) -> None:
        """``HangupRequest`` (the channel driver's: the caller's side) or
        ``SoftHangupRequest`` (Asterisk's, the engine's) on a citizen's channel."""
        uniqueid = event.get("Uniqueid", "")
        if not uniqueid or uniqueid != event.get("Linkedid", uniqueid):
            return
        if event.get("Event") != "HangupRequest":
            self._requested.setdefault(uniqueid, _NOT_THE_CALLER)
            return
        cause = event.get("Cause", "")
        code = int(cause) if cause.isdigit() else 0
        self._requested.setdefault(uniqueid, code or NORMAL_CLEARING)

    def final(self, event: AmiEvent) -> HangupCause:
        """The cause to record for the ``Hangup`` event of the call's own channel."""
        uniqueid = event.get("Uniqueid", "")
        requested = self._requested.pop(uniqueid, None)
        if requested:
            name = CAUSE_TEXTS.get(requested, f"cause {requested}")
            return HangupCause(requested, f"{name} ({CALLER_HUNG_UP})")
        cause = event.get("Cause", "")
        return HangupCause(int(cause) if cause.isdigit() else None, event.get("Cause-txt") or None)
