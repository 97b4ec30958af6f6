"""Transfers through Asterisk (issue 10): a citizen connected to a seat is moved by the desk's
``POST /api/seats/<ext>/transfer`` (the operator's own seat) to another queue, where a seat
of that skill answers, or handed over to an emergency number, which a sipp UAS answers on
the carrier trunk (the callback's dial string) and is bridged with the citizen."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from browser import browser, log_in, new_context  # noqa: F401
from conftest import CALLBACK_PORT, AmiEvents, eventually
from playwright.async_api import Browser, expect
from seat_calls import call_events, caller_at_8001, tone
from staff import staff_token

# the e2e seats fixture of the ACD's call tests
from test_acd_calls import StartSeats, seats  # noqa: F401

from accounts.users import AccountRole, User
from agents.states import SeatState
from hotline.engine import Hotline
from hotline.secrets import stored_secret
from intake.recording import IntakeResult
from pbx.ami import AmiActionError
from queueing.transfer import Target, transfer_codes
from sipsim.citizen import free_udp_port
from sipsim.dtmf import sequence_duration_ms, write_dtmf_pcap
from sipsim.seat import Seat, refer_scenario, register, run_uas, uas_scenario, unregister

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DESK_PASSWORD = "transfer desk password 1"


async def operator_auth(hotline: Hotline, ext: str) -> dict[str, str]:
    """The bearer token of an operator bound to seat ``ext``."""
    token = await staff_token(hotline.accounts.accounts, f"e2e-op-{ext}", AccountRole.OPERATOR,
                              extension=ext)  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


async def transfer(hotline: Hotline, ext: str, to: str, auth: dict[str, str]) -> tuple[int, Any]:
    s = hotline.settings
    url = f"http://{s.web_host}:{s.web_port}/api/seats/{ext}/transfer"
    async with aiohttp.ClientSession() as http, http.post(url, json={"to": to},
                                                           headers=auth) as response:  # fmt: skip
        return response.status, await response.json()


async def journey_transfers(hotline: Hotline, call_id: str) -> list[tuple[str, str]]:
    record = await hotline.calls.get(call_id)
    assert record is not None
    return [(s["node"], s["detail"]) for s in record["journey"] if s["kind"] == "transfer"]


async def test_a_caller_transferred_to_another_queue_reaches_a_seat_of_that_skill(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    tmp_path: Path,
) -> None:
    phones = await seats("8001", "8003")  # report: 8001 only; business: 8003 first
    caller, call_id, call = await caller_at_8001(hotline, tmp_path, 30_000)
    auth = await operator_auth(hotline, "8001")
    # another operator's seat, an unknown queue: refused, nothing moves
    status, body = await transfer(hotline, "8003", "queue:business", auth)
    assert status == 403, body
    status, body = await transfer(hotline, "8001", "queue:nowhere", auth)
    assert status == 400 and body["error"]["code"] == "invalid_input", body
    status, body = await transfer(hotline, "8001", "queue:business", auth)
    assert status == 200, body
    assert body == {"call_id": call_id, "from": "8001", "to": "queue:business",
                    "by": "e2e-op-8001"}  # fmt: skip

    async def at_second_seat() -> bool:
        return any(e.type == "connect" and e.seat == "8003"
                   for e in await call_events(hotline, caller))  # fmt: skip

    await eventually(at_second_seat, 40, "the transferred caller to reach seat 8003")
    assert phones["8003"].callers() == [caller]
    assert phones["8001"].callers() == [caller]
    # the first seat's part ended when the caller left it: it is no longer on that call
    first = await hotline.acd.seat("8001")
    assert not (first.state is SeatState.ON_CALL and first.call_id == call_id)
    await call.hang_up()  # the citizen, talking to 8003, hangs up: sipp's scenario completes
    kinds = [(e.type, e.seat) for e in await call_events(hotline, caller)]
    assert kinds.index(("connect", "8001")) < kinds.index(("complete", "8001"))
    assert kinds.index(("complete", "8001")) < kinds.index(("connect", "8003"))
    entered = [e.data for e in await call_events(hotline, caller) if e.type == "enter"]
    assert len(entered) == 2  # the IVR's queue, then the transfer's
    assert await journey_transfers(hotline, call_id) == [
        ("queue:business", "from seat 8001 by e2e-op-8001")
    ]


async def test_the_second_party_of_a_transferred_call_is_recorded_with_the_call(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The citizen speaks all along (a tone streamed as RTP); seat 8001 sends the call to
    queue business, where 8003 talks to the citizen until the citizen hangs up. The call's one
    recording (MixMonitor on the citizen's channel) goes on through the second seat's part:
    it is drafted once the citizen hangs up, lasts about as long as the citizen was bridged
    with 8003 (without the fix: stopped when 8001's part ended, a second or two), and is the
    recording of the call's work order."""
    await seats("8001", "8003")
    voice = await tone(tmp_path)
    caller, call_id, call = await caller_at_8001(hotline, tmp_path, 25_000, speak=voice)
    status, body = await transfer(hotline, "8001", "queue:business",
                                  await operator_auth(hotline, "8001"))  # fmt: skip
    assert status == 200, body

    async def second_part_began() -> float | None:
        return next((e.at for e in await call_events(hotline, caller)
                     if e.type == "connect" and e.seat == "8003"), None)  # fmt: skip

    began = await eventually(second_part_began, 40, "the transferred caller to reach 8003")
    await call
    second_part_s = time.time() - began
    assert second_part_s > 8, "the scenario leaves the citizen long enough with 8003"

    result = await intake_of(hotline, call_id)
    assert result.duration_s is not None
    assert result.duration_s > second_part_s - 3, (result.duration_s, second_part_s)
    order = await hotline.work_orders.get(result.work_order_number)
    assert order.recording_path == str(result.files.mix)
    assert await journey_transfers(hotline, call_id) == [
        ("queue:business", "from seat 8001 by e2e-op-8001")
    ]


