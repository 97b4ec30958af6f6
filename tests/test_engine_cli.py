"""The `hotline` command and the engine's behaviour when parts are broken or missing.

These run their own instances on their own ports (not the session's engine), through the
real command line where a user would.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path

import aiohttp
import pytest
from conftest import TEST_ENVIRON, TEST_REDIS_URL, drop_acd_keys, engine_settings, eventually

from hotline.engine import Hotline
from hotline.settings import PROJECT_DIR, Settings

HOTLINE = [sys.executable, "-m", "hotline.cli"]
OFFSET = int(os.environ.get("HOTLINE_TEST_PORT_OFFSET", "0"))
PORTS = {
    "HOTLINE_SIP_PORT": str(5260 + OFFSET),
    "HOTLINE_AMI_PORT": str(5238 + OFFSET),
    "HOTLINE_AGI_PORT": str(4773 + OFFSET),
    "HOTLINE_WEB_PORT": str(8545 + OFFSET),
    "HOTLINE_RTP_PORT_START": str(13000 + 2 * OFFSET),
    "HOTLINE_RTP_PORT_END": str(13999 + 2 * OFFSET),
}


def hotline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(PORTS)
    env.update(
        HOTLINE_DATA_DIR=str(tmp_path / "var"),
        HOTLINE_RECORDINGS_DIR=str(tmp_path / "recordings"),
        PYTHONPATH=str(PROJECT_DIR),
    )
    env.update(extra)
    return env


def run(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        HOTLINE + args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


BROKEN_MENU = """
[menu]
start = "main"
main = "main"

[voices]
zh = "cmn"
en = "en"

[nodes.main]
zh = "请选择"
en = "Please choose"

[[nodes.main.options]]
key = "1"
route = "queue:report"

[[nodes.main.options]]
key = "1"
goto = "nowhere"
"""


def test_broken_menu_is_refused_with_line_and_reason(tmp_path: Path) -> None:
    menu = tmp_path / "menu.toml"
    menu.write_text(BROKEN_MENU, encoding="utf-8")
    env = hotline_env(tmp_path, HOTLINE_MENU_FILE=str(menu))
    for args in (["menu", "--check-only"], ["up"]):
        result = run(args, env, timeout=60)
        assert result.returncode == 2, result.stderr
        assert f"{menu}:19: nodes.main: duplicate key '1'" in result.stderr
    # refused before anything started: no Asterisk instance was created
    assert not (tmp_path / "var" / "asterisk" / "root" / "etc").exists()


def test_unknown_setting_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "hotline.toml"
    config.write_text("sip_prot = 5070\n", encoding="utf-8")
    result = run(["calls"], hotline_env(tmp_path, HOTLINE_CONFIG=str(config)))
    assert result.returncode == 2
    assert "unknown setting(s): sip_prot" in result.stderr


@pytest.mark.e2e
def test_the_asterisk_root_resolves_this_machine_from_its_hosts_file() -> None:
    """Asterisk looks its host's name up for every new call: the root's /etc/hosts always
    names it and localhost, so no call waits on DNS, whatever the host's own file holds."""
    from pbx.instance import root_hosts

    made = root_hosts("", "box7")
    assert "127.0.1.1\tbox7" in made and "127.0.0.1\tlocalhost" in made
    kept = "127.0.0.1 localhost\n10.0.0.5 box7 # the host's own line\n"
    assert root_hosts(kept, "box7") == kept
    assert root_hosts("127.0.0.1 localhost\n", "box7").endswith("127.0.1.1\tbox7\n")


