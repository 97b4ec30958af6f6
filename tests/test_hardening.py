"""Least privilege: private files, the callback-number rule, Asterisk as its own user with
only the AMI rights and modules the engine uses, and a crashed Asterisk restarted.

The first tests need nothing running; the ``e2e`` ones look at the session's real engine
and its Asterisk (and kill that Asterisk with SIGKILL once).
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import re
import signal
from pathlib import Path

import aiohttp
import pytest
from conftest import call_record, eventually, new_caller
from panoramisk import Manager

from hotline.engine import Hotline
from hotline.private import private_dir
from hotline.secrets import stored_secret
from hotline.settings import PROJECT_DIR, Settings
from hotline.wiring import ami_events, ami_secret
from pbx.ami import AmiActionError
from pbx.config import PbxConfig, render_all, write_config
from queueing.callback import callback_number_rule, may_call_back
from sipsim.citizen import Press, place_call

# -- callback numbers -----------------------------------------------------------------------

DEFAULT_RULE = callback_number_rule(Settings().callback_number_pattern)


@pytest.mark.parametrize(
    "number",
    ["13912345678", "19912345678", "15000000000", "02158881234", "075588881234", "58881234"],
)
def test_plausible_local_numbers_are_called_back(number: str) -> None:
    assert may_call_back(number, DEFAULT_RULE)


@pytest.mark.parametrize(
    "number",
    [
        "+8613912345678",  # international form
        "008613912345678",
        "0012125550100",
        "19001234567",  # premium
        "95588",  # service numbers
        "12345",
        "110",
        "4008001234",  # toll-free / business numbers
        "139123456789",  # too long
        "1391234567",  # too short
        "",
        None,
    ],
)
def test_international_premium_and_odd_numbers_are_not(number: str | None) -> None:
    assert not may_call_back(number, DEFAULT_RULE)


def test_the_rule_is_configurable_and_checked() -> None:
    assert may_call_back("+4930123456", callback_number_rule(r"\+49\d{6,12}"))
    with pytest.raises(ValueError, match="callback_number_pattern"):
        callback_number_rule("1[3-9")


# -- private files --------------------------------------------------------------------------


def test_secrets_and_the_data_folder_are_private(tmp_path: Path) -> None:
    data = tmp_path / "var"
    stored_secret(data, "ami_secret")
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "secrets.toml").stat().st_mode & 0o777 == 0o600
    (data / "secrets.toml").chmod(0o644)  # e.g. restored from a backup
    stored_secret(data, "ami_secret")
    assert (data / "secrets.toml").stat().st_mode & 0o777 == 0o600


def test_rendered_configuration_is_0600(tmp_path: Path) -> None:
    config = PbxConfig(
        sip_host="127.0.0.1", sip_port=5060, rtp_port_start=10000, rtp_port_end=10999,
        ami_host="127.0.0.1", ami_port=5038, ami_user="hotline", ami_secret="s3cret-ami",
        agi_host="127.0.0.1", agi_port=4573, agi_key="k" * 32, hotline_number="12345",
        citizen_networks="127.0.0.0/8", queue_max_wait_s=1800,
        recordings_dir=tmp_path / "rec", moh_dir=tmp_path / "moh",
    )  # fmt: skip
    rendered = render_all(config)
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "manager.conf").write_text("old", encoding="utf-8")
    (etc / "manager.conf").chmod(0o644)
    write_config(etc, rendered)
    for name in rendered:
        assert (etc / name).stat().st_mode & 0o777 == 0o600, name
    write_config(etc, rendered)  # unchanged files keep (or get back) 0600 as well
    assert (etc / "manager.conf").stat().st_mode & 0o777 == 0o600
    # every AGI() carries the key; the AMI user has no CLI or dialplan rights
    agi_calls = re.findall(r"AGI\(([^)]+)\)", rendered["extensions.conf"])
    assert agi_calls and all(f"?key={'k' * 32}" in call for call in agi_calls)
    rights = dict(re.findall(r"^(read|write) = (.*)$", rendered["manager.conf"], re.M))
    assert set(rights["write"].split(",")) == {"call", "originate", "reporting"}
    assert "command" not in rights["read"] and "dialplan" not in rights["read"]


def manager_write_classes(rendered: str, user: str) -> set[str]:
    """The write classes manager.conf gives ``user``."""
    section = rendered.split(f"[{user}]", 1)[1].split("\n[", 1)[0]
    found = re.search(r"^write = (.*)$", section, re.M)
    assert found is not None
    return {c.strip() for c in found.group(1).split(",")}


ENGINE_PACKAGES = [
    p for p in PROJECT_DIR.iterdir() if (p / "__init__.py").exists() and p.name != "bench"
]


def engine_ami_actions() -> set[str]:
    """Every AMI action the engine's code sends (``{"Action": "<name>", ...}``)."""
    actions = set()
    for package in ENGINE_PACKAGES:
        for source in package.rglob("*.py"):
            text = source.read_text(encoding="utf-8")
            actions |= set(re.findall(r"""["']Action["']:\s*["'](\w+)["']""", text))
    return actions