async def intake_of(hotline: Hotline, call_id: str) -> IntakeResult:
    """The call's recording and work order, once intake has drafted it."""

    async def drafted() -> IntakeResult | None:
        try:
            return await hotline.intake.recordings.wait_done(call_id, timeout=1)
        except (KeyError, TimeoutError):
            return None

    result: IntakeResult = await eventually(drafted, 60, "the transferred call's work order")
    return result


async def test_a_caller_transferred_to_a_named_seat_rings_that_seat(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    ami_events: AmiEvents,
    tmp_path: Path,
) -> None:
    """Outside the ACD, seat 8003 answers the caller's own Dial: its operator's live events
    (what the desk shows) pop with the call and then its end, and the order goes to 8003."""
    phones = await seats("8001", "8003")
    desk_8003 = User(0, "e2e-op-8003", AccountRole.OPERATOR, extension="8003")
    seen = hotline.live.subscribe(desk_8003, frozenset({"call", "call-ended"}))
    try:
        caller, call_id, call = await caller_at_8001(hotline, tmp_path, 20_000)
        auth = await operator_auth(hotline, "8001")
        status, body = await transfer(hotline, "8001", "seat:8001", auth)
        assert status == 400, body  # not to itself
        status, body = await transfer(hotline, "8001", "seat:8003", auth)
        assert status == 200, body

        async def rung() -> bool:
            return phones["8003"].callers() == [caller]

        await eventually(rung, 15, "seat 8003's phone to ring with the caller")

        async def talking_to_8003() -> bool:
            return any(name.startswith("PJSIP/8003-") for name in _bridge_of(ami_events, call_id))

        await eventually(talking_to_8003, 15, "the caller in one bridge with seat 8003")
        popped = await asyncio.wait_for(seen.queue.get(), 10)
        assert popped is not None and popped.topic == "call", popped
        assert (popped.data["call_id"], popped.data["seat"]) == (call_id, "8003")
        assert popped.data["caller_number"] == caller
        order = await hotline.work_orders.by_call(call_id)
        assert order is not None and order.seat == "8003"  # opened at 8001's desk
        on_8003 = await hotline.acd.seat("8003")  # the ACD keeps it (its desk may transfer)
        assert (on_8003.state, on_8003.call_id) == (SeatState.ON_CALL, call_id)
        await call.hang_up()  # the citizen, talking to 8003, hangs up
        ended = await asyncio.wait_for(seen.queue.get(), 10)
        assert ended is not None and ended.topic == "call-ended", ended
        assert (ended.data["call_id"], ended.data["seat"]) == (call_id, "8003")
    finally:
        hotline.live.unsubscribe(seen)
    assert await journey_transfers(hotline, call_id) == [
        ("seat:8003", "from seat 8001 by e2e-op-8001")
    ]

    # not through the ACD's routing: the caller entered a queue once and met seat 8001
    # there; seat 8003, reached by name, is kept on the call, then completes it (wrap-up)
    async def completed_at_8003() -> list[tuple[str, str]] | None:
        kinds = [(e.type, e.seat) for e in await call_events(hotline, caller)]
        return kinds if ("complete", "8003") in kinds else None

    kinds = await eventually(completed_at_8003, 10, "seat 8003's part completed in the ACD")
    assert [k for k in kinds if k[0] in ("enter", "connect")] == [
        ("enter", ""),
        ("connect", "8001"),
        ("connect", "8003"),
    ]


