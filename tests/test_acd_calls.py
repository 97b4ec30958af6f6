"""The skills-based ACD through real calls: sipp citizens press keys in the IVR, wait in the
engine's ACD and reach sipp softphones registered as seats (see sipsim/seat.py)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from citizen_phones import dialled, start_phone
from conftest import AmiEvents, eventually, new_caller
from seat_calls import REPORT, call_events, connected_seat, events
from staff import supervisor_auth

from agents.states import SeatState
from hotline.engine import Hotline
from hotline.secrets import stored_secret
from hotline.settings import PROJECT_DIR
from queueing.events import AcdEvent
from sipsim.citizen import (
    Press,
    Speak,
    citizen_scenario,
    free_media_port,
    free_udp_port,
    hung_up_by_hotline,
)
from sipsim.seat import Seat, dial_feature_code, start_seat, uas_scenario, unregister

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PIN = "2468"
BUSINESS = [Press("1", 2500), Press("4", 1500)]  # Mandarin, then 4: business environment


# -- helpers --------------------------------------------------------------------------------
StartSeats = Callable[..., Awaitable[dict[str, Seat]]]


@pytest_asyncio.fixture(loop_scope="session")
async def seats(hotline: Hotline, tmp_path: Path) -> AsyncIterator[StartSeats]:
    """Start registered sipp seats; on teardown log every seat out and unregister them."""
    started: list[Seat] = []
    s = hotline.settings

    async def start(
        *exts: str, login: bool = True, no_answer: tuple[str, ...] = ()
    ) -> dict[str, Seat]:
        out = {}
        for ext in exts:
            seat = await start_seat(
                tmp_path, ext, stored_secret(s.data_dir, f"seat-{ext}"), sip_port=s.sip_port,
                answer=ext not in no_answer,
            )  # fmt: skip
            started.append(seat)
            out[ext] = seat
            if login:
                await hotline.acd.login(ext, PIN)
                await asyncio.sleep(0.05)  # distinct idle times: login order = idle order
        hotline.dispatcher.kick()
        return out

    yield start
    for seat in hotline.seats.seats:
        status = await hotline.acd.seat(seat.extension)
        if status.state is not SeatState.LOGGED_OUT:
            await eventually(lambda e=seat.extension: _idle(hotline, e), 30, "the seat to be idle")
            await hotline.acd.logout(seat.extension)
    for seat in started:
        await unregister(seat, stored_secret(s.data_dir, f"seat-{seat.ext}"), sip_port=s.sip_port)
        await seat.stop()


async def _idle(hotline: Hotline, ext: str) -> bool:
    state = (await hotline.acd.seat(ext)).state
    return state not in {SeatState.RINGING, SeatState.ON_CALL}


async def dial(
    hotline: Hotline, workdir: Path, caller: str, presses: list[Press], hold_ms: int,
    *, remote_hangup: bool = False, speak: Speak | None = None,
) -> None:  # fmt: skip
    """One sipp citizen call to 12345, to completion (``speak``: then the caller's voice)."""
    s = hotline.settings
    os.makedirs(workdir, exist_ok=True)
    scenario = workdir / f"citizen-{caller}.xml"
    xml = citizen_scenario(caller, presses, hold_ms, workdir, speak)
    scenario.write_text(hung_up_by_hotline(xml) if remote_hangup else xml, encoding="ISO-8859-1")
    cmd = [
        "sipp", f"{s.sip_host}:{s.sip_port}", "-sf", str(scenario), "-s", s.hotline_number,
        "-m", "1", "-l", "1", "-i", "127.0.0.1", "-p", str(free_udp_port()),
        "-mi", "127.0.0.1", "-mp", str(free_media_port()), "-timeout", "120s", "-nostdin",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 130)
    assert process.returncode == 0, f"sipp citizen {caller} failed:\n{out.decode()[-2500:]}"


async def waiting(hotline: Hotline, caller: str) -> bool:
    evs = await call_events(hotline, caller)
    return bool(evs) and await hotline.acd.position(evs[0].call_id) is not None


# -- tests ----------------------------------------------------------------------------------
async def test_each_call_lands_on_a_seat_with_the_skill(
    hotline: Hotline, seats: StartSeats, tmp_path: Path
) -> None:
    phones = await seats("8002", "8003")  # 8003: business desk; 8002: report, no business
    report, business = new_caller(), new_caller()
    await asyncio.gather(
        dial(hotline, tmp_path, report, REPORT, 3000),
        dial(hotline, tmp_path, business, BUSINESS, 3000),
    )
    assert await connected_seat(hotline, business) == "8003"
    assert await connected_seat(hotline, report) == "8002"
    # the seat's phone showed the citizen's number
    assert phones["8003"].callers() == [business]
    assert phones["8002"].callers() == [report]


async def test_longest_idle_seat_goes_first(
    hotline: Hotline, seats: StartSeats, tmp_path: Path
) -> None:
    await seats("8005", "8001")  # both hold report in the best band; 8005 idle longer
    first, second = new_caller(), new_caller()
    await dial(hotline, tmp_path, first, REPORT, 1500)
    assert await connected_seat(hotline, first) == "8005"
    await dial(hotline, tmp_path, second, REPORT, 1500)
    assert await connected_seat(hotline, second) == "8001", "8005 became idle later"


async def test_wrap_up_is_respected(hotline: Hotline, seats: StartSeats, tmp_path: Path) -> None:
    await seats("8005")
    first, second = new_caller(), new_caller()
    calls = [asyncio.create_task(dial(hotline, tmp_path, first, REPORT, 2000))]
    await eventually(lambda: _connected(hotline, first), 30, "the first call to connect")
    calls.append(asyncio.create_task(dial(hotline, tmp_path, second, REPORT, 12_000)))
    await asyncio.gather(*calls)
    assert await connected_seat(hotline, second) == "8005"
    done = [e for e in await call_events(hotline, first) if e.type == "complete"]
    offer = [e for e in await call_events(hotline, second) if e.type == "offer"]
    assert offer[0].at - done[0].at >= 3.0 - 0.05, "offered during the report wrap-up (3 s)"


async def _connected(hotline: Hotline, caller: str) -> bool:
    return any(e.type == "connect" for e in await call_events(hotline, caller))


async def test_a_seat_that_does_not_answer_is_paused_and_the_call_requeued(
    hotline: Hotline, seats: StartSeats, tmp_path: Path
) -> None:
    phones = await seats("8001", "8005", no_answer=("8001",))  # 8001 idle longest: rung first
    caller = new_caller()
    await dial(hotline, tmp_path, caller, REPORT, 8000)  # 4 s ring at 8001, then 8005
    assert await connected_seat(hotline, caller) == "8005"
    status = await hotline.acd.seat("8001")
    assert status.state is SeatState.PAUSED and status.reason == "no-answer"
    kinds = [e.type for e in await call_events(hotline, caller)]
    assert kinds.index("requeue") < kinds.index("connect")
    assert phones["8001"].callers() == [caller]
    # a paused seat gets nothing
    other = new_caller()
    await dial(hotline, tmp_path, other, REPORT, 1500)
    assert await connected_seat(hotline, other) == "8005"
    assert phones["8001"].callers() == [caller]


async def test_a_caller_hanging_up_while_the_seat_rings_releases_it_at_once(
    hotline: Hotline, seats: StartSeats, tmp_path: Path
) -> None:
    await seats("8001", no_answer=("8001",))
    caller = new_caller()
    await dial(hotline, tmp_path, caller, REPORT, 1500)  # gone before the 4 s ring timeout
    evs = await eventually(lambda: _abandoned(hotline, caller), 10, "the abandon")
    assert any(e.type == "offer" and e.seat == "8001" for e in evs)
    status = await hotline.acd.seat("8001")
    assert status.state is SeatState.AVAILABLE, "the seat must not wait for its ring timeout"


async def _abandoned(hotline: Hotline, caller: str) -> list[AcdEvent]:
    evs = await call_events(hotline, caller)
    return evs if any(e.type == "abandon" for e in evs) else []


async def test_a_seat_unregistering_mid_ring_sends_the_call_back_to_the_head(
    hotline: Hotline, seats: StartSeats, tmp_path: Path
) -> None:
    phones = await seats("8001", "8005", no_answer=("8001",))  # 8001 rings first
    caller = new_caller()
    call = asyncio.create_task(dial(hotline, tmp_path, caller, REPORT, 8000))

    async def ringing() -> bool:
        return (await hotline.acd.seat("8001")).state is SeatState.RINGING

    await eventually(ringing, 30, "seat 8001 to ring")
    s = hotline.settings
    await unregister(phones["8001"], stored_secret(s.data_dir, "seat-8001"), sip_port=s.sip_port)
    assert await connected_seat(hotline, caller) == "8005"
    await call
    status = await hotline.acd.seat("8001")
    assert status.state is SeatState.PAUSED and status.reason == "unregistered"
    requeues = [e for e in await call_events(hotline, caller) if e.type == "requeue"]
    assert [e.data for e in requeues] == ["unregistered"]


async def test_seat_states_through_the_web_api(
    hotline: Hotline, seats: StartSeats, tmp_path: Path
) -> None:
    phones = await seats("8001", "8005", login=False)
    s = hotline.settings
    base = f"http://{s.web_host}:{s.web_port}/api/seats"
    auth = await supervisor_auth(hotline)
    async with aiohttp.ClientSession() as web:
        async with web.get(base) as r:
            assert r.status == 401
        async with web.post(f"{base}/8001/login", json={"pin": "0000"}, headers=auth) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "login_refused"
        for ext in ("8001", "8005"):
            async with web.post(f"{base}/{ext}/login", json={"pin": PIN}, headers=auth) as r:
                assert r.status == 200, await r.text()
        async with web.post(f"{base}/8001/pause", json={"reason": "lunch"}, headers=auth) as r:
            assert (await r.json()) == {"extension": "8001", "state": "paused", "reason": "lunch"}
        async with web.post(f"{base}/8001/pause", json={"reason": "Lunch!"}, headers=auth) as r:
            assert r.status == 400
        async with web.post(f"{base}/9999/resume", headers=auth) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "unknown_seat"
        async with web.post(f"{base}/8005/resume", headers=auth) as r:
            assert r.status == 409 and (await r.json())["error"]["code"] == "seat_state"
        caller = new_caller()
        await dial(hotline, tmp_path, caller, REPORT, 1500)
        assert await connected_seat(hotline, caller) == "8005"
        assert phones["8001"].callers() == []
        async with web.get(base, headers=auth) as r:
            listed = {x["extension"]: x for x in (await r.json())["seats"]}
        assert listed["8001"]["state"] == "paused" and listed["8001"]["reason"] == "lunch"


async def test_feature_codes_from_the_seats_softphone(
    hotline: Hotline, seats: StartSeats, tmp_path: Path
) -> None:
    await seats("8004", login=False)
    s = hotline.settings
    password = stored_secret(s.data_dir, "seat-8004")

    async def code(feature: str, keys: str = "") -> SeatState:
        await dial_feature_code(tmp_path, "8004", password, feature, sip_port=s.sip_port,
                                keys=keys)  # fmt: skip
        status = await hotline.acd.seat("8004")
        return status.state

    assert await code("*21", "1357#") is SeatState.LOGGED_OUT  # wrong PIN: refused
    assert await code("*21", f"{PIN}#") is SeatState.AVAILABLE
    assert await code("*232") is SeatState.PAUSED
    assert (await hotline.acd.seat("8004")).reason == "lunch"
    assert await code("*24") is SeatState.AVAILABLE
    assert await code("*22") is SeatState.LOGGED_OUT


async def test_a_seat_resuming_with_star24_is_rung_after_that_call_hangs_up(
    hotline: Hotline, seats: StartSeats, ami_events: AmiEvents, tmp_path: Path
) -> None:
    """Issue 8 item 4: a caller waits, the paused seat dials *24 (resume): the seat's phone
    rings for the caller only after the *24 call's channel hung up (AMI order)."""
    await seats("8005")
    s = hotline.settings
    await hotline.acd.pause("8005", "break")
    caller = new_caller()
    call = asyncio.create_task(dial(hotline, tmp_path, caller, REPORT, 15_000))
    await eventually(lambda: waiting(hotline, caller), 30, "the caller to wait")
    await dial_feature_code(tmp_path, "8005", stored_secret(s.data_dir, "seat-8005"), "*24",
                            sip_port=s.sip_port)  # fmt: skip
    assert await connected_seat(hotline, caller) == "8005"
    await call
    call_id = (await call_events(hotline, caller))[0].call_id
    order = list(ami_events.seen)
    star24 = [
        i for i, e in enumerate(order)
        if e.get("Event") == "Hangup" and e.get("Exten") == "*24"
        and e.get("Channel", "").startswith("PJSIP/8005-")
    ]  # fmt: skip
    rings = [
        i for i, e in enumerate(order)
        if e.get("Event") == "DialBegin" and e.get("Uniqueid") == call_id
        and e.get("DestChannel", "").startswith("PJSIP/8005-")
    ]  # fmt: skip
    assert star24 and rings, "AMI did not show the *24 hangup and the seat's ring"
    assert star24[-1] < rings[0], "the seat was rung while still on its *24 call"


async def test_callback_keeps_the_callers_place(
    hotline: Hotline, seats: StartSeats, ami_events: AmiEvents, tmp_path: Path
) -> None:
    citizen = await start_phone(tmp_path, uas_scenario(True, 200, hangup_after_ms=2000), "citizen")
    try:
        first, second = new_caller(), new_caller()
        # the callback is offered after 4 s of waiting (conftest); 1 books it
        booked = asyncio.create_task(
            dial(hotline, tmp_path, first, [*REPORT, Press("1", 6000)], 0, remote_hangup=True)
        )
        await eventually(lambda: waiting(hotline, first), 30, "the first caller to wait")
        later = asyncio.create_task(dial(hotline, tmp_path, second, REPORT, 20_000))
        await booked
        kinds = [e.type for e in await call_events(hotline, first)]
        assert "callback" in kinds and "abandon" not in kinds
        await eventually(lambda: waiting(hotline, second), 30, "the second caller to wait")
        phones = await seats("8005")
        assert await connected_seat(hotline, first) == "8005", "the callback kept its place"
        await later
        assert await connected_seat(hotline, second) == "8005"
        assert phones["8005"].callers()[:2] == [first, second]
        await eventually(lambda: _called_back(citizen), 10, "the citizen's phone to ring")
        # the number dialled is the caller's own (Request-URI and To of the INVITE received)
        [invite] = citizen.invites()
        assert _sip_user(invite.splitlines()[0]) == first, invite
        to = next(line for line in invite.splitlines() if line.lower().startswith("to:"))
        assert _sip_user(to) == first, invite
        # the seat's channel dialled that number and both channels met in one bridge
        await eventually(lambda: _bridged(ami_events, first, "8005"), 10, "the callback bridge")
        # the second caller waited long enough to hear the callback offer and its position
        call_id = (await call_events(hotline, second))[0].call_id
        heard = " ".join(
            e.get("CommandLine", "") or e.get("Command", "")
            for e in ami_events.of(call_id, "AGIExecStart")
        )
        assert "acd-callback-offer" in heard
        assert "acd-position" in heard or "acd-busy" in heard
    finally:
        await citizen.stop()


async def _called_back(citizen: Seat) -> bool:
    return bool(citizen.invites())


def _sip_user(text: str) -> str:
    match = re.search(r"sip:([^@;>\s]+)@", text)
    return match.group(1) if match else ""


async def _bridged(events: AmiEvents, number: str, seat: str) -> bool:
    """AMI: seat ``seat``'s channel dialled ``number`` (DialBegin), and BridgeEnter put the
    seat's channel and the dialled one into the same bridge."""
    bridges: dict[str, set[str]] = {}
    for e in events.seen:
        if e.get("Event") == "BridgeEnter":
            bridges.setdefault(e.get("Uniqueid", ""), set()).add(e.get("BridgeUniqueid", ""))
    return any(
        bridges.get(e.get("Uniqueid", ""), set()) & bridges.get(e.get("DestUniqueid", ""), set())
        for e in events.seen
        if e.get("Event") == "DialBegin"
        and f"sip:{number}@" in e.get("DialString", "")
        and e.get("Channel", "").startswith(f"PJSIP/{seat}-")
    )


async def test_statistics_match_the_calls_placed(
    hotline: Hotline, seats: StartSeats, tmp_path: Path
) -> None:
    since = time.time()
    gone = new_caller()
    await dial(hotline, tmp_path, gone, REPORT, 2500)  # nobody logged in: abandons
    await seats("8005", "8003")
    answered = [new_caller(), new_caller()]
    await asyncio.gather(
        dial(hotline, tmp_path, answered[0], REPORT, 2000),  # 8005
        dial(hotline, tmp_path, answered[1], BUSINESS, 2000),  # 8003
    )
    for caller in answered:
        await connected_seat(hotline, caller)

    async def figures() -> dict[str, Any] | None:
        await hotline.event_log.catch_up()
        stats = await hotline.stats(since)
        done = stats["overall"]["answered"] == 2 and stats["overall"]["abandoned"] == 1
        return stats if done and stats["overall"]["aht_s"] is not None else None

    stats = await eventually(figures, 30, "the statistics to count the calls")
    overall = stats["overall"]
    assert overall["offered"] == 3
    assert overall["answer_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert overall["answered_within_sl"] == 2 and overall["asa_s"] < 15
    by_queue = {q["queue"]: q for q in stats["queues"]}
    assert (by_queue["report"]["answered"], by_queue["report"]["abandoned"]) == (1, 1)
    assert by_queue["business"]["answered"] == 1
    s = hotline.settings
    url = f"http://{s.web_host}:{s.web_port}/api/stats?since={since}"
    auth = await supervisor_auth(hotline)
    async with aiohttp.ClientSession() as web, web.get(url, headers=auth) as r:
        assert r.status == 200
        assert (await r.json())["overall"]["answered"] == 2


async def test_fallback_when_the_engine_is_gone(
    hotline: Hotline, seats: StartSeats, tmp_path: Path
) -> None:
    """Callers waiting in the ACD when the engine's FastAGI dies reach a seat through
    Asterisk's own Queue(hotline-report) with the same seats."""
    phones = await seats("8002", "8005", login=False)  # nobody logged in: callers wait
    callers = [new_caller(), new_caller()]
    calls = [asyncio.create_task(dial(hotline, tmp_path, c, REPORT, 14_000)) for c in callers]
    for caller in callers:
        await eventually(lambda c=caller: waiting(hotline, c), 30, f"{caller} to wait")
    s = hotline.settings
    hotline.queue_route.detached = True
    await hotline.agi.abort()
    try:
        await asyncio.gather(*calls)
    finally:
        hotline.queue_route.detached = False
        await hotline.agi.start(s.agi_host, s.agi_port)
    reached = phones["8002"].callers() + phones["8005"].callers()
    assert sorted(reached) == sorted(callers)


async def test_adding_a_seat_applies_by_reload(hotline: Hotline, tmp_path: Path) -> None:
    """`hotline seats reload` reaches the running engine: Asterisk has the new seat's PJSIP
    endpoint and queue membership, and the engine's own seats let it log in with *21."""
    s = hotline.settings
    original = s.seats_file.read_text(encoding="utf-8")
    added = original + (
        '\n[[seat]]\nextension = "8099"\nname = "New Seat"\npin = "2468"\n'
        'languages = ["zh"]\nskills = { report = 2 }\n'
    )
    assert hotline.asterisk is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATA_DIR=str(s.data_dir), PYTHONPATH=str(PROJECT_DIR))
    seat = None
    try:
        s.seats_file.write_text(added, encoding="utf-8")
        reloaded = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "hotline.cli", "seats", "reload"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert reloaded.returncode == 0, reloaded.stderr
        assert f"running as pid {os.getpid()}" in reloaded.stderr  # this engine, not Redis alone
        assert "1 added" in reloaded.stdout
        shown = await asyncio.to_thread(hotline.asterisk.cli, "pjsip show endpoint 8099")
        assert "8099" in shown.stdout and "hotline-seats" in shown.stdout
        queue = await asyncio.to_thread(hotline.asterisk.cli, "queue show hotline-report")
        assert "PJSIP/8099" in queue.stdout
        assert (await hotline.acd.seat("8099")).state is SeatState.LOGGED_OUT
        password = stored_secret(s.data_dir, "seat-8099")
        seat = await start_seat(tmp_path, "8099", password, sip_port=s.sip_port)
        await dial_feature_code(tmp_path, "8099", password, "*21", sip_port=s.sip_port,
                                keys=f"{PIN}#")  # fmt: skip
        assert (await hotline.acd.seat("8099")).state is SeatState.AVAILABLE
    finally:
        if seat is not None:
            if (await hotline.acd.seat("8099")).state is not SeatState.LOGGED_OUT:
                await hotline.acd.logout("8099")
            await unregister(seat, stored_secret(s.data_dir, "seat-8099"), sip_port=s.sip_port)
            await seat.stop()
        s.seats_file.write_text(original, encoding="utf-8")
        await hotline.reload_seats()


async def test_a_callback_not_answered_is_retried_then_listed(
    hotline: Hotline, seats: StartSeats, tmp_path: Path
) -> None:
    """Agent first: at every callback seat 8005 answers, then its channel dials the citizen,
    whose phone rings and is never answered. While it rings the call holds one line of the
    outbound dialer (the count the revisit calls' limit takes off); when the ring times out
    the seat is released at once, and the dialer's loop books the callback again (ring and
    interval shortened for the test) to ring a seat again, twice; then it is on the
    supervisors' failed-callbacks list, from SQL. The seat handled no call: after each attempt
    it is available at once (not in the report wrap-up), and the wallboard's figures of the
    day count 3 callbacks not reached, no answered call and no change in AHT."""
    from dataclasses import replace

    retries, revisits = hotline.callback_retries, hotline.revisits
    options = retries.options
    retries.options = replace(options, interval_s=1.0, ring_s=4)
    lines: list[int] = []  # the dialer's lines held by callbacks, sampled all along

    async def sample_lines() -> None:
        assert revisits.other_lines is not None  # what a revisit claim counts
        while True:
            async with revisits.sessions() as session:
                lines.append(await revisits.other_lines(session))
            await asyncio.sleep(0.2)

    citizen = await start_phone(tmp_path, uas_scenario(False, 0), "silent-citizen")
    sampler = asyncio.create_task(sample_lines())
    try:
        caller = new_caller()
        booked = asyncio.create_task(
            dial(hotline, tmp_path, caller, [*REPORT, Press("1", 6000)], 0, remote_hangup=True)
        )
        await eventually(lambda: waiting(hotline, caller), 30, "the caller to wait")
        await booked
        call_id = (await call_events(hotline, caller))[0].call_id
        auth = await supervisor_auth(hotline)
        before = await _report_figures(hotline, auth)
        started = time.time()
        phones = await seats("8005")

        async def listed() -> list[dict[str, Any]]:
            return [f for f in await retries.failed() if f["call_id"] == call_id]

        [failed] = await eventually(listed, 120, "the callback on the failed list")
        url = f"http://{hotline.settings.web_host}:{hotline.settings.web_port}"
        async with aiohttp.ClientSession() as web:
            async with web.get(url + "/api/callbacks/failed", headers=auth) as response:
                assert response.status == 200
                body = await response.json()
        assert call_id in [f["call_id"] for f in body["failed"]]
    finally:
        sampler.cancel()
        retries.options = options
        await citizen.stop()
    assert failed["attempts"] == 3 and failed["last_status"] == "NOANSWER"
    assert dialled(citizen) == [caller] * 3
    assert len(phones["8005"].invites()) == 3  # the seat rang (and answered) before each
    assert max(lines) == 1, lines  # one line while ringing
    assert revisits.other_lines is not None  # then free (read now: the sampler's last read
    async with revisits.sessions() as session:  # may have begun before the last call ended)
        assert await revisits.other_lines(session) == 0
    # Each attempt: the seat answered (connect), the citizen's phone rang 4 s, and the seat's
    # call ended then as not reached (no complete), not after a longer timeout; in that same
    # step the seat became available, and it never went through a wrap-up.
    attempts = [call_id, f"{call_id}-r1", f"{call_id}-r2"]
    mine = await call_events(hotline, caller)
    ends = {e.call_id: e for e in mine if e.type == "unreached"}
    assert sorted(ends) == attempts and not [e for e in mine if e.type == "complete"]
    seat_states = [(e.at, e.data.split()[0]) for e in await events(hotline)
                   if e.type == "seat" and e.seat == "8005" and e.at >= started]  # fmt: skip
    assert "wrap_up" not in {state for _, state in seat_states}, seat_states
    for attempt in attempts:
        assert ends[attempt].seat == "8005"
        assert 4000 <= ends[attempt].ms <= 9000, (attempt, ends[attempt].ms)
        assert (ends[attempt].at, "available") in seat_states, (attempt, seat_states)
    # the day's figures on the wallboard: 3 callbacks not reached, nothing answered, same AHT
    after = await eventually(
        lambda: _unreached_moved(hotline, auth, before, 3), 10, "3 callbacks not reached"
    )
    assert after["answered"] == before["answered"] and after["aht_s"] == before["aht_s"]
    assert after["abandoned"] == before["abandoned"]
    await eventually(lambda: _idle(hotline, "8005"), 10, "the seat to be free again")


async def _report_figures(hotline: Hotline, auth: dict[str, str]) -> dict[str, Any]:
    """The report queue's figures of the day, as the wallboard shows them."""
    url = f"http://{hotline.settings.web_host}:{hotline.settings.web_port}/api/wallboard"
    async with aiohttp.ClientSession() as web, web.get(url, headers=auth) as response:
        assert response.status == 200
        board = await response.json()
    return next(q for q in board["queues"] if q["queue"] == "report")


async def _unreached_moved(
    hotline: Hotline, auth: dict[str, str], before: dict[str, Any], by: int
) -> dict[str, Any] | None:
    now = await _report_figures(hotline, auth)
    return now if now["callbacks_unreached"] == before["callbacks_unreached"] + by else None