def test_asterisk_commands_and_reload_without_restart(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: chroot and mounts")
    env = hotline_env(tmp_path)
    try:
        started = run(["asterisk", "start"], env)
        assert started.returncode == 0, started.stderr
        status = run(["asterisk", "status"], env)
        assert status.returncode == 0 and "uptime" in status.stdout.lower()
        root = tmp_path / "var" / "asterisk" / "root"
        dialplan = ["chroot", str(root), "asterisk", "-rx", "dialplan show hotline"]
        before = subprocess.run(dialplan, capture_output=True, text=True, check=True).stdout
        assert "'12345'" in before
        hosts = ["chroot", str(root), "getent", "hosts", socket.gethostname()]
        assert subprocess.run(hosts, capture_output=True, check=False).returncode == 0
        pid = (root / "run/asterisk/asterisk.pid").read_text().strip()

        reloaded = run(["asterisk", "reload"], {**env, "HOTLINE_HOTLINE_NUMBER": "12399"})
        assert reloaded.returncode == 0, reloaded.stderr
        assert "extensions.conf" in reloaded.stdout
        after = subprocess.run(dialplan, capture_output=True, text=True, check=True).stdout
        assert "'12399'" in after and "'12345'" not in after
        assert (root / "run/asterisk/asterisk.pid").read_text().strip() == pid  # no restart
    finally:
        stopped = run(["asterisk", "stop"], env)
    assert stopped.returncode == 0, stopped.stderr
    assert run(["asterisk", "status"], env).returncode == 3
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(tmp_path) not in mounts, "hotline asterisk stop left mounts behind"


@pytest.mark.e2e
async def test_engine_waits_for_ami_and_reports_it(tmp_path: Path) -> None:
    """AMI unreachable at start: the engine still serves, and /healthz names what is down."""
    settings = engine_settings(
        Settings.load(environ=TEST_ENVIRON),
        101,  # nothing listens on its AMI port
        data_dir=tmp_path / "var",
        recordings_dir=tmp_path / "recordings",
        manage_asterisk=False,  # a remote PBX that is down
    )
    engine = Hotline(settings)
    try:
        await engine.start()
        assert engine.agi.serving
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{settings.web_port}/healthz") as response:
                body = await response.json()
        assert response.status == 503
        assert set(body["down"]) == {"ami", "asterisk"}
        assert body["parts"]["redis"]["up"] and body["parts"]["database"]["up"]
        assert "AMI not connected" in body["parts"]["ami"]["detail"]
    finally:
        await engine.stop()


async def test_calls_command_lists_records_as_json(tmp_path: Path) -> None:
    from calls.callerid import parse_caller_id
    from calls.store import CallStore
    from hotline.database import create_schema, make_engine, make_sessions

    env = hotline_env(tmp_path)
    settings = Settings.load(environ={}).replace(data_dir=tmp_path / "var")
    settings.data_dir.mkdir(parents=True)
    engine = make_engine(settings.effective_database_url)
    try:
        await create_schema(engine)
        store = CallStore(make_sessions(engine))
        call_id = await store.open("test-1.1", "PJSIP/citizens-1", parse_caller_id("13912345678"))
        await store.finish_ivr(
            call_id, route="queue:report", reason="selected", language="zh", entered=None
        )
        await store.close("test-1.1", cause=16, cause_text="Normal Clearing")
    finally:
        await engine.dispose()
    result = await asyncio.to_thread(run, ["calls", "--json"], env)
    assert result.returncode == 0, result.stderr
    [call] = json.loads(result.stdout)
    assert call["caller_number"] == "13912345678"
    assert call["route"] == "queue:report"
    assert call["hangup_cause"] == 16


def instance_settings(tmp_path: Path, **changes: object) -> Settings:
    """Settings of an engine of its own in ``tmp_path``, on this test file's ports."""
    return Settings.load(environ=TEST_ENVIRON).replace(
        data_dir=tmp_path / "var",
        recordings_dir=tmp_path / "recordings",
        acd_prefix=f"hotline-test-{os.getpid()}-{tmp_path.name}:acd:",
        **{name.removeprefix("HOTLINE_").lower(): int(port) for name, port in PORTS.items()},
        **changes,
    )


def _port_is_free(port: int) -> bool:
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        return False
    finally:
        probe.close()
    return True


@pytest.mark.e2e
async def test_failed_start_takes_down_what_it_started(tmp_path: Path) -> None:
    """The web port is taken: start fails after Asterisk, AMI, FastAGI and the loops came up,
    and every one of them goes down again: Asterisk stopped and unmounted, ports free."""
    if os.geteuid() != 0:
        pytest.skip("needs root: chroot and mounts")
    settings = instance_settings(tmp_path)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", settings.web_port))
    blocker.listen()
    engine = Hotline(settings)
    try:
        with pytest.raises(OSError):
            await engine.start()
        assert engine.asterisk is not None, "start failed before it reached Asterisk"
        assert not await asyncio.to_thread(engine.asterisk.is_running)
        mounts = await asyncio.to_thread(Path("/proc/self/mountinfo").read_text)
        assert str(tmp_path) not in mounts
        assert _port_is_free(settings.agi_port)
        assert engine.loops.states and not engine.loops.running()
    finally:
        blocker.close()
        await engine.stop()


async def test_a_dead_loop_is_restarted_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A malformed entry in the ACD's event stream kills the event-log loop for real:
    /healthz names it while it restarts with backoff; once the entry is gone, it recovers
    and stores the events after it."""
    import redis.asyncio as aioredis

    settings = instance_settings(tmp_path, manage_asterisk=False)
    engine = Hotline(settings)
    redis = aioredis.Redis.from_url(settings.redis_url)
    stream = f"{settings.acd_prefix}events"
    healthz = f"http://127.0.0.1:{settings.web_port}/healthz"

    async def part(http: aiohttp.ClientSession) -> dict[str, object]:
        async with http.get(healthz) as response:
            assert response.status == 503  # no Asterisk here: never all up
            parts: dict[str, dict[str, object]] = (await response.json())["parts"]
            return parts["loop:acd-event-log"]

    try:
        await engine.start()
        async with aiohttp.ClientSession() as http:
            assert (await part(http))["up"]
            poison = await redis.xadd(stream, {"type": "enter", "ts": "not-a-number"})
            down = await eventually(lambda: _down(part(http)), what="the loop reported down")
            assert "ValueError" in str(down["detail"]), down
            assert "loop acd-event-log died" in caplog.text
            await redis.xdel(stream, poison)
            good = await redis.xadd(stream, {"type": "enter", "ts": "1700000000000", "call": "c1"})
            await eventually(lambda: _up(part(http)), timeout_s=90, what="the loop recovered")
        assert engine.event_log.last_id == good.decode()
    finally:
        await engine.stop()
        await redis.aclose()
        await drop_acd_keys(settings)


async def _down(status: Awaitable[dict[str, object]]) -> dict[str, object] | None:
    part = await status
    return None if part["up"] else part


async def _up(status: Awaitable[dict[str, object]]) -> bool:
    return bool((await status)["up"])


async def test_commands_read_the_running_instance(tmp_path: Path) -> None:
    """`hotline seats list`, `stats` and `calls` given only the data folder read the engine
    running there (its database, Redis prefix), and say which instance they read."""
    from calls.callerid import parse_caller_id

    settings = instance_settings(
        tmp_path,
        manage_asterisk=False,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'elsewhere.db'}",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATA_DIR=str(settings.data_dir), PYTHONPATH=str(PROJECT_DIR))
    engine = Hotline(settings)
    try:
        await engine.start()
        await engine.acd.login("8001", "2468")
        await engine.calls.open("cli-1.1", "PJSIP/citizens-1", parse_caller_id("13912345678"))

        seats = await asyncio.to_thread(run, ["seats", "list", "--json"], env)
        assert seats.returncode == 0, seats.stderr
        assert f"running as pid {os.getpid()}" in seats.stderr
        assert settings.acd_prefix in seats.stderr and "elsewhere.db" in seats.stderr
        states = {s["extension"]: s["state"] for s in json.loads(seats.stdout)}
        assert states["8001"] == "available"

        calls = await asyncio.to_thread(run, ["calls", "--json"], env)
        assert calls.returncode == 0, calls.stderr
        assert [c["caller_number"] for c in json.loads(calls.stdout)] == ["13912345678"]

        stats = await asyncio.to_thread(run, ["stats", "--json"], env)
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["seats_by_state"]["available"] == 1
    finally:
        await engine.stop()
        await drop_acd_keys(settings)
    assert not (settings.data_dir / "instance.json").exists()
    after = await asyncio.to_thread(run, ["calls", "--json"], env)
    assert after.returncode == 0, after.stderr
    assert f"no hotline running in {settings.data_dir}" in after.stderr
    assert json.loads(after.stdout) == []  # the data folder's own database: nothing there


@pytest.mark.e2e
async def test_a_second_hotline_up_on_one_data_folder_is_refused_and_touches_nothing(
    tmp_path: Path,
) -> None:
    """Issue 8 item 13: the second start stopped the first one's Asterisk and unmounted it."""
    if os.geteuid() != 0:
        pytest.skip("needs root: chroot and mounts")
    env = hotline_env(
        tmp_path, HOTLINE_REDIS_URL=TEST_REDIS_URL, HOTLINE_ACD_PREFIX=f"lock-{os.getpid()}:acd:"
    )
    health = f"http://127.0.0.1:{PORTS['HOTLINE_WEB_PORT']}/healthz"
    root = tmp_path / "var" / "asterisk" / "root"
    log = tmp_path / "first.log"
    with log.open("wb") as out:
        first = await asyncio.create_subprocess_exec(
            *HOTLINE, "up", env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        async with aiohttp.ClientSession() as http:

            async def healthy() -> bool:
                try:
                    async with http.get(health) as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            async def serving() -> bool:
                assert first.returncode is None, log.read_text()[-3000:]
                return await healthy()

            await eventually(serving, timeout_s=120, what="the first hotline up to serve")
            pid = (root / "run/asterisk/asterisk.pid").read_text().strip()

            second = await asyncio.to_thread(run, ["up"], env, 60)
            assert second.returncode == 1
            [line] = second.stderr.strip().splitlines()
            assert line == (
                f"hotline: a hotline (pid {first.pid}) is already running on "
                f"{tmp_path / 'var'}; not starting"
            )
            assert await healthy()
            assert (root / "run/asterisk/asterisk.pid").read_text().strip() == pid
            assert f" {root} " in _mounts()
    finally:
        first.terminate()
        await asyncio.wait_for(first.wait(), 90)
    assert first.returncode == 0
    assert f" {root} " not in _mounts()


def _mounts() -> str:
    return Path("/proc/self/mountinfo").read_text()


@pytest.mark.e2e
async def test_healthz_starts_no_asterisk_command(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/healthz checks a managed Asterisk by its process and an AMI Ping: no `asterisk -rx`
    process per request."""
    from pbx.instance import AsteriskInstance

    commands: list[str] = []
    real_cli = AsteriskInstance.cli

    def counting_cli(self: AsteriskInstance, command: str, timeout: float = 10.0) -> object:
        commands.append(command)
        return real_cli(self, command, timeout)

    monkeypatch.setattr(AsteriskInstance, "cli", counting_cli)
    url = f"http://127.0.0.1:{hotline.settings.web_port}/healthz"
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(url) as response:
                body = await response.json()
            assert body["parts"]["asterisk"]["up"], body
    assert commands == []


def test_hotline_up_that_cannot_start_says_why_in_one_line(tmp_path: Path) -> None:
    """The web port is taken: `hotline up` ends with one line naming the cause (no
    traceback), and leaves nothing running behind (FastAGI port free, no instance file)."""
    env = hotline_env(
        tmp_path,
        HOTLINE_MANAGE_ASTERISK="false",
        HOTLINE_REDIS_URL=TEST_REDIS_URL,
        HOTLINE_ACD_PREFIX=f"up-fails-{os.getpid()}:acd:",
    )
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", int(PORTS["HOTLINE_WEB_PORT"])))
    blocker.listen()
    try:
        result = run(["up"], env)
    finally:
        blocker.close()
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("hotline: did not start: ") and "address already in use" in last
    assert "Traceback" not in result.stderr
    assert _port_is_free(int(PORTS["HOTLINE_AGI_PORT"]))
    assert not (tmp_path / "var" / "instance.json").exists()


async def test_seats_reload_refusals(tmp_path: Path) -> None:
    """The control endpoint wants the instance's token; a broken seats file is refused with
    its reason by `hotline seats reload`, and the running engine keeps the seats it had."""
    seats_file = tmp_path / "seats.toml"
    seats_file.write_text((PROJECT_DIR / "agents" / "seats.toml").read_text(encoding="utf-8"))
    settings = instance_settings(tmp_path, manage_asterisk=False, seats_file=seats_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATA_DIR=str(settings.data_dir), PYTHONPATH=str(PROJECT_DIR))
    engine = Hotline(settings)
    try:
        await engine.start()
        before = engine.seats
        url = f"http://127.0.0.1:{settings.web_port}/control/seats/reload"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, headers={"Authorization": "Bearer guess"}) as response:
                assert response.status == 401
                assert (await response.json())["error"]["code"] == "unauthenticated"
        seats_file.write_text('[[seat]]\nextension = "8001"\n', encoding="utf-8")
        result = await asyncio.to_thread(run, ["seats", "reload"], env)
        assert result.returncode == 2, result.stdout
        assert "hotline: the seats file is refused:" in result.stderr
        assert engine.seats is before
    finally:
        await engine.stop()
        await drop_acd_keys(settings)


KOREAN_MENU = """\
[menu]
start = "main"
languages = ["zh", "ko"]
[voices]
zh = "cmn"
ko = "ko"
[prompts.invalid]
zh = "输入有误"
ko = "잘못된 선택입니다"
[nodes.main]
zh = "投诉按1"
ko = "민원은 1번"
[[nodes.main.options]]
key = "1"
route = "queue:report"
"""


def test_a_menu_language_without_order_status_words_is_refused(tmp_path: Path) -> None:
    menu = tmp_path / "menu.toml"
    menu.write_text(KOREAN_MENU, encoding="utf-8")
    result = run(["menu", "--check-only"], hotline_env(tmp_path, HOTLINE_MENU_FILE=str(menu)))
    assert result.returncode == 2, result.stderr
    assert "order_status.toml: [sentence] has no text for 'ko'" in result.stderr
    assert "state_labels.toml: [states.registered] has no text for 'ko'" in result.stderr
