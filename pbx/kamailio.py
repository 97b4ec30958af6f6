"""Kamailio in front of several Asterisk boxes: one SIP address for citizens and seats.

Kamailio (Debian's ``kamailio`` package) is the seats' registrar (each seat's password is
the one its PJSIP endpoint on every box has) and a stateful proxy: a citizen's call goes to
one of the boxes (dispatcher, round robin; a box that stops answering the OPTIONS probes is
taken out, and a call it fails is tried on the next); a box's INVITE to a seat (its AOR's
contact is the seat's user at Kamailio, :func:`agents.pjsip.render_pjsip`) goes to wherever
the seat registered. The configuration is rendered from ``kamailio-config/kamailio.cfg``
into the data folder, like Asterisk's; the process runs on the host as Debian's
``kamailio`` user, in the foreground of a detached session, logging to ``kamailio.out``.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hotline.private import Owner, write_private
from hotline.settings import PROJECT_DIR
from pbx.config import render_template
from pbx.instance import wait_gone
from pbx.root import ProvisionError

log = logging.getLogger(__name__)

TEMPLATE = PROJECT_DIR / "kamailio-config" / "kamailio.cfg"
USER = "kamailio"
BOX_SET = 1  # the dispatcher set of the Asterisk boxes
_SEAT_LINE = re.compile(r"\$sht\(seats=>([^)]+)\) = ")
# Kamailio processes this process started, by folder: kept so they are waited for (reaped).
_children: dict[Path, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class KamailioConfig:
    host: str
    port: int
    boxes: tuple[str, ...]  # the Asterisk boxes' SIP addresses, host:port
    probe_s: int
    seat_passwords: Mapping[str, str]  # extension -> SIP password


def parse_boxes(text: str) -> tuple[str, ...]:
    """``"127.0.0.2:5060, 127.0.0.3:5060"`` -> the addresses (a port is required)."""
    boxes = tuple(part.strip() for part in text.split(",") if part.strip())
    for box in boxes:
        host, _, port = box.rpartition(":")
        if not host or not port.isdigit():
            raise ProvisionError(f"kamailio_boxes: {box!r} is not host:port")
    return boxes


def render(config: KamailioConfig, run_dir: Path, dispatcher_list: Path) -> dict[str, str]:
    """``kamailio.cfg`` and ``dispatcher.list``, by file name."""
    if not config.boxes:
        raise ProvisionError("Kamailio needs at least one Asterisk box (kamailio_boxes)")
    passwords = "\n".join(f'\t$sht(seats=>{ext}) = "{password}";'
                          for ext, password in sorted(config.seat_passwords.items()))  # fmt: skip
    values = {
        "host": config.host, "port": config.port, "probe_s": max(1, config.probe_s),
        "run_dir": run_dir, "dispatcher_list": dispatcher_list, "seat_passwords": passwords,
    }  # fmt: skip
    cfg = render_template(TEMPLATE.read_text(encoding="utf-8"), values, TEMPLATE.name)
    boxes = "".join(f"{BOX_SET} sip:{box} 0 0\n" for box in config.boxes)
    return {"kamailio.cfg": cfg, "dispatcher.list": boxes}


def _owner() -> Owner | None:
    """uid and gid of Debian's ``kamailio`` user (None: not there, or not root)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


