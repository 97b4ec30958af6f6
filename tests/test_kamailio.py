"""Several Asterisk boxes behind one Kamailio, on one machine.

Two boxes, each a ``hotline up`` engine process with its own Asterisk (manage_asterisk),
bound to 127.0.0.2 and 127.0.0.3, share the test Redis (one ACD prefix) and one database
(a shared SQLite file). Kamailio on 127.0.0.1, provisioned and started by box a's engine
(manage_kamailio), is the seats' registrar and the citizens' address. Seats register and
log in (``*21``) through Kamailio; citizens call 12345 through it; every call reaches a seat
whichever box took it, and both boxes take calls. Then box b dies (kill -9 of its engine and
its Asterisk) while a seat talks to one of its callers: box a's engine frees that seat, and
new calls go to box a, still to seats.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from conftest import (
    PORT_OFFSET,
    TEST_ENVIRON,
    eventually,
    fast_menu,
    fast_seats,
    new_caller,
)
from seat_calls import REPORT

from agents.seats import load_seats
from agents.states import SeatState
from calls.store import CallStore
from hotline.child import READY_LINE, EngineProcess
from hotline.database import make_engine, make_sessions
from hotline.secrets import stored_secret
from hotline.settings import Settings
from hotline.wiring import asterisk_instance, kamailio_proxy
from pbx.kamailio import KamailioProxy
from queueing.acd import Acd
from sipsim.citizen import free_media_port, free_udp_port, start_call, write_scenario
from sipsim.seat import Seat, dial_feature_code, start_seat, unregister

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PIN = "2468"
SEATS = ("8001", "8002")  # both hold the skill "report"
BOXES = {"a": "127.0.0.2", "b": "127.0.0.3"}
KAMAILIO_PORT = 7160 + PORT_OFFSET
BOX_SIP_PORT = 7060 + PORT_OFFSET  # the same port on both boxes: each binds its own address


@dataclass
class Site:
    boxes: dict[str, Settings]
    engines: dict[str, EngineProcess]
    kamailio: KamailioProxy
    workdir: Path
    citizens: list[asyncio.subprocess.Process] = field(default_factory=list)  # left running


def box_settings(base: Path, name: str, index: int) -> Settings:
    host = BOXES[name]
    return Settings.load(environ=TEST_ENVIRON).replace(
        data_dir=base / name / "var", recordings_dir=base / name / "recordings",
        menu_file=fast_menu(base / "menu.toml"), seats_file=fast_seats(base / "seats.toml"),
        database_url=f"sqlite+aiosqlite:///{base / 'shared.db'}",
        acd_prefix=f"hotline-kamailio-{os.getpid()}:acd:",
        asterisk_name=f"hotline12345-{name}",
        sip_host=host, sip_port=BOX_SIP_PORT, ami_host=host, ami_port=7038 + PORT_OFFSET,
        agi_port=7073 + PORT_OFFSET + index, web_port=9645 + PORT_OFFSET + index,
        audiosocket_port=7090 + PORT_OFFSET + index,
        rtp_port_start=17000 + 2 * PORT_OFFSET + 500 * index,
        rtp_port_end=17499 + 2 * PORT_OFFSET + 500 * index,
        kamailio_host="127.0.0.1", kamailio_port=KAMAILIO_PORT,
        kamailio_boxes=",".join(f"{ip}:{BOX_SIP_PORT}" for ip in BOXES.values()),
        kamailio_probe_s=1, queue_announce_interval_s=60.0, callback_offer_after_s=0.0,
        revisit_calls=False, seat_qualify_s=0, seat_rewrite_contact=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if os.geteuid() != 0:
        pytest.skip("the boxes run Asterisk in a chroot: they need root")
    if shutil.which("kamailio") is None:
        pytest.fail("kamailio is not installed: run scripts/setup.sh")
    base = tmp_path_factory.mktemp("kamailio")
    boxes = {name: box_settings(base, name, i) for i, name in enumerate(BOXES)}
    boxes["a"] = boxes["a"].replace(manage_kamailio=True)
    proxy = kamailio_proxy(boxes["a"])
    engines = {name: EngineProcess(s, base / f"engine-{name}.log") for name, s in boxes.items()}
    try:
        engines["a"].start()  # with Kamailio (manage_kamailio); generates the seats' passwords
        started(engines["a"])
        # Every box shares the secrets (seats' passwords, AMI, AGI) and the prompts.
        b = boxes["b"].data_dir
        b.mkdir(parents=True)
        shutil.copy2(boxes["a"].data_dir / "secrets.toml", b / "secrets.toml")
        shutil.copytree(boxes["a"].prompts_dir, boxes["b"].prompts_dir)
        engines["b"].start()
        started(engines["b"])
        yield Site(boxes, engines, proxy, base / "work")
    finally:
        for engine in engines.values():
            engine.stop()
        for settings in boxes.values():  # a box killed by the test left its Asterisk mounted
            asterisk_instance(settings).stop()
        proxy.stop()
        client = redis.Redis.from_url(boxes["a"].redis_url)
        keys = list(client.scan_iter(f"{boxes['a'].acd_prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def started(engine: EngineProcess, timeout_s: float = 90) -> None:
    """Wait (in the module fixture, outside the event loop) until ``engine`` is ready."""
    deadline = time.monotonic() + timeout_s
    while READY_LINE not in engine.text():
        assert engine.process is not None and engine.process.poll() is None, engine.text()[-3000:]
        assert time.monotonic() < deadline, f"engine not ready: {engine.text()[-3000:]}"
        time.sleep(0.3)


def password(site: Site, ext: str) -> str:
    return stored_secret(site.boxes["a"].data_dir, f"seat-{ext}")


async def box_of(site: Site, caller: str) -> str:
    """Which box took the call from ``caller``: its call id starts with the box's name."""
    db = make_engine(site.boxes["a"].effective_database_url)
    calls = CallStore(make_sessions(db))

    async def probe() -> str | None:
        for call in await calls.recent(100):
            if call["caller_raw"] == caller:
                return str(call["uniqueid"]).split("-")[1]
        return None

    try:
        return str(await eventually(probe, 30, f"the call record of {caller}"))
    finally:
        await db.dispose()


