"""The cause a call record gets from AMI's hangup events (calls/hangups.py)."""

from __future__ import annotations

from calls.hangups import HangupCause, HangupCauses


def event(name: str, cause: str | None = None, uniqueid: str = "c.1") -> dict[str, str]:
    found = {"Event": name, "Uniqueid": uniqueid, "Linkedid": "c.1"}
    return found if cause is None else {**found, "Cause": cause}


def test_a_caller_who_hangs_up_in_the_ivr_is_normal_clearing_not_the_channels_cause() -> None:
    causes = HangupCauses()
    causes.requested(event("HangupRequest"))  # the caller's BYE, no cause given
    causes.requested(event("SoftHangupRequest", "16"))
    final = causes.final({**event("Hangup", "3"), "Cause-txt": "No route to destination"})
    assert final == HangupCause(16, "Normal Clearing (caller hung up)")


def test_the_cause_the_callers_network_gave_is_kept() -> None:
    causes = HangupCauses()
    causes.requested(event("HangupRequest", "17"))
    assert causes.final(event("Hangup", "0")) == HangupCause(17, "User busy (caller hung up)")


def test_a_call_ended_on_the_hotlines_side_keeps_the_hangup_events_cause() -> None:
    causes = HangupCauses()
    causes.requested(event("SoftHangupRequest", "16"))
    causes.requested(event("HangupRequest"))  # the BYE answering ours comes later
    final = causes.final({**event("Hangup", "16"), "Cause-txt": "Normal Clearing"})
    assert final == HangupCause(16, "Normal Clearing")
    # nothing remembered after the Hangup; a seat's channel (not the call's own) is ignored
    causes.requested(event("HangupRequest", uniqueid="seat.2"))
    assert causes.final(event("Hangup", "", uniqueid="seat.2")) == HangupCause(None, None)
    assert causes.final(event("Hangup", "0")) == HangupCause(0, None)