@dataclass(frozen=True)
class KamailioProxy:
    directory: Path  # rendered config, runtime folder, console log
    host: str
    port: int

    @property
    def config_file(self) -> Path:
        return self.directory / "kamailio.cfg"

    @property
    def run_dir(self) -> Path:
        return self.directory / "run"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "kamailio.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "kamailio.out"

    def provision(self, config: KamailioConfig) -> list[str]:
        """Render and check the configuration; return the names whose content changed."""
        if shutil.which("kamailio") is None:
            raise ProvisionError("kamailio is not installed (apt-get install kamailio)")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.run_dir.mkdir(exist_ok=True)
        owner = _owner()
        if owner is not None:
            os.chown(self.run_dir, *owner)
        changed = []
        rendered = render(config, self.run_dir, self.directory / "dispatcher.list")
        for name, text in rendered.items():
            target = self.directory / name
            if target.is_file() and target.read_text(encoding="utf-8") == text:
                continue
            write_private(target, text)  # read as root before Kamailio drops to its user
            changed.append(name)
        check = subprocess.run(["kamailio", "-c", "-f", str(self.config_file)],
                               capture_output=True, text=True, check=False)  # fmt: skip
        if check.returncode != 0:
            tail = "\n".join(check.stderr.splitlines()[-10:])
            raise ProvisionError(f"Kamailio refuses {self.config_file}:\n{tail}")
        return changed

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def start(self, timeout_s: float = 15.0) -> int:
        """Start Kamailio detached and wait until it answers an OPTIONS; return its pid."""
        running = self.pid()
        if running is not None:
            log.info("Kamailio is already running (pid %s)", running)
            return running
        cmd = ["kamailio", "-f", str(self.config_file), "-DD", "-E", "-m", "64", "-M", "8",
               "-P", str(self.pid_file), "-Y", str(self.run_dir)]  # fmt: skip
        if _owner() is not None:
            cmd += ["-u", USER, "-g", USER]
        with open(self.log_file, "ab") as out:
            process = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives `hotline kamailio start` returning
            )
        _children[self.directory] = process
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ProvisionError(
                    f"Kamailio exited with {process.returncode}; see {self.log_file}"
                )
            if ping(self.host, self.port, timeout_s=0.5):
                log.info("Kamailio up on %s:%s (pid %s); its log: %s", self.host, self.port,
                         process.pid, self.log_file)  # fmt: skip
                return process.pid
        process.kill()
        raise ProvisionError(
            f"Kamailio did not answer within {timeout_s:.0f} s; see {self.log_file}"
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        child = _children.pop(self.directory, None)
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if child is not None:
                try:
                    child.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    log.warning("Kamailio (pid %s) still running: killing it", pid)
                    child.kill()
                    child.wait()
            else:
                wait_gone(pid, timeout_s, "Kamailio")
        for leftover in (self.pid_file, self.run_dir / "kamailio_ctl"):
            leftover.unlink(missing_ok=True)
        log.info("Kamailio stopped")

    def boxes(self) -> str:
        """The boxes and their state as Kamailio sees them (``kamcmd dispatcher.list``)."""
        return self.rpc("dispatcher.list")

    def rpc(self, *command: str) -> str:
        """One RPC command through Kamailio's control socket (``kamcmd``); its output.
        kamcmd takes a digits-only argument for a number: ``s:8001`` is the string."""
        result = subprocess.run(
            ["kamcmd", "-s", f"unix:{self.run_dir / 'kamailio_ctl'}", *command],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        if result.returncode != 0 or result.stdout.startswith("error:"):
            raise ProvisionError(f"kamcmd: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def configured_seats(self) -> set[str]:
        """The seats in the rendered configuration (empty before the first provisioning)."""
        if not self.config_file.is_file():
            return set()
        return set(_SEAT_LINE.findall(self.config_file.read_text(encoding="utf-8")))

    def update_seats(self, passwords: Mapping[str, str], previous: set[str]) -> None:
        """Give the running Kamailio the seats' passwords and drop the ``previous`` seats no
        longer there, without a restart (registrations are kept in its memory)."""
        for ext, password in sorted(passwords.items()):
            self.rpc("htable.sets", "seats", f"s:{ext}", f"s:{password}")
        for ext in sorted(previous - set(passwords)):
            self.rpc("htable.delete", "seats", f"s:{ext}")


def ping(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """Whether a SIP server answers an OPTIONS at ``host:port`` (UDP) with 200."""
    call_id = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1" if host.startswith("127.") else "0.0.0.0", 0))
        sock.settimeout(timeout_s)
        local = sock.getsockname()[1]
        message = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{call_id[:16]};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:hotline@{host}>;tag={call_id[:8]}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        try:
            sock.sendto(message.encode(), (host, port))
            reply = sock.recv(4096)
        except OSError:  # timeout, or nothing listens (ICMP: connection refused)
            time.sleep(min(timeout_s, 0.2))
            return False
    return reply.startswith(b"SIP/2.0 200")