def test_folders_made_below_take_the_owner_of_their_parent(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    top = private_dir(tmp_path / "recordings", owner=(4321, 4321))
    day = private_dir(top / "2026" / "11" / "24")
    for folder in (top, top / "2026", top / "2026" / "11", day):
        info = folder.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (4321, 4321, 0o700), folder


# -- the running Asterisk -------------------------------------------------------------------


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


@pytest.mark.e2e
async def test_asterisk_runs_as_its_own_user_with_private_files(hotline: Hotline) -> None:
    await asyncio.to_thread(_check_privileges, hotline)


def _check_privileges(hotline: Hotline) -> None:
    asterisk = hotline.asterisk
    assert asterisk is not None
    uid, gid = asterisk.owner()
    assert uid != 0
    # ids of its own: no host user or group shares them (Debian's 101 is postgres here)
    assert uid not in {u.pw_uid for u in pwd.getpwall()}
    assert gid not in {g.gr_gid for g in grp.getgrall()}
    pid = asterisk.pid()
    assert pid is not None
    assert _status(pid)["Uid"].split()[:2] == [str(uid), str(uid)]
    # neither the host's /proc nor its /dev is mounted in the root
    mounts = Path("/proc/self/mountinfo").read_text()
    for name in ("proc", "dev"):
        assert f" {asterisk.root / name} " not in mounts
    for name in ("manager.conf", "pjsip_seats.conf", "extensions.conf"):
        info = (asterisk.etc_dir / name).stat()
        assert (info.st_uid, info.st_mode & 0o777) == (uid, 0o600), name
    s = hotline.settings
    recordings = s.recordings_dir.stat()
    assert (recordings.st_uid, recordings.st_mode & 0o777) == (uid, 0o700)
    assert (s.data_dir / "hotline.db").stat().st_mode & 0o777 == 0o600
    assert s.data_dir.stat().st_mode & 0o777 == 0o700
    # modules nothing uses are not loaded (IAX2 is in Asterisk's root, but the hotline speaks
    # only PJSIP); app_chanspy is, for the supervisors' listen-in
    assert list(asterisk.root.glob("usr/lib/*/asterisk/modules/chan_iax2.so"))
    assert "0 modules loaded" in asterisk.cli("module show like chan_iax2").stdout
    assert "1 modules loaded" in asterisk.cli("module show like app_chanspy").stdout


@pytest.mark.e2e
async def test_a_killed_asterisk_is_restarted_and_takes_calls(
    hotline: Hotline, tmp_path: Path
) -> None:
    asterisk, watchdog = hotline.asterisk, hotline.watchdog
    assert asterisk is not None and watchdog is not None
    s = hotline.settings
    health = f"http://{s.web_host}:{s.web_port}/healthz"
    old_pid = asterisk.pid()
    assert old_pid is not None
    restarts = watchdog.restarts
    os.kill(old_pid, signal.SIGKILL)
    async with aiohttp.ClientSession() as http:
        async with http.get(health) as response:  # Asterisk needs seconds to boot again
            body = await response.json()
        assert response.status == 503 and "asterisk" in body["down"], body

        async def back() -> bool:
            async with http.get(health) as response:
                return response.status == 200

        await eventually(back, timeout_s=60, what="Asterisk restarted and the AMI reconnected")
    assert watchdog.restarts == restarts + 1
    assert asterisk.pid() not in (None, old_pid)

    caller = new_caller()
    result = await place_call(
        tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=caller, presses=[Press("1", 2500), Press("2", 1500)], hold_ms=2000,
    )  # fmt: skip
    assert result.returncode == 0, result.errors[-2000:]
    call = await call_record(hotline, caller)
    assert call["route"] == "queue:consultation"


@pytest.mark.e2e
async def test_the_ami_user_may_send_exactly_what_the_engine_sends(hotline: Hotline) -> None:
    """The write classes in the rendered manager.conf are exactly those the engine's actions
    need, by the privileges the real Asterisk registers them with: each action the code
    sends is allowed, and each class is the only one allowing some action. The engine's own
    AMI user is refused an Originate into System() and the MixMonitor action (class
    system), and gets answers to the actions it uses."""
    asterisk = hotline.asterisk
    assert asterisk is not None
    s = hotline.settings
    granted = manager_write_classes((asterisk.etc_dir / "manager.conf").read_text(), s.ami_user)
    actions = engine_ami_actions()
    assert {"Hangup", "Originate", "CoreShowChannels", "Status", "ControlPlayback"} <= actions
    needs: dict[str, set[str]] = {}
    for action in sorted(actions):
        text = (await asyncio.to_thread(asterisk.cli, f"manager show command {action}")).stdout
        privilege = text.split("[Privilege]", 1)[1].strip().splitlines()[0]
        needs[action] = set() if "<none>" in privilege else set(privilege.split(",")) - {"all"}
    for action, classes in needs.items():
        assert not classes or classes & granted, f"{action} needs one of {classes}"
    for granted_class in granted:
        only = [a for a, classes in needs.items() if classes & granted == {granted_class}]
        assert only, f"write class {granted_class} is needed by no action: {needs}"
    assert "system" not in granted

    with pytest.raises(AmiActionError, match="(?i)forbidden"):
        await hotline.ami.action({
            "Action": "Originate", "Channel": "Local/hangup@hotline-action",
            "Application": "System", "Data": "touch /tmp/hotline-ami-system", "Async": "false",
        })  # fmt: skip
    with pytest.raises(AmiActionError, match="(?i)permission denied"):
        await hotline.ami.action({"Action": "MixMonitor", "Channel": "PJSIP/none-0",
                                  "File": "/tmp/hotline-ami.wav"})  # fmt: skip
    assert not (asterisk.root / "tmp" / "hotline-ami-system").exists()
    channels = await hotline.ami.action({"Action": "CoreShowChannels"}, as_list=True)
    assert channels, "CoreShowChannels unanswered"
    await hotline.ami.action({"Action": "Status"}, as_list=True)


@pytest.mark.e2e
async def test_the_ami_user_gets_only_the_events_the_engine_subscribes_to(
    hotline: Hotline, tmp_path: Path
) -> None:
    """Asterisk filters the engine's AMI user's events (manager.conf eventfilter): a call
    through the IVR raises dozens of event kinds, a session of that user receives only the
    engine's (and the tests' extras); subscribing to any other is refused at once."""
    s = hotline.settings
    allowed = set(ami_events(s)) | {"OriginateResponse"}
    seen: list[str] = []
    manager = Manager(host=s.ami_host, port=s.ami_port, username=s.ami_user,
                      secret=ami_secret(s), events="on", ping_delay=0)  # fmt: skip
    manager.register_event("*", lambda _m, event: seen.append(event.get("Event", "")))
    await asyncio.wait_for(manager.connect(), 10)
    try:
        result = await place_call(
            tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
            caller=new_caller(), presses=[Press("9", 2500)], hold_ms=1500,
        )  # fmt: skip
        assert result.returncode == 0, result.errors[-2000:]
        await eventually(lambda: _has(seen, "Hangup"), 10, "the call's Hangup event")
    finally:
        manager.close()
    assert {"Newchannel", "Hangup"} <= set(seen)
    assert set(seen) - {"FullyBooted", ""} <= allowed, sorted(set(seen) - allowed)
    with pytest.raises(ValueError, match="Newstate"):
        hotline.ami.on("Newstate", lambda _event: None)


async def _has(seen: list[str], name: str) -> bool:
    return name in seen
