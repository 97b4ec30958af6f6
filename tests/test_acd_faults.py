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
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from conftest import PORT_OFFSET, eventually, fast_menu, fast_seats, new_caller
from seat_sipp import Seat, start_seat, unregister
from sipp import Press, citizen_scenario, free_udp_port

from agents.seats import load_seats
from agents.states import SeatState
from hotline.engine import Hotline
from hotline.secrets import stored_secret
from hotline.settings import PROJECT_DIR, Settings
from hotline.wiring import provision_asterisk
from ivr.menu import load_menu
from pbx.ami import AmiClient, EventHandler
from pbx.instance import AsteriskInstance
from queueing.acd import Acd
from queueing.events import read_events
from queueing.models import CallKind
from queueing.redis_server import RedisServer

PIN = "2468"
REPORT = [Press("1", 2500), Press("1", 1500)]  # Mandarin, then 1: report or complain


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
    settings = Settings.load(environ={"HOTLINE_REDIS_URL": server.url}).replace(
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


class EngineProcess:
    """``hotline up`` in a child process on the module's Asterisk and Redis."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings, self.log = settings, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env.update({f"HOTLINE_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in self.settings.to_dict().items()})  # fmt: skip
        env["PYTHONPATH"] = str(PROJECT_DIR)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hotline.cli", "up"], env=env, stdout=out,
                stderr=subprocess.STDOUT, cwd=PROJECT_DIR,
            )  # fmt: skip

    async def ready(self) -> None:
        async def up() -> bool:
            assert self.process is not None and self.process.poll() is None, self.text()[-3000:]
            return "hotline ready" in self.text()

        await eventually(up, 60, "the engine to start")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


async def seat_phone(pbx: Pbx, ext: str, **options: Any) -> Seat:
    s = pbx.settings
    return await start_seat(
        pbx.workdir, ext, stored_secret(s.data_dir, f"seat-{ext}"), sip_port=s.sip_port, **options
    )


async def drop_phone(pbx: Pbx, seat: Seat) -> None:
    s = pbx.settings
    await unregister(seat, stored_secret(s.data_dir, f"seat-{seat.ext}"), sip_port=s.sip_port)
    await seat.stop()


def hung_up_by_hotline(xml: str) -> str:
    """The citizen scenario, but the other side (the seat, through Asterisk) hangs up."""
    head, _, _ = xml.rpartition('<send retrans="500">')
    bye_ok = """<recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
</scenario>
"""
    return head + bye_ok


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
        "-mi", "127.0.0.1", "-mp", str(free_udp_port() & ~1), "-timeout", "80s", "-nostdin",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def finished(call: asyncio.subprocess.Process, timeout_s: float = 90) -> int:
    await asyncio.wait_for(call.communicate(), timeout_s)
    assert call.returncode is not None
    return call.returncode


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
