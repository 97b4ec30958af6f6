"""A supervisor's controls through real calls (issue 11): listening in on a seat's live call
(ChanSpy by AMI Originate to the supervisor's softphone, a sipp UAS whose audio port is a
socket of this test) and broadcast announcements that callers hear before the main menu
until they expire."""

from __future__ import annotations

import asyncio
import io
import struct
import subprocess
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from browser import browser, log_in, new_context  # noqa: F401
from conftest import AmiEvents, call_record, eventually, new_caller
from panoramisk.message import Message
from playwright.async_api import Browser
from seat_calls import REPORT
from staff import staff_token, supervisor_auth
from test_prompts import write_tone

from accounts.users import AccountRole
from agents.states import SeatState
from hotline.engine import Hotline
from hotline.secrets import stored_secret
from ivr.announcements import Announcements
from sipsim.citizen import free_udp_port, media_on, place_call, start_call
from sipsim.rtp import FRAME, share
from sipsim.seat import Seat, dial_feature_code, register, start_seat, uas_scenario, unregister

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEAT, PHONE = "8001", "8006"  # the operator on the call; the supervisor's softphone
PHONE_OWNER = "e2e-sup-8006"  # the supervisor whose account is bound to PHONE
BOARD_PASSWORD = "listen-in board password"


def base(hotline: Hotline) -> str:
    return f"http://{hotline.settings.web_host}:{hotline.settings.web_port}"


async def phone_owner_auth(hotline: Hotline) -> dict[str, str]:
    """The Authorization header of the supervisor whose account's phone is PHONE."""
    token = await staff_token(hotline.accounts.accounts, PHONE_OWNER, AccountRole.SUPERVISOR,
                              extension=PHONE)  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


class RtpCounter(asyncio.DatagramProtocol):
    """The supervisor phone's audio port: counts RTP packets and those carrying sound."""

    def __init__(self) -> None:
        self.packets = 0
        self.sounding = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) <= 12 or data[0] >> 6 != 2:  # not RTP version 2
            return
        self.packets += 1
        payload = data[12:]
        if len(set(payload)) > 8:  # µ-law silence is one or two byte values
            self.sounding += 1