async def call_reaches_a_seat(site: Site, phones: list[Seat]) -> str:
    """One citizen call through Kamailio into the report queue, which hangs up once a seat
    has answered it; returns the box it took."""
    caller = new_caller()
    call = await start_call(
        site.workdir, sip_host="127.0.0.1", sip_port=KAMAILIO_PORT, service="12345",
        caller=caller, presses=REPORT, hold_ms=30_000, timeout_s=60,
    )  # fmt: skip

    async def answered() -> bool:
        phone = next((phone for phone in phones if caller in phone.callers()), None)
        return phone is not None and await seat_state(site, phone.ext, SeatState.ON_CALL)

    try:
        await eventually(answered, 40, f"a seat to answer {caller}")
    finally:
        result = await call.hang_up()
    assert result.returncode == 0, result.stdout[-2000:] + result.errors
    return await box_of(site, caller)


async def calls_reach_seats(site: Site, phones: list[Seat], count: int) -> list[str]:
    """``count`` calls of :func:`call_reaches_a_seat`, one per seat at a time; the boxes
    that took them, in the order they were placed."""
    taken: list[str] = []
    while len(taken) < count:
        at_once = min(len(phones), count - len(taken))
        taken += await asyncio.gather(*(call_reaches_a_seat(site, phones) for _ in range(at_once)))
    return taken


async def seat_state(site: Site, ext: str, state: SeatState, *, negate: bool = False) -> bool:
    client = aioredis.Redis.from_url(site.boxes["a"].redis_url)
    try:
        acd = Acd(client, load_seats(site.boxes["a"].seats_file), prefix=site.boxes["a"].acd_prefix)
        return ((await acd.seat(ext)).state is state) != negate
    finally:
        await client.aclose()


async def seat_on_a_call_of_box_b(site: Site) -> str:
    """A citizen calls box b's own address into the report queue and stays on the line;
    returns the seat that answered (the call lasts until the test ends)."""
    caller = new_caller()
    scenario = write_scenario(site.workdir, caller, REPORT, hold_ms=120_000)
    b = site.boxes["b"]
    citizen = await asyncio.create_subprocess_exec(
        "sipp", f"{b.sip_host}:{b.sip_port}", "-sf", str(scenario), "-s", "12345",
        "-m", "1", "-l", "1", "-i", "127.0.0.1", "-p", str(free_udp_port()),
        "-mi", "127.0.0.1", "-mp", str(free_media_port()), "-timeout", "150s", "-nostdin",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    site.citizens.append(citizen)

    async def talking() -> str | None:
        for ext in SEATS:
            if await seat_state(site, ext, SeatState.ON_CALL):
                return ext
        return None

    ext = str(await eventually(talking, 40, "a seat on box b's call"))
    assert await box_of(site, caller) == "b"
    return ext


@pytest.mark.timeout(600)
async def test_calls_through_kamailio_reach_seats_on_any_box(site: Site) -> None:
    phones = [await start_seat(site.workdir, ext, password(site, ext), sip_port=KAMAILIO_PORT)
              for ext in SEATS]  # fmt: skip
    try:
        for ext in SEATS:  # the seat's own call: through Kamailio to a box, challenged there
            await dial_feature_code(site.workdir, ext, password(site, ext), "*21",
                                    sip_port=KAMAILIO_PORT, keys=f"{PIN}#")  # fmt: skip
        taken = await calls_reach_seats(site, phones, 4)
        print(f"boxes that took the calls: {taken}")
        assert set(taken) == {"a", "b"}, taken

        # A seat talks to a caller of box b (called there directly) when box b dies: its
        # engine and its Asterisk killed. Box a's engine frees the seat once b's lease is gone.
        ext = await seat_on_a_call_of_box_b(site)
        site.engines["b"].kill()
        b_pid = asterisk_instance(site.boxes["b"]).pid()
        assert b_pid is not None
        os.kill(b_pid, signal.SIGKILL)
        await eventually(lambda: seat_state(site, ext, SeatState.ON_CALL, negate=True), 60,
                         f"seat {ext} freed after box b died")  # fmt: skip
        assert await seat_state(site, ext, SeatState.PAUSED, negate=True)

        after = await calls_reach_seats(site, phones, 3)
        print(f"after box b died: {after}\n{site.kamailio.boxes()}")
        assert after == ["a"] * 3, after
    finally:
        for phone in phones:
            await unregister(phone, password(site, phone.ext), sip_port=KAMAILIO_PORT)
            await phone.stop()
        for citizen in site.citizens:
            if citizen.returncode is None:
                citizen.kill()
                await citizen.wait()
