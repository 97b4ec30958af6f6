"""The ACD through real faults with live calls: kill -9 of the engine mid-conversation, a
Redis restart (and one that lost its data), a missed AMI DialEnd, two engines on one Redis.

One Asterisk and one managed Redis (queueing.redis_server, on private ports) serve the
module; engines come and go: a child process (``hotline up``, so kill -9 is real) or one
in this process where the test must see inside it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from conftest import (
    PORT_OFFSET,
    TEST_AMI_EVENTS,
    AmiEvents,
    call_record,
    eventually,
    fast_menu,
    fast_seats,
    new_caller,
)
from seat_calls import REPORT
from staff import staff_token
from test_consult import talking

from accounts.users import AccountRole
from agents.seats import load_seats
from agents.states import SeatState
from calls.reconcile import UNHEARD
from calls.store import CallStore
from hotline.child import EngineProcess
from hotline.database import make_engine, make_sessions
from hotline.engine import Hotline
from hotline.secrets import stored_secret
from hotline.settings import Settings
from hotline.wiring import accounts_web, ami_secret, provision_asterisk, work_orders
from intake.store import RecordingStore
from ivr.menu import load_menu
from pbx.ami import AmiClient, EventHandler
from pbx.instance import AsteriskInstance
from queueing.acd import Acd
from queueing.events import read_events
from queueing.models import CallKind
from queueing.redis_server import RedisServer
from sipsim.citizen import (
    citizen_scenario,
    free_media_port,
    free_udp_port,
    hung_up_by_hotline,
)
from sipsim.seat import Seat, start_seat, unregister

PIN = "2468"


@dataclass
class Pbx:
    settings: Settings
    redis: RedisServer
    asterisk: AsteriskInstance
    workdir: Path

    def acd(self, client: aioredis.Redis) -> Acd:
        return Acd(client, load_seats(self.settings.seats_file), prefix=self.settings.acd_prefix)


@pytest.fixture(scope="module")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pbx]:
    """Asterisk and the hotline's own Redis on this module's ports; no engine."""
    if os.geteuid() != 0:
        pytest.skip("fault tests run Asterisk in a chroot: they need root")
    base = tmp_path_factory.mktemp("faults")
    server = RedisServer(base / "redis", 6690 + PORT_OFFSET, secrets.token_urlsafe(16))
    server.start()
    environ = {"HOTLINE_REDIS_URL": server.url, "HOTLINE_AMI_EXTRA_EVENTS": TEST_AMI_EVENTS}
    settings = Settings.load(environ=environ).replace(
        data_dir=base / "var",
        recordings_dir=base / "recordings",
        menu_file=fast_menu(base / "menu.toml"),
        seats_file=fast_seats(base / "seats.toml"),
        acd_prefix=f"hotline-fault-{os.getpid()}:acd:",
        manage_asterisk=False,
        queue_announce_interval_s=60.0,
        callback_offer_after_s=0.0,
        seat_qualify_s=0,
        seat_rewrite_contact=False,
        sip_port=6060 + PORT_OFFSET,
        ami_port=6038 + PORT_OFFSET,
        agi_port=6073 + PORT_OFFSET,
        web_port=9245 + PORT_OFFSET,
        rtp_port_start=16000 + 2 * PORT_OFFSET,
        rtp_port_end=16999 + 2 * PORT_OFFSET,
    )
    asterisk = provision_asterisk(settings, load_menu(settings.menu_file))
    try:
        asterisk.start()
        yield Pbx(settings, server, asterisk, base / "work")
    finally:
        asterisk.stop()
        asterisk.unmount()
        server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def redis(pbx: Pbx) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(pbx.redis.url, socket_timeout=5)
    yield client
    await client.aclose()


async def seat_phone(pbx: Pbx, ext: str, **options: Any) -> Seat:
    s = pbx.settings
    return await start_seat(
        pbx.workdir, ext, stored_secret(s.data_dir, f"seat-{ext}"), sip_port=s.sip_port, **options
    )


async def drop_phone(pbx: Pbx, seat: Seat) -> None:
    s = pbx.settings
    await unregister(seat, stored_secret(s.data_dir, f"seat-{seat.ext}"), sip_port=s.sip_port)
    await seat.stop()


async def start_call(
    pbx: Pbx, caller: str, hold_ms: int, *, seat_hangs_up: bool = False
) -> asyncio.subprocess.Process:
    """A sipp citizen pressing 1, 1 (report queue); returns the running sipp."""
    s = pbx.settings
    pbx.workdir.mkdir(parents=True, exist_ok=True)
    scenario = pbx.workdir / f"citizen-{caller}.xml"
    xml = citizen_scenario(caller, REPORT, hold_ms, pbx.workdir)
    scenario.write_text(hung_up_by_hotline(xml) if seat_hangs_up else xml, encoding="ISO-8859-1")
    return await asyncio.create_subprocess_exec(
        "sipp", f"{s.sip_host}:{s.sip_port}", "-sf", str(scenario), "-s", s.hotline_number,
        "-m", "1", "-l", "1", "-i", "127.0.0.1", "-p", str(free_udp_port()),
        "-mi", "127.0.0.1", "-mp", str(free_media_port()), "-timeout", "80s", "-nostdin",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def finished(call: asyncio.subprocess.Process, timeout_s: float = 90) -> None:
    """The sipp call ended well (else sipp's output says why)."""
    out, err = await asyncio.wait_for(call.communicate(), timeout_s)
    assert call.returncode == 0, (
        f"sipp exit {call.returncode}:\n{out.decode()[-3000:]}{err.decode()}"
    )


async def state(acd: Acd, ext: str) -> SeatState:
    return (await acd.seat(ext)).state


async def waiting_id(redis: aioredis.Redis, prefix: str, caller: str) -> str | None:
    """The ACD id of the waiting call from ``caller``."""
    for raw in await redis.zrange(f"{prefix}waitall", 0, -1):
        entry = await redis.hgetall(f"{prefix}call:{raw.decode()}")
        if entry.get(b"caller", b"").decode() == caller:
            return str(raw.decode())
    return None


async def logout_all(acd: Acd) -> None:
    for seat in acd.seats.seats:
        if await state(acd, seat.extension) is not SeatState.LOGGED_OUT:
            await eventually(lambda e=seat.extension: _idle(acd, e), 40, f"seat {seat} idle")
            await acd.logout(seat.extension)


async def _idle(acd: Acd, ext: str) -> bool:
    return await state(acd, ext) not in {SeatState.RINGING, SeatState.ON_CALL}


# -- item 8: the hotline's own Redis ------------------------------------------------------------
@pytest.mark.slow
async def test_hotline_runs_its_own_redis(tmp_path: Path) -> None:
    """With no redis_url the engine starts its own redis-server: loopback, its own port, a
    generated password (refused without it), AOF on, a 0700 folder; stopped with the engine."""
    settings = Settings.load(environ={}).replace(
        data_dir=tmp_path / "var", recordings_dir=tmp_path / "rec", manage_asterisk=False,
        redis_port=6790 + PORT_OFFSET, web_port=9345 + PORT_OFFSET,
        agi_port=6173 + PORT_OFFSET, ami_port=6138 + PORT_OFFSET,
    )  # fmt: skip
    assert settings.redis_url == ""
    engine = Hotline(settings)
    folder = settings.data_dir / "redis"
    try:
        await engine.start()
        password = stored_secret(settings.data_dir, "redis_password")
        assert os.stat(folder).st_mode & 0o777 == 0o700
        assert os.stat(folder / "redis.conf").st_mode & 0o777 == 0o600
        client = aioredis.Redis(port=settings.redis_port, password=password)
        assert (await client.config_get("appendonly"))["appendonly"] == "yes"
        assert (await client.config_get("bind"))["bind"] == "127.0.0.1"
        await client.aclose()
        anonymous = aioredis.Redis(port=settings.redis_port)
        with pytest.raises(Exception, match="(?i)auth"):
            await anonymous.ping()
        await anonymous.aclose()
        await engine.acd.login("8001", PIN)
    finally:
        await engine.stop()
    server = RedisServer(folder, settings.redis_port, password)
    assert not server.alive()
    server.start()  # the login is in the AOF
    try:
        client = aioredis.Redis.from_url(server.url)
        state_ = await client.hget(f"{settings.acd_prefix}seat:8001", "state")
        await client.aclose()
        assert state_ == b"available"
    finally:
        server.stop()


# -- item 9: kill -9 of the engine during a conversation -----------------------------------------
@pytest.mark.fault
@pytest.mark.e2e
async def test_engine_killed_mid_conversation(pbx: Pbx, redis: aioredis.Redis) -> None:
    """kill -9 of the engine while seat 8001 talks with a caller: a new engine finds the
    seat still in the call (on_call, not freed early), frees it when the seat hangs up (no
    pause), the caller is hung up rather than queued again (seat 8005 never rings), and the
    operator can log out."""
    acd = pbx.acd(redis)
    first = EngineProcess(pbx.settings, pbx.workdir / "engine-kill-1.log")
    second = EngineProcess(pbx.settings, pbx.workdir / "engine-kill-2.log")
    talking = await seat_phone(pbx, "8001", hangup_after_ms=14_000)
    other = await seat_phone(pbx, "8005")
    caller = new_caller()
    try:
        first.start()
        await first.ready()
        await acd.login("8001", PIN)
        await asyncio.sleep(0.1)
        await acd.login("8005", PIN)
        call = await start_call(pbx, caller, 500, seat_hangs_up=True)
        await eventually(lambda: _on_call(acd, "8001"), 40, "seat 8001 on the call")
        first.kill()
        second.start()
        await second.ready()
        await asyncio.sleep(2)  # the new engine's first reconcile ran
        assert await state(acd, "8001") is SeatState.ON_CALL  # the call goes on in Asterisk
        await finished(call)  # hung up after the seat hung up, not queued
        await eventually(lambda: _free(acd, "8001"), 20, "seat 8001 released after the call")
        assert "reconcile" in second.text() or "goes on in Asterisk" in second.text()
        await acd.logout("8001")
        assert caller not in other.callers(), "the caller was queued again after the call"
        assert (await acd.seat("8005")).reason != "no-answer"
    finally:
        first.stop()
        second.stop()
        await logout_all(acd)
        await drop_phone(pbx, talking)
        await drop_phone(pbx, other)


@pytest.mark.fault
@pytest.mark.e2e
async def test_a_consultation_outlives_an_engine_restart(pbx: Pbx, redis: aioredis.Redis) -> None:
    """kill -9 of the engine while seat 8001 consults seat 8005 (the caller held apart): the
    restarted engine finds the consultation in the ACD's Redis, and the desk's "put through"
    leaves the caller talking to 8005 (Asterisk's bridges) until the caller hangs up."""
    s = pbx.settings
    acd = pbx.acd(redis)
    engine = EngineProcess(s, pbx.workdir / "engine-consult.log")
    phones = [await seat_phone(pbx, ext) for ext in ("8001", "8005")]
    events = AmiEvents()
    ami = AmiClient(s.ami_host, s.ami_port, s.ami_user, ami_secret(s))
    for name in ("BridgeEnter", "BridgeLeave"):
        ami.on(name, events.record)
    watching = asyncio.create_task(ami.run())
    db = make_engine(s.effective_database_url)
    try:
        engine.start()
        await engine.ready()
        assert await ami.wait_connected(10)
        accounts = await accounts_web(s, make_sessions(db), acd.seats)
        token = await staff_token(accounts.accounts, "fault-op-8001", AccountRole.OPERATOR,
                                  extension="8001")  # fmt: skip
        await acd.login("8001", PIN)
        call = await start_call(pbx, new_caller(), 40_000)
        await eventually(lambda: _on_call(acd, "8001"), 40, "seat 8001 on the call")
        call_id = (await acd.seat("8001")).call_id
        status, body = await _desk(s, token, "consult", "seat:8005")
        assert status == 200, body

        async def target_leg() -> str:
            return next((e.get("Uniqueid", "") for e in events.seen
                         if e.get("Channel", "").startswith("PJSIP/8005-")), "")  # fmt: skip

        leg = await eventually(target_leg, 20, "seat 8005 to answer the consultation")
        assert not talking(events, call_id, leg)  # the caller held apart
        engine.kill()
        engine.start()
        await engine.ready()
        status, body = await _desk(s, token, "consult-complete")
        assert status == 200, body  # 409 when the consultation lived in the engine's memory
        assert body["to"] == "seat:8005" and body["call_id"] == call_id

        async def put_through() -> bool:
            return talking(events, call_id, leg)

        await eventually(put_through, 15, "the caller put through to seat 8005")
        await finished(call)  # the caller talked on and hung up
    finally:
        engine.stop()
        await ami.close()
        watching.cancel()
        await db.dispose()
        await logout_all(acd)
        for phone in phones:
            await drop_phone(pbx, phone)


async def _desk(s: Settings, token: str, action: str, to: str = "") -> tuple[int, Any]:
    """The desk's ``POST /api/seats/8001/<action>``: status and answer."""
    url = f"http://{s.web_host}:{s.web_port}/api/seats/8001/{action}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url, json={"to": to} if to else {}, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        return response.status, await response.json()


async def _on_call(acd: Acd, ext: str) -> bool:
    return await state(acd, ext) is SeatState.ON_CALL


async def _free(acd: Acd, ext: str) -> bool:
    return await state(acd, ext) in {SeatState.WRAP_UP, SeatState.AVAILABLE}


# -- item 11: one missed DialEnd ---------------------------------------------------------------
@pytest.mark.fault
@pytest.mark.e2e
async def test_a_missed_dial_end_pauses_no_seat(
    pbx: Pbx, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's AMI handler never sees DialEnd while a caller talks with a seat well past
    the ring timeout: Asterisk is asked before any RONA, so no seat is paused, no other seat
    rings, and the call counts as connected (the session went on to the conversation)."""
    original = AmiClient.on

    def on(self: AmiClient, event: str, handler: EventHandler) -> None:
        if event == "DialEnd":
            handler = _dropped  # the event is lost on its way to the engine
        original(self, event, handler)

    monkeypatch.setattr(AmiClient, "on", on)
    engine = Hotline(pbx.settings)
    acd = pbx.acd(redis)
    phones = [await seat_phone(pbx, ext) for ext in ("8001", "8005", "8002")]
    caller = new_caller()
    try:
        await engine.start()
        for phone in phones:
            await acd.login(phone.ext, PIN)
            await asyncio.sleep(0.1)
        call = await start_call(pbx, caller, 16_000)  # talks ~10 s; the ring timeout is 4 s
        await finished(call)
        rung = [phone.ext for phone in phones if caller in phone.callers()]
        assert len(rung) == 1, f"the caller rang {rung}"
        for phone in phones:
            assert (await acd.seat(phone.ext)).state is not SeatState.PAUSED, phone.ext
        kinds = [e.type for e in await read_events(redis, pbx.settings.acd_prefix, count=100_000)
                 if e.seat == rung[0] and e.type in {"connect", "requeue"}]  # fmt: skip
        assert "connect" in kinds and "requeue" not in kinds, kinds
    finally:
        await logout_all(acd)
        await engine.stop()
        for phone in phones:
            await drop_phone(pbx, phone)


def _dropped(_event: Any) -> None:
    return None


# -- item 10: Redis restarts -----------------------------------------------------------------
@pytest.mark.fault
@pytest.mark.e2e
async def test_redis_restart_keeps_logins_callers_and_callbacks(
    pbx: Pbx, redis: aioredis.Redis
) -> None:
    """A real restart of the hotline's Redis (AOF) keeps a paused seat's login, a waiting
    caller and a callback. Then a Redis that lost everything: the engine holding the
    caller's session enqueues the caller again, and the seat logging in takes the call."""
    engine = Hotline(pbx.settings)
    acd = pbx.acd(redis)
    prefix = pbx.settings.acd_prefix
    phone = await seat_phone(pbx, "8001")
    caller = new_caller()
    try:
        await engine.start()
        await acd.login("8001", PIN)
        await acd.pause("8001", "break")
        call = await start_call(pbx, caller, 45_000)
        call_id = await eventually(lambda: waiting_id(redis, prefix, caller), 40, "the caller")
        await acd.enqueue("cb-fault", "report", caller="13912345678")
        await acd.to_callback("cb-fault", "13912345678")

        await asyncio.to_thread(pbx.redis.stop)
        await asyncio.sleep(2)
        await asyncio.to_thread(pbx.redis.start)
        await redis.connection_pool.disconnect()  # this test's own connections died with it
        seat = await acd.seat("8001")
        assert (seat.state, seat.reason) == (SeatState.PAUSED, "break")
        assert await acd.position(call_id) is not None
        kept = await acd.waiting_call("cb-fault")
        assert kept is not None and kept.kind is CallKind.CALLBACK
        await acd.cancel("cb-fault")

        await asyncio.to_thread(pbx.redis.stop)
        for file in (pbx.redis.folder / "appendonlydir").iterdir():
            file.unlink()  # Redis comes back empty
        await asyncio.to_thread(pbx.redis.start)
        await redis.connection_pool.disconnect()
        assert await redis.exists(f"{prefix}call:{call_id}") == 0
        await eventually(lambda: acd.position(call_id), 20, "the caller enqueued again")
        await acd.login("8001", PIN)
        engine.dispatcher.kick()
        await finished(call)
        assert caller in phone.callers()
    finally:
        await logout_all(acd)
        await engine.stop()
        await drop_phone(pbx, phone)


# -- item 16: several engines on one Redis ---------------------------------------------------
@pytest.mark.fault
@pytest.mark.e2e
async def test_two_engines_share_the_acd(
    pbx: Pbx, redis: aioredis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Engine A holds the callers (Asterisk's FastAGI goes to it); engine B shares its
    Redis. B's routing step picks A's caller: the decision is forwarded to A, the caller
    reaches the seat (B never cancels it). Then A is killed with a caller waiting: the
    caller goes to the native queue and reaches the seat there, and B removes A's entry
    once A's lease has expired."""
    caplog.set_level(logging.INFO, logger="queueing")
    s = pbx.settings
    shutil.copytree(s.prompts_dir, tmp_path / "b" / "prompts")  # no second synthesis
    b_settings = s.replace(
        data_dir=tmp_path / "b", agi_port=6273 + PORT_OFFSET, web_port=9445 + PORT_OFFSET,
        ami_secret=stored_secret(s.data_dir, "ami_secret"),
    )  # fmt: skip
    a = EngineProcess(s, pbx.workdir / "engine-a.log")
    b = Hotline(b_settings)
    acd = pbx.acd(redis)
    phone = await seat_phone(pbx, "8001", hangup_after_ms=3000)
    first, second = new_caller(), new_caller()
    try:
        a.start()
        await a.ready()
        await b.start()
        call = await start_call(pbx, first, 500, seat_hangs_up=True)
        await eventually(lambda: waiting_id(redis, s.acd_prefix, first), 40, "caller 1 waits")
        assert a.process is not None
        a.process.send_signal(signal.SIGSTOP)  # A's routing step cannot run first
        try:
            await b.acd.login("8001", PIN)
            assert await b.dispatcher.step() == 1
            await asyncio.sleep(0.3)
        finally:
            a.process.send_signal(signal.SIGCONT)
        await finished(call)
        assert first in phone.callers()
        assert "forwarded to engine" in caplog.text
        assert "no session holds it" not in caplog.text

        await eventually(lambda: _free(acd, "8001"), 20, "seat 8001 after caller 1")
        await acd.pause("8001", "break")  # caller 2 waits in A's queue
        call = await start_call(pbx, second, 500, seat_hangs_up=True)
        call_id = await eventually(lambda: waiting_id(redis, s.acd_prefix, second), 40, "caller 2")
        a.kill()
        await finished(call)  # through the native queue
        assert second in phone.callers()
        await eventually(
            lambda: _gone(redis, f"{s.acd_prefix}call:{call_id}"), 30, "A's entry removed by B"
        )
        assert "its engine is gone" in caplog.text
    finally:
        a.stop()
        await b.stop()
        await logout_all(acd)
        await drop_phone(pbx, phone)


async def _gone(redis: aioredis.Redis, key: str) -> bool:
    return not await redis.exists(key)


# -- item 10: the engine's queue has a longest wait -------------------------------------------
@pytest.mark.fault
@pytest.mark.e2e
async def test_longest_wait_overflows_to_the_native_queue(
    pbx: Pbx, redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Nobody is logged in to the ACD: after acd_max_wait_s the caller leaves the engine's
    queue (its entry goes) for the dialplan's native Queue(), whose static member answers."""
    caplog.set_level(logging.INFO, logger="queueing")
    engine = Hotline(pbx.settings.replace(acd_max_wait_s=6.0))
    phone = await seat_phone(pbx, "8001", hangup_after_ms=2000)
    caller = new_caller()
    try:
        await engine.start()
        call = await start_call(pbx, caller, 500, seat_hangs_up=True)
        call_id = await eventually(
            lambda: waiting_id(redis, pbx.settings.acd_prefix, caller), 40, "the caller waits"
        )
        await finished(call)
        assert caller in phone.callers()
        assert "overflow to the native queue" in caplog.text
        assert not await redis.exists(f"{pbx.settings.acd_prefix}call:{call_id}")
    finally:
        await engine.stop()
        await drop_phone(pbx, phone)


@pytest.mark.fault
@pytest.mark.e2e
async def test_engine_killed_while_a_seat_rings(pbx: Pbx, redis: aioredis.Redis) -> None:
    """kill -9 while seat 8005 rings (it never answers): the new engine does not pause it
    for no answer (nobody watched that ring); it is available again once the ring ended."""
    acd = pbx.acd(redis)
    first = EngineProcess(pbx.settings, pbx.workdir / "engine-ring-1.log")
    second = EngineProcess(pbx.settings, pbx.workdir / "engine-ring-2.log")
    silent = await seat_phone(pbx, "8005", answer=False)
    caller = new_caller()
    try:
        first.start()
        await first.ready()
        await acd.login("8005", PIN)
        call = await start_call(pbx, caller, 15_000)
        await eventually(lambda: _ringing(acd, "8005"), 40, "seat 8005 ringing")
        first.kill()
        await asyncio.sleep(6)  # down past the ring deadline (4 s)
        second.start()
        await second.ready()
        await eventually(lambda: _available(acd, "8005"), 30, "seat 8005 available")
        assert (await acd.seat("8005")).reason != "no-answer"
        await finished(call)
    finally:
        first.stop()
        second.stop()
        await logout_all(acd)
        await drop_phone(pbx, silent)


async def _ringing(acd: Acd, ext: str) -> bool:
    return await state(acd, ext) is SeatState.RINGING


async def _available(acd: Acd, ext: str) -> bool:
    return await state(acd, ext) is SeatState.AVAILABLE


# -- item 12: calls Asterisk's own Queue() takes -----------------------------------------------
@pytest.mark.fault
@pytest.mark.e2e
async def test_native_queue_call_is_counted_and_keeps_the_seat_busy(
    pbx: Pbx, redis: aioredis.Redis
) -> None:
    """The engine's FastAGI is gone (dropped as in a crash) while its AMI and Redis stay: a
    caller goes through the dialplan's fallback into Queue(hotline-operator), where seat 8005,
    logged in and available in the ACD, answers. From AMI alone the engine keeps the call
    record (opened there: the IVR never ran) with the native queue's steps and the hangup,
    counts the call offered and answered with its talk time, keeps the seat on_call in the
    ACD while it talks (a caller waiting in the ACD is not offered to it), then in its
    wrap-up, and drafts the call's work order with the seat that answered."""
    since = time.time()
    engine = Hotline(pbx.settings)
    acd = pbx.acd(redis)
    phone = await seat_phone(pbx, "8005", hangup_after_ms=8000)
    caller = new_caller()
    try:
        await engine.start()
        await acd.login("8005", PIN)
        await engine.agi.abort()
        call = await start_call(pbx, caller, 500, seat_hangs_up=True)
        await eventually(lambda: _on_call(acd, "8005"), 40, "seat 8005 on the native call")
        await acd.enqueue("native-probe", "operator", caller="13900000000")
        engine.dispatcher.kick()
        await asyncio.sleep(1.5)
        assert await acd.position("native-probe") == 1, "the ACD offered the busy seat"
        assert await state(acd, "8005") is SeatState.ON_CALL
        await acd.cancel("native-probe")
        await finished(call)
        assert phone.callers() == [caller]

        record = await call_record(engine, caller)
        assert record["caller_number"] == caller
        steps = [(step["kind"], step["node"]) for step in record["journey"]]
        native = [(kind, node) for kind, node in steps if kind != "hangup"]
        assert native == [("join", "hotline-operator"), ("connect", "hotline-operator"),
                          ("complete", "hotline-operator")], steps  # fmt: skip
        assert ("hangup", None) in steps
        assert "seat 8005" in record["journey"][1]["detail"]
        uniqueid = record["uniqueid"]

        async def seat_states() -> list[str]:
            events = await read_events(redis, pbx.settings.acd_prefix, count=100_000)
            return [e.data.split()[0] for e in events
                    if e.type == "seat" and e.seat == "8005" and e.at >= since]  # fmt: skip

        states = await eventually(
            lambda: _after(seat_states(), ["on_call", "wrap_up", "available"]), 20, "wrap-up"
        )
        assert states[states.index("on_call") + 1] == "wrap_up", states

        async def counted() -> dict[str, Any] | None:
            figures = await engine.stats(since=since)
            queue = next((q for q in figures["queues"] if q["queue"] == "operator"), None)
            return queue if queue and queue["answered"] == 1 else None

        operator = await eventually(counted, 20, "the native call in the statistics")
        assert (operator["offered"], operator["abandoned"]) == (2, 1)  # the probe abandoned
        assert operator["aht_s"] is not None and operator["aht_s"] >= 5
        kinds = [e.type for e in await read_events(redis, pbx.settings.acd_prefix, count=100_000)
                 if e.call_id == uniqueid and e.type != "seat"]  # fmt: skip
        assert kinds == ["enter", "connect", "complete"], kinds

        async def drafted() -> Any:  # announced to intake like the ACD's own calls
            return await engine.work_orders.by_call(uniqueid)

        await eventually(drafted, 30, "the native call's work order")
        stored = await engine.intake.recordings.store.get(uniqueid)
        assert stored is not None and (stored.seat, stored.skill) == ("8005", "operator")
    finally:
        await logout_all(acd)
        await engine.stop()
        await drop_phone(pbx, phone)


async def _after(states: Any, expected: list[str]) -> list[str] | None:
    """The seat's states once ``expected`` appeared in that order."""
    seen: list[str] = await states
    it = iter(seen)
    return seen if all(state_ in it for state_ in expected) else None


# -- item 17: a call that ends while no engine listens ----------------------------------------
async def call_then_kill(
    pbx: Pbx,
    acd: Acd,
    engine: EngineProcess,
    caller: str,
    busy: Callable[[Acd, str], Awaitable[bool]],
    what: str,
) -> asyncio.subprocess.Process:
    """The engine up, seat 8001 logged in, a call from ``caller`` until ``busy(acd, "8001")``,
    then kill -9 of the engine; returns the running call."""
    engine.start()
    await engine.ready()
    await acd.login("8001", PIN)
    call = await start_call(pbx, caller, 500, seat_hangs_up=True)
    await eventually(lambda: busy(acd, "8001"), 40, what)
    engine.kill()
    return call


@pytest.mark.fault
@pytest.mark.e2e
async def test_a_call_ending_while_the_engine_is_down_has_its_record_closed(
    pbx: Pbx, redis: aioredis.Redis
) -> None:
    """kill -9 of the engine while seat 8001 talks; the seat hangs up before another engine
    runs, so no engine hears the Hangup: the next engine closes the call's record (Asterisk
    no longer has the call) instead of leaving it open."""
    acd = pbx.acd(redis)
    first = EngineProcess(pbx.settings, pbx.workdir / "engine-records-1.log")
    second = EngineProcess(pbx.settings, pbx.workdir / "engine-records-2.log")
    talking = await seat_phone(pbx, "8001", hangup_after_ms=4000)
    caller = new_caller()
    db = make_engine(pbx.settings.effective_database_url)
    calls = CallStore(make_sessions(db))

    async def record(closed: bool) -> dict[str, Any] | None:
        for call in await calls.recent(200):
            if call["caller_raw"] == caller and bool(call["ended_at"]) is closed:
                return call
        return None

    try:
        call = await call_then_kill(pbx, acd, first, caller, _on_call, "seat 8001 on the call")
        await finished(call)  # the seat hung up while no engine ran
        assert await record(closed=False), "the record should still be open"
        second.start()
        await second.ready()
        closed = await eventually(lambda: record(closed=True), 60, "the record closed")
        assert closed["hangup_cause_text"] == UNHEARD
    finally:
        first.stop()
        second.stop()
        await logout_all(acd)
        await drop_phone(pbx, talking)
        await db.dispose()


@pytest.mark.fault
@pytest.mark.e2e
async def test_a_ring_answered_while_the_engine_is_down_is_drafted_with_its_seat(
    pbx: Pbx, redis: aioredis.Redis
) -> None:
    """kill -9 while seat 8001 rings; it answers while no engine runs. The next engine finds
    the call answered (ACD: connected), tells intake (the recording's row names seat 8001) and,
    at the seat's hangup, drafts its work order."""
    acd = pbx.acd(redis)
    first = EngineProcess(pbx.settings, pbx.workdir / "engine-answer-1.log")
    second = EngineProcess(pbx.settings, pbx.workdir / "engine-answer-2.log")
    late = await seat_phone(pbx, "8001", answer_after_ms=2500, hangup_after_ms=9000)
    caller = new_caller()
    db = make_engine(pbx.settings.effective_database_url)
    sessions = make_sessions(db)
    calls, orders, recordings = CallStore(sessions), work_orders(sessions), RecordingStore(sessions)
    try:
        call = await call_then_kill(pbx, acd, first, caller, _ringing, "seat 8001 ringing")
        second.start()
        await second.ready()
        await finished(call)
        uniqueid = next(c["uniqueid"] for c in await calls.recent(200)
                        if c["caller_raw"] == caller)  # fmt: skip
        await eventually(lambda: orders.by_call(uniqueid), 40, "the call's work order")
        row = await recordings.get(uniqueid)
        assert row is not None and (row.seat, row.skill) == ("8001", "report")
        assert "answered call" in second.text()
    finally:
        first.stop()
        second.stop()
        await logout_all(acd)
        await drop_phone(pbx, late)
        await db.dispose()


@pytest.mark.fault
@pytest.mark.e2e
async def test_a_native_queue_call_while_no_engine_runs_is_caught_up(
    pbx: Pbx, redis: aioredis.Redis
) -> None:
    """No engine runs at all: a caller goes through the dialplan's fallback (FastAGI refused)
    into Queue(hotline-operator), where seat 8005 answers and later hangs up. The next engine
    replays what Asterisk's queue_log says happened since the last native event an engine
    applied: the call record with the queue's steps, the call counted as answered, and its
    work order drafted with seat 8005."""
    s = pbx.settings
    earlier = Hotline(s)  # an engine followed these queues before (it leaves the marker)
    await earlier.start()
    await eventually(lambda: redis.exists(f"{s.acd_prefix}native:last"), 20, "the marker")
    await earlier.stop()
    since = time.time()
    # no IVR without the engine: the seat answers at once, so it talks past the caller's keys
    phone = await seat_phone(pbx, "8005", hangup_after_ms=9000)
    caller = new_caller()
    engine = Hotline(s)
    try:
        call = await start_call(pbx, caller, 500, seat_hangs_up=True)
        await finished(call)
        assert phone.callers() == [caller]
        await engine.start()
        uniqueid = (await call_record(engine, caller, closed=False))["uniqueid"]
        await eventually(lambda: engine.work_orders.by_call(uniqueid), 30, "its work order")
        record = await call_record(engine, caller, closed=False)
        steps = [(step["kind"], step["node"]) for step in record["journey"]]
        assert steps == [("join", "hotline-operator"), ("connect", "hotline-operator"),
                         ("complete", "hotline-operator")], steps  # fmt: skip
        assert "seat 8005" in record["journey"][1]["detail"]
        stored = await engine.intake.recordings.store.get(uniqueid)
        assert stored is not None and (stored.seat, stored.skill) == ("8005", "operator")

        async def counted() -> bool:
            figures = await engine.stats(since=since)
            queue = next((q for q in figures["queues"] if q["queue"] == "operator"), None)
            return bool(queue and queue["answered"] == 1)

        await eventually(counted, 20, "the call counted as answered")
    finally:
        await engine.stop()
        await logout_all(pbx.acd(redis))
        await drop_phone(pbx, phone)