async def supervisor_phone(
    workdir: Path, hotline: Hotline, rtp_port: int
) -> tuple[asyncio.subprocess.Process, int]:
    """A sipp UAS registered as PHONE that answers and announces ``rtp_port`` in its SDP;
    the process and its SIP port."""
    s = hotline.settings
    port = free_udp_port()
    scenario = workdir / "supervisor-phone.xml"
    xml = media_on(uas_scenario(True, 200), rtp_port)
    scenario.write_text(xml, encoding="ISO-8859-1")
    process = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-m", "2",
        "-nostdin", "-trace_msg", "-message_file", str(workdir / "supervisor-phone.log"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(0.2)
    assert process.returncode is None, "the supervisor phone's sipp exited"
    password = stored_secret(s.data_dir, f"seat-{PHONE}")
    await register(workdir, PHONE, password, sip_port=s.sip_port, contact_port=port, expires=3600)
    return process, port


async def test_supervisor_listens_to_a_live_call(
    hotline: Hotline,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The wallboard's Listen button beside a seat on a call rings the logged-in supervisor's
    phone (their account's extension), which receives the call's audio; then a barge into the
    same call by the API, again on the account's phone; a supervisor without one is refused."""
    s = hotline.settings
    tone = tmp_path / "tone.wav"
    sox = ["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(tone), "synth", "30", "sine"]
    await asyncio.to_thread(subprocess.run, [*sox, "440"], check=True)
    seat = await start_seat(tmp_path, SEAT, stored_secret(s.data_dir, f"seat-{SEAT}"),
                            sip_port=s.sip_port, speak=tone)  # fmt: skip
    counter = RtpCounter()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: counter, local_addr=("127.0.0.1", 0)
    )
    rtp_port = transport.get_extra_info("sockname")[1]
    phone, phone_port = await supervisor_phone(tmp_path, hotline, rtp_port)
    spies: list[Message] = []
    hotline.ami.on("ChanSpyStart", spies.append)
    caller = new_caller()
    call = await start_call(
        tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=caller, presses=REPORT, hold_ms=26_000,
    )  # fmt: skip
    try:
        await hotline.acd.login(SEAT, "2468")
        hotline.dispatcher.kick()

        async def on_call() -> bool:
            return (await hotline.acd.seat(SEAT)).state is SeatState.ON_CALL

        await eventually(on_call, 40, f"seat {SEAT} to answer the caller")
        auth = await phone_owner_auth(hotline)
        unbound = await supervisor_auth(hotline)  # a supervisor whose account has no phone
        operator = await staff_token(hotline.accounts.accounts, "e2e-op-8002",
                                     AccountRole.OPERATOR, extension="8002")  # fmt: skip
        async with aiohttp.ClientSession(base(hotline)) as http:
            url = f"/api/seats/{SEAT}/listen"
            refusals: list[tuple[str, dict[str, Any], dict[str, str], int, str]] = [
                (url, {"mode": "shout", "phone": PHONE}, auth, 400, "invalid_input"),
                (url, {"phone": "9999"}, auth, 400, "invalid_input"),
                (url, {"phone": SEAT}, auth, 400, "invalid_input"),
                (url, {"mode": "listen"}, unbound, 400, "invalid_input"),
                ("/api/seats/8002/listen", {"phone": PHONE}, auth, 409, "not_on_call"),
                ("/api/seats/8002/listen", {"phone": "8002"},
                 {"Authorization": f"Bearer {operator}"}, 403, "forbidden"),
            ]  # fmt: skip
            for path, body, headers, status, code in refusals:
                async with http.post(path, json=body, headers=headers) as r:
                    answer = await r.json()
                    assert (r.status, answer["error"]["code"]) == (status, code), (body, answer)
            assert counter.packets == 0 and not spies
        await staff_token(hotline.accounts.accounts, "e2e-board", AccountRole.SUPERVISOR,
                          password=BOARD_PASSWORD, extension=PHONE)  # fmt: skip
        context = await new_context(browser, base(hotline))
        try:
            page = await context.new_page()
            await log_in(page, "e2e-board", BOARD_PASSWORD, then="/supervisor")
            await page.wait_for_function(
                f"document.getElementById('my-phone').textContent === '{PHONE}'"
            )
            await page.click(f'button[data-seat="{SEAT}"][data-action="listen"]')
            await page.wait_for_function(
                "document.getElementById('notice').textContent.includes('ringing your phone')"
            )
        finally:
            await context.close()

        await eventually(lambda: _true(counter.sounding > 50), 20, "the call's audio on the phone")
        [spy] = spies
        assert spy["SpyeeChannel"].startswith(f"PJSIP/{SEAT}-"), dict(spy)
        assert spy["SpyerChannel"].startswith(f"PJSIP/{PHONE}-"), dict(spy)
        entries = await hotline.accounts.accounts.audit_log(30)
        uses = [e for e in entries if e["action"] == "listen_in"]
        assert uses and uses[0]["actor"] == "e2e-board" and uses[0]["target"] == SEAT
        assert f"phone={PHONE}" in uses[0]["detail"] and "mode=listen" in uses[0]["detail"]
        # barge into the same call: the phone rings again and ChanSpy joins the seat's call
        async with aiohttp.ClientSession(base(hotline)) as http:
            async with http.post(url, json={"mode": "barge"}, headers=auth) as r:
                assert r.status == 202 and (await r.json())["phone"] == PHONE, await r.text()
        await eventually(lambda: _true(len(spies) == 2), 20, "ChanSpy to start barging")
        assert spies[1]["SpyerChannel"].startswith(f"PJSIP/{PHONE}-"), dict(spies[1])
        assert spies[1]["SpyeeChannel"].startswith(f"PJSIP/{SEAT}-"), dict(spies[1])
        uses = [e for e in await hotline.accounts.accounts.audit_log(30)
                if e["action"] == "listen_in"]  # fmt: skip
        assert "mode=barge" in uses[0]["detail"], uses
        result = await call.hang_up()
        assert result.returncode == 0, result.errors[-2000:]
    finally:
        if not call.done():
            call.cancel()
        transport.close()
        await release(hotline, tmp_path, phone, phone_port, seat)


async def release(
    hotline: Hotline, workdir: Path, phone: asyncio.subprocess.Process, phone_port: int,
    seat: Seat,
) -> None:  # fmt: skip
    """After a listen-in: the supervisor's phone stopped and unregistered; the seat free
    again, logged out, unregistered and stopped."""
    s = hotline.settings
    if phone.returncode is None:
        phone.terminate()
        await phone.wait()
    await register(workdir, PHONE, stored_secret(s.data_dir, f"seat-{PHONE}"),
                   sip_port=s.sip_port, contact_port=phone_port, expires=0)  # fmt: skip
    await eventually(lambda: _not_on_call(hotline, seat.ext), 30, f"seat {seat.ext} to hang up")
    await hotline.acd.logout(seat.ext)
    await unregister(seat, stored_secret(s.data_dir, f"seat-{seat.ext}"), sip_port=s.sip_port)
    await seat.stop()


async def _true(value: bool) -> bool:
    return value


async def _not_on_call(hotline: Hotline, ext: str) -> bool:
    return (await hotline.acd.seat(ext)).state not in {SeatState.RINGING, SeatState.ON_CALL}


async def silent_call(
    hotline: Hotline, ami_events: AmiEvents, workdir: Path, hold_ms: int
) -> tuple[dict[str, Any], list[str]]:
    """A caller who presses nothing: the call record and the AGI commands it ran (the files)."""
    s, caller = hotline.settings, new_caller()
    result = await place_call(
        workdir, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=caller, presses=[], hold_ms=hold_ms,
    )  # fmt: skip
    assert result.returncode == 0, result.errors[-2000:]
    call = await call_record(hotline, caller)
    played = [
        e.get("CommandLine", "") or e.get("Command", "")
        for e in ami_events.of(call["uniqueid"], "AGIExecStart")
    ]
    return call, played


@contextmanager
def clock_past(announcements: Announcements, moment: datetime) -> Iterator[None]:
    """The announcements' clock a second past ``moment`` (an expiry) instead of waiting for
    it; the real clock again afterwards."""
    clock = announcements.clock
    ahead = max(timedelta(0), moment + timedelta(seconds=1) - datetime.now(UTC))
    announcements.clock = lambda: datetime.now(UTC) + ahead
    try:
        yield
    finally:
        announcements.clock = clock


def announcement_steps(call: dict[str, Any]) -> list[str]:
    """The kinds of the call's steps up to its first menu."""
    kinds = [step["kind"] for step in call["journey"]]
    return kinds[: kinds.index("menu")] if "menu" in kinds else kinds


async def test_announcement_is_heard_before_the_menu_until_it_expires(
    hotline: Hotline, ami_events: AmiEvents, tmp_path: Path
) -> None:
    auth = await supervisor_auth(hotline)
    soon = datetime.now(UTC) + timedelta(seconds=45)
    async with aiohttp.ClientSession(base(hotline)) as http:
        bad: list[Any] = [
            {"expires_at": soon.isoformat()},
            {"texts": {"fr": "Coupure d'eau"}, "expires_at": soon.isoformat()},
            {"texts": {"zh": ""}, "expires_at": soon.isoformat()},
            {"texts": {"zh": "停水"}, "expires_at": "2020-01-01T00:00:00+08:00"},
            {"texts": {"zh": "停水"}, "expires_at": "2030-01-01T00:00:00"},
            {"texts": {"zh": "停水"}, "expires_at": "tomorrow"},
            {"texts": {"zh": "停\x07水"}, "expires_at": soon.isoformat()},
            ["not", "an", "object"],
        ]
        for body in bad:
            async with http.post("/api/announcements", json=body, headers=auth) as r:
                answer = await r.json()
                assert r.status == 400 and answer["error"]["code"] == "invalid_input", answer
        async with http.post("/api/announcements", json={"texts": {"zh": "停水"}}) as r:
            assert r.status == 401
        texts = {"zh": "东城区今天停水，预计下午六点恢复。", "en": "Water outage in the east."}
        body = {"texts": texts, "expires_at": soon.isoformat()}
        async with http.post("/api/announcements", json=body, headers=auth) as r:
            assert r.status == 201, await r.text()
            made = await r.json()
        async with http.get("/api/announcements", headers=auth) as r:
            listed = (await r.json())["announcements"]
        assert [a["id"] for a in listed] == [made["id"]]
        assert listed[0]["texts"] == body["texts"] and listed[0]["created_by"] == "e2e-lead"
        # one more, ended early: DELETE, then a second DELETE finds nothing
        async with http.post("/api/announcements", json=body, headers=auth) as r:
            extra = (await r.json())["id"]
        async with http.delete(f"/api/announcements/{extra}", headers=auth) as r:
            assert r.status == 200
        async with http.delete(f"/api/announcements/{extra}", headers=auth) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"

        call, played = await silent_call(hotline, ami_events, tmp_path, 12_000)
        heard = [st for st in call["journey"] if st["kind"] == "announcement"]
        assert [st["detail"] for st in heard] == [made["id"], made["id"]], call["journey"]
        assert announcement_steps(call) == ["announcement", "announcement"], call["journey"]
        first = [i for i, c in enumerate(played) if made["id"] in c]
        menu = [i for i, c in enumerate(played) if "/welcome-" in c or "/language-" in c]
        assert [played[i].split("/")[-2] for i in first] == ["zh", "en"], played
        assert menu and max(first) < min(menu), played

        with clock_past(hotline.announcements, soon):
            async with http.get("/api/announcements", headers=auth) as r:
                assert (await r.json())["announcements"] == []
            after, played = await silent_call(hotline, ami_events, tmp_path, 5000)
        assert not [st for st in after["journey"] if st["kind"] == "announcement"], after["journey"]
        assert not [c for c in played if made["id"] in c] and played, played


async def test_recorded_announcement_is_heard_before_the_menu_until_it_expires(
    hotline: Hotline, ami_events: AmiEvents, tmp_path: Path
) -> None:
    """A supervisor's recording (uploaded as the wallboard does) is streamed by Asterisk to
    a sipp caller to its end, then the main menu plays; once expired, callers go straight to
    the menu."""
    ends: list[Message] = []
    hotline.ami.on("AGIExecEnd", ends.append)
    auth = await supervisor_auth(hotline)
    soon = datetime.now(UTC) + timedelta(seconds=20)
    sound = write_tone(tmp_path / "outage.wav", rate=44_100, seconds=1.5).read_bytes()
    async with aiohttp.ClientSession(base(hotline)) as http:
        url = f"/api/announcements/recording?expires_at={quote(soon.isoformat())}"
        async with http.post(url, data=sound, headers=auth) as r:
            assert r.status == 201, await r.text()
            made = await r.json()
        assert made["recording"] and made["seconds"] == 1.5

        call, played = await silent_call(hotline, ami_events, tmp_path, 9000)
        assert announcement_steps(call) == ["announcement"], call["journey"]
        first = [i for i, c in enumerate(played) if made["id"] in c]
        menu = [i for i, c in enumerate(played) if "/welcome-" in c or "/language-" in c]
        assert len(first) == 1 and menu and first[0] < min(menu), played
        assert f"/recorded/{made['id']}-{made['recording']}" in played[first[0]]
        # Asterisk streamed the file to its end: the command lasted the recording's length (a
        # missing or unreadable file ends at once) and succeeded
        start = [e for e in ami_events.of(call["uniqueid"], "AGIExecStart")
                 if made["id"] in e.get("Command", "")]  # fmt: skip
        end = [e for e in ends if e.get("Uniqueid") == call["uniqueid"]
               and made["id"] in e.get("Command", "")]  # fmt: skip
        assert len(start) == len(end) == 1 and end[0]["ResultCode"] == "200", end
        lasted = float(end[0]["Timestamp"]) - float(start[0]["Timestamp"])
        assert lasted >= 1.5 - 0.1, f"the recording played for {lasted:.2f} s only"

        with clock_past(hotline.announcements, soon):
            after, played = await silent_call(hotline, ami_events, tmp_path, 5000)
        assert announcement_steps(after) == [], after["journey"]
        assert not [c for c in played if made["id"] in c] and played, played


async def test_supervisor_records_an_announcement_from_their_phone(
    hotline: Hotline, tmp_path: Path
) -> None:
    """*25<minutes> from a supervisor's phone (their account's extension): a prompt, a beep,
    the phone's voice (a 400 Hz tone) until #, and the recording is an announcement by that
    supervisor for those minutes, its sound the phone's; an operator's seat (bound to an
    operator's account) and PHONE once no supervisor's account holds it are refused and
    nothing is stored."""
    s, store, accounts = hotline.settings, hotline.announcements, hotline.accounts.accounts
    await staff_token(accounts, "e2e-op-8002", AccountRole.OPERATOR, extension="8002")
    await phone_owner_auth(hotline)  # PHONE_OWNER's account holds PHONE
    for user in await accounts.users():  # no other supervisor (e.g. e2e-board) holds PHONE
        if user.extension == PHONE and user.name != PHONE_OWNER:
            await accounts.bind(user.name, extension="", actor="test")
    tone = tmp_path / "voice.wav"
    sox = ["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(tone), "synth", "2", "sine"]
    await asyncio.to_thread(subprocess.run, [*sox, "400"], check=True)
    before = {a.id for a in await store.current()}
    await dial_feature_code(tmp_path, "8002", stored_secret(s.data_dir, "seat-8002"), "*25",
                            sip_port=s.sip_port)  # fmt: skip
    assert {a.id for a in await store.current()} == before  # refused: not a supervisor's
    await accounts.bind(PHONE_OWNER, extension="", actor="test")
    try:
        await dial_feature_code(tmp_path, PHONE, stored_secret(s.data_dir, f"seat-{PHONE}"),
                                "*25", sip_port=s.sip_port)  # fmt: skip
    finally:
        await accounts.bind(PHONE_OWNER, extension=PHONE, actor="test")
    assert {a.id for a in await store.current()} == before  # refused: no supervisor's phone

    await dial_feature_code(tmp_path, PHONE, stored_secret(s.data_dir, f"seat-{PHONE}"),
                            "*2530", sip_port=s.sip_port, keys="#", speak=tone)  # fmt: skip
    (made,) = [a for a in await store.current() if a.id not in before]
    try:
        assert made.created_by == PHONE_OWNER and made.recording and made.texts == {}
        assert 1.0 <= made.seconds <= 15, made
        left = made.expires_at - datetime.now(UTC)
        assert timedelta(minutes=28) < left <= timedelta(minutes=30), left
        audio = await hotline.acd.redis.get(store.audio_key(made.id))
        with wave.open(io.BytesIO(audio), "rb") as sound:
            frames = sound.readframes(sound.getnframes())
        samples = [v for (v,) in struct.iter_unpack("<h", frames)]
        windows = [samples[i : i + FRAME] for i in range(0, len(samples) - FRAME, FRAME)]
        voiced = sum(1 for w in windows if share(w, 400) > 0.5)
        assert voiced >= 25, f"{voiced} of {len(windows)} 20 ms windows hold the phone's tone"
        assert not list(s.recordings_dir.glob("announcement-*")), "the raw recording is left"
    finally:
        await store.remove(made.id)