async def test_handover_to_an_emergency_number_keeps_the_caller_until_it_answers(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    ami_events: AmiEvents,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The operator clicks 110 on the desk (headless Chromium, the session's CSRF token)."""
    s = hotline.settings
    await staff_token(hotline.accounts.accounts, "e2e-desk-8001", AccountRole.OPERATOR,
                      password=DESK_PASSWORD, extension="8001")  # fmt: skip
    context = await new_context(browser, f"http://{s.web_host}:{s.web_port}")
    page = await context.new_page()
    # the emergency service's phone behind the carrier trunk: answers after 1.5 s of ringing
    police = await run_uas(tmp_path, "110", CALLBACK_PORT, uas_scenario(True, 1500))
    try:
        await seats("8001")
        await log_in(page, "e2e-desk-8001", DESK_PASSWORD, then="/desk")
        await expect(page.locator("body")).to_have_attribute("data-live", "open")
        caller, call_id, call = await caller_at_8001(hotline, tmp_path, 20_000)
        auth = await operator_auth(hotline, "8001")
        status, body = await transfer(hotline, "8001", "emergency:999", auth)
        assert status == 400, body  # not a configured emergency number
        await expect(page.locator("#caller-number")).to_have_text(caller)
        await page.click("button[data-to='emergency:110']")
        await expect(page.locator("#message")).to_contain_text("emergency:110")

        async def invited() -> bool:
            return bool(police.invites())

        await eventually(invited, 15, "the emergency number's phone to ring")
        [invite] = police.invites()
        assert _sip_user(invite.splitlines()[0]) == "110", invite
        # the citizen's own channel dialled 110 and, once answered, shares a bridge with it
        await eventually(lambda: _bridged_with(ami_events, call_id, "110"), 15,
                         "the caller bridged with 110")  # fmt: skip
        await call.hang_up()
        assert await journey_transfers(hotline, call_id) == [
            ("emergency:110", "from seat 8001 by e2e-desk-8001")
        ]
    finally:
        await context.close()
        await police.stop()


def _sip_user(text: str) -> str:
    match = re.search(r"sip:([^@;>\s]+)@", text)
    return match.group(1) if match else ""


async def _bridged_with(events: AmiEvents, call_id: str, number: str) -> bool:
    """AMI: the caller's channel (``call_id``) dialled ``number`` (DialBegin) and BridgeEnter
    put both channels into one bridge."""
    bridges: dict[str, set[str]] = {}
    for e in events.seen:
        if e.get("Event") == "BridgeEnter":
            bridges.setdefault(e.get("Uniqueid", ""), set()).add(e.get("BridgeUniqueid", ""))
    return any(
        bridges.get(call_id, set()) & bridges.get(e.get("DestUniqueid", ""), set())
        for e in events.seen
        if e.get("Event") == "DialBegin"
        and e.get("Uniqueid") == call_id
        and f"sip:{number}@" in e.get("DialString", "")
    )


@pytest.mark.parametrize("how", ["#1", "REFER"])
async def test_a_seat_transfers_its_caller_from_the_softphone(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    tmp_path: Path,
    how: str,
) -> None:
    """Seat 8001's softphone sends its caller to queue business during the call: by keys
    (#1 and the queue's code, *4<n>) or by its own transfer button (REFER to that code;
    Asterisk's NOTIFYs and BYE end the seat's part). Asterisk's blind transfer sends the
    caller there, seat 8003 answers, and the engine puts the transfer on the call record
    from AMI's BlindTransfer event."""
    s = hotline.settings
    [code] = [c for c, t in transfer_codes(hotline.acd.seats, ()).items()
              if t == Target("queue", "business")]  # fmt: skip
    assert code.startswith("*4")
    phones = await seats("8003")
    password = stored_secret(s.data_dir, "seat-8001")
    if how == "#1":
        first = await _pressing_seat(tmp_path, "8001", password, s.sip_port, "#1" + code)
    else:
        first = await run_uas(tmp_path, "8001", free_udp_port(),
                              refer_scenario(code, 2000, s.sip_port))  # fmt: skip
        await asyncio.sleep(0.2)
        await register(tmp_path, "8001", password, sip_port=s.sip_port,
                       contact_port=first.port, expires=3600)  # fmt: skip
    try:
        await hotline.acd.login("8001", "2468")
        hotline.dispatcher.kick()
        caller, call_id, call = await caller_at_8001(hotline, tmp_path, 30_000)

        async def at_second_seat() -> bool:
            return any(e.type == "connect" and e.seat == "8003"
                       for e in await call_events(hotline, caller))  # fmt: skip

        await eventually(at_second_seat, 40, f"the caller transferred by {how} to reach 8003")
        assert phones["8003"].callers() == [caller]

        async def recorded() -> list[tuple[str, str]]:
            return await journey_transfers(hotline, call_id)

        steps = await eventually(recorded, 10, "the transfer on the call record")
        assert steps == [("queue:business", f"from seat 8001 by softphone ({how})")]
        await call.hang_up()
    finally:
        await eventually(lambda: _not_on_call(hotline, "8001"), 30, "seat 8001 to be free")
        await hotline.acd.logout("8001")
        await unregister(first, password, sip_port=s.sip_port)
        await first.stop()


async def _not_on_call(hotline: Hotline, ext: str) -> bool:
    return (await hotline.acd.seat(ext)).state not in {SeatState.RINGING, SeatState.ON_CALL}


async def _pressing_seat(
    workdir: Path, ext: str, password: str, sip_port: int, keys: str,
    hangup_after_ms: int | None = None,
) -> Seat:  # fmt: skip
    """A registered sipp seat that answers and then presses ``keys`` (RFC 4733, one burst:
    a second stream would repeat the first one's RTP timestamps), then waits for the BYE,
    or hangs up itself ``hangup_after_ms`` after the keys."""
    pcap = write_dtmf_pcap(workdir / f"seat-{ext}-keys.pcap", keys)
    presses = (f'  <pause milliseconds="3000"/>\n'
               f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
               f'  <pause milliseconds="{sequence_duration_ms(keys) + 500}"/>\n')  # fmt: skip
    ack = '  <recv request="ACK"/>\n'
    xml = uas_scenario(True, 300, hangup_after_ms).replace(ack, ack + presses, 1)
    seat = await run_uas(workdir, ext, free_udp_port(), xml)
    await asyncio.sleep(0.2)
    await register(workdir, ext, password, sip_port=sip_port, contact_port=seat.port,
                   expires=3600)  # fmt: skip
    return seat


async def test_a_three_way_call_puts_caller_seat_and_department_in_one_bridge(
    hotline: Hotline,
    seats: StartSeats,  # noqa: F811
    ami_events: AmiEvents,
    tmp_path: Path,
) -> None:
    department = "02988886666"  # a local number: the callback rule would call it
    office = await run_uas(tmp_path, "office", CALLBACK_PORT, uas_scenario(True, 1000))
    call_id = ""
    try:
        await seats("8001")
        caller, call_id, call = await caller_at_8001(hotline, tmp_path, 20_000)
        auth = await operator_auth(hotline, "8001")
        status, body = await transfer(hotline, "8001", "three-way:0012025550100", auth)
        assert status == 400, body  # international: never dialled
        status, body = await transfer(hotline, "8001", f"three-way:{department}", auth)
        assert status == 200, body

        async def invited() -> bool:
            return bool(office.invites())

        await eventually(invited, 15, "the department's phone to ring")
        [invite] = office.invites()
        assert _sip_user(invite.splitlines()[0]) == department, invite

        async def three_in_one_bridge() -> bool:
            return len(_bridge_of(ami_events, call_id)) == 3

        await eventually(three_in_one_bridge, 15, "caller, seat and department in one bridge")
        members = _bridge_of(ami_events, call_id)
        assert any(name.startswith("PJSIP/8001-") for name in members), members
        await call.hang_up()
        assert await journey_transfers(hotline, call_id) == [
            (f"three-way:{department}", "from seat 8001 by e2e-op-8001")
        ]
    finally:
        await end_room(hotline, ami_events, call_id)
        await office.stop()


async def end_room(hotline: Hotline, events: AmiEvents, call_id: str) -> None:
    """Hang up what is left of a three-way room once the citizen has gone: the seat and the
    department would talk on (the room lasts while two remain), keeping the seat busy for
    the tests that follow."""
    for channel in _bridge_of(events, call_id):
        try:
            await hotline.ami.action({"Action": "Hangup", "Channel": channel})
        except AmiActionError:
            pass  # already gone


def _bridge_of(events: AmiEvents, call_id: str) -> set[str]:
    """The channels that entered the bridge the caller's channel entered last (AMI)."""
    entered = [e for e in events.seen if e.get("Event") == "BridgeEnter"]
    mine = [e.get("BridgeUniqueid", "") for e in entered if e.get("Uniqueid") == call_id]
    if not mine:
        return set()
    return {e.get("Channel", "") for e in entered if e.get("BridgeUniqueid") == mine[-1]}
