"""Whisper and barge through real calls (issue 11): who hears the supervisor.

Each phone's audio goes to a socket of the test (sipsim/rtp.py) that says a tone of its own
and tells which tones it receives: the citizen (a silent sipp caller whom the menu sends to
the operator queue) says 400 Hz, the seat 8005 (sipp) 600 Hz, the supervisor's softphone
8006 (sipp, rung by ChanSpy through AMI) 1000 Hz. Whisper: the seat hears the supervisor,
the citizen does not. Barge: the citizen hears the supervisor too. Each use is in the
audit log with its mode."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from conftest import eventually, new_caller
from panoramisk.message import Message
from test_supervisor_controls import _true, base, phone_owner_auth, release, supervisor_phone

from agents.states import SeatState
from hotline.engine import Hotline
from hotline.secrets import stored_secret
from sipsim.citizen import start_call
from sipsim.rtp import RtpPhone, open_phone
from sipsim.seat import start_seat

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEAT = "8005"  # the operator queue's first seat: a silent caller reaches it
CALLER_HZ, SEAT_HZ, SUPERVISOR_HZ = 400.0, 600.0, 1000.0
HEARD = 25  # packets (half a second) carrying a tone: it is heard


async def hears(phone: RtpPhone, hz: float, since: int) -> bool:
    return phone.heard[hz] - since >= HEARD


async def test_whisper_reaches_the_seat_only_and_barge_both(
    hotline: Hotline, tmp_path: Path
) -> None:
    s = hotline.settings
    for seat in hotline.seats.seats:  # the silent caller's operator queue goes to SEAT only
        if (await hotline.acd.seat(seat.extension)).state is not SeatState.LOGGED_OUT:
            await hotline.acd.logout(seat.extension)
    citizen = await open_phone(CALLER_HZ, [SEAT_HZ, SUPERVISOR_HZ])
    operator = await open_phone(SEAT_HZ, [CALLER_HZ, SUPERVISOR_HZ])
    supervisor = await open_phone(SUPERVISOR_HZ, [])
    password = stored_secret(s.data_dir, f"seat-{SEAT}")
    seat = await start_seat(tmp_path, SEAT, password, sip_port=s.sip_port, rtp_port=operator.port)
    phone, phone_port = await supervisor_phone(tmp_path, hotline, supervisor.port)
    spies: list[Message] = []
    hotline.ami.on("ChanSpyStart", spies.append)
    await hotline.acd.login(SEAT, "2468")
    call = await start_call(
        tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=new_caller(), presses=[], hold_ms=50_000, rtp_port=citizen.port,
    )  # fmt: skip
    try:
        # the call is up both ways: each side hears the other's tone
        await eventually(lambda: hears(operator, CALLER_HZ, 0), 60, "the seat to hear the caller")
        await eventually(lambda: hears(citizen, SEAT_HZ, 0), 20, "the caller to hear the seat")
        assert citizen.heard[SUPERVISOR_HZ] == operator.heard[SUPERVISOR_HZ] == 0
        auth = await phone_owner_auth(hotline)  # the account whose phone is the softphone
        url = f"/api/seats/{SEAT}/listen"
        async with aiohttp.ClientSession(base(hotline)) as http:
            async with http.post(url, json={"mode": "whisper"}, headers=auth) as r:
                assert r.status == 202, await r.text()
            await eventually(lambda: _true(len(spies) == 1), 20, "ChanSpy to start whispering")
            # the seat hears the supervisor; meanwhile the caller hears the seat, never them
            seat_before, caller_before = operator.heard[SUPERVISOR_HZ], citizen.heard[SEAT_HZ]
            await eventually(lambda: hears(operator, SUPERVISOR_HZ, seat_before), 20,
                             "the seat to hear the whispering supervisor")  # fmt: skip
            await eventually(lambda: hears(citizen, SEAT_HZ, caller_before + 4 * HEARD), 20,
                             "two more seconds of the seat at the caller")  # fmt: skip
            assert citizen.heard[SUPERVISOR_HZ] == 0, "the caller heard a whisper"

            async with http.post(url, json={"mode": "barge"}, headers=auth) as r:
                assert r.status == 202, await r.text()
            await eventually(lambda: _true(len(spies) == 2), 20, "ChanSpy to start barging")
            await eventually(lambda: hears(citizen, SUPERVISOR_HZ, 0), 20,
                             "the caller to hear the barging supervisor")  # fmt: skip
        assert all(spy["SpyeeChannel"].startswith(f"PJSIP/{SEAT}-") for spy in spies), spies
        uses = [e for e in await hotline.accounts.accounts.audit_log(30)
                if e["action"] == "listen_in" and e["target"] == SEAT]  # fmt: skip
        assert [u["detail"].split()[0] for u in uses[:2]] == ["mode=barge", "mode=whisper"], uses
        result = await call.hang_up()
        assert result.returncode == 0, result.errors[-2000:]
    finally:
        if not call.done():
            call.cancel()
        for rtp in (citizen, operator, supervisor):
            rtp.close()
        await release(hotline, tmp_path, phone, phone_port, seat)
