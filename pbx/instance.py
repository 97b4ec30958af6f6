"""This installation's Asterisk: an overlay of the cached root, started in a chroot.

The overlay keeps the cached root pristine (its upper layer holds this instance's config,
logs and spool), so several instances (a running hotline, a test run) share one root.
The folders Asterisk reads or writes that the engine also uses (prompts, hold music,
recordings) are bind-mounted at the same absolute path inside, so paths agree on both sides.

Asterisk runs as the root's unprivileged ``asterisk`` user (``-U``/``-G``), owning its
runtime folders and its rendered configuration, with umask 077 (recordings 0600). Neither the
host's ``/proc`` nor its ``/dev`` is mounted: the root's own ``/dev`` (null, zero, random,
urandom, tty, made by debootstrap) is all Asterisk needs.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hotline.private import Owner
from pbx.root import USER, ProvisionError, cached_root, is_built

log = logging.getLogger(__name__)

# Asterisk processes this process started, by root: kept so they can be waited for (reaped).
_children: dict[Path, subprocess.Popen[bytes]] = {}

# The host's name resolution, copied into the root at every mount: without it Asterisk's
# lookup of its own host name fails and logs four ERROR/WARNING lines for every call, and
# goes to DNS for each new call (5 s stalls in bursts when DNS does not answer). The root's
# hosts file always names localhost and this machine (root_hosts), whatever the host's has.
_HOST_FILES = ("resolv.conf",)
# Paths inside the root, relative to it (Debian's /var/run is a symlink to /run: a host-side
# path through it would leave the root, so the run directory is named by its real place).
_RUNTIME_DIRS = ("run/asterisk", "var/log/asterisk", "var/spool/asterisk", "var/lib/asterisk")
# Mounted by earlier versions: still unmounted on stop, so an upgrade leaves nothing behind.
_LEGACY_BINDS = ("proc", "dev")


def root_hosts(host_hosts: str, hostname: str) -> str:
    """The root's /etc/hosts: the host's lines, plus localhost and ``hostname`` if missing."""
    names = {name for line in host_hosts.splitlines()
             for name in line.split("#", 1)[0].split()[1:]}  # fmt: skip
    lines = [host_hosts.rstrip("\n")] if host_hosts.strip() else []
    if "localhost" not in names:
        lines.append("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback")
    if hostname and hostname not in names:
        lines.append(f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class AsteriskInstance:
    cache_dir: Path
    instance_dir: Path
    shared_dirs: tuple[Path, ...]  # host folders visible at the same path inside

    @property
    def root(self) -> Path:
        return self.instance_dir / "root"

    @property
    def etc_dir(self) -> Path:
        return self.root / "etc/asterisk"

    @property
    def run_dir(self) -> Path:
        return self.root / "run/asterisk"

    @property
    def log_file(self) -> Path:
        return self.instance_dir / "asterisk.out"

    @property
    def queue_log(self) -> Path:
        """What Asterisk's own queues did (app_queue's queue_log), while the root is mounted."""
        return self.root / "var/log/asterisk/queue_log"

    def owner(self) -> Owner:
        """uid and gid of the root's ``asterisk`` user (made by Debian's package)."""
        passwd = (
            self.root if _is_mounted(self.root) else cached_root(self.cache_dir)
        ) / "etc/passwd"
        for line in passwd.read_text(encoding="utf-8").splitlines():
            fields = line.split(":")
            if fields[0] == USER and len(fields) > 3:
                return int(fields[2]), int(fields[3])
        raise ProvisionError(f"{passwd} has no {USER} user: rebuild the root")

    # -- mounts ---------------------------------------------------------------------------

    def mount(self) -> None:
        """Mount the overlay and the bind mounts (idempotent)."""
        if not is_built(self.cache_dir):
            raise ProvisionError("the Asterisk root is not built: run `hotline asterisk provision`")
        if os.geteuid() != 0:
            raise ProvisionError("running Asterisk in its root needs root (chroot and mounts)")
        upper, work = self.instance_dir / "upper", self.instance_dir / "work"
        for folder in (upper, work, self.root):
            folder.mkdir(parents=True, exist_ok=True)
        if not _is_mounted(self.root):
            lower = cached_root(self.cache_dir)
            _run(
                [
                    "mount",
                    "-t",
                    "overlay",
                    "overlay",
                    "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work}",
                    str(self.root),
                ]
            )
        for name in _HOST_FILES:  # names resolve as on the host (Asterisk looks up its own)
            host_file = Path("/etc") / name
            if host_file.is_file():
                shutil.copyfile(host_file, self.root / "etc" / name)
        host_hosts = Path("/etc/hosts")
        known = host_hosts.read_text(encoding="utf-8") if host_hosts.is_file() else ""
        (self.root / "etc/hosts").write_text(root_hosts(known, socket.gethostname()))
        uid, gid = self.owner()
        for sub in _RUNTIME_DIRS:
            (self.root / sub).mkdir(parents=True, exist_ok=True)
            os.chown(self.root / sub, uid, gid)
        for sub in (*_RUNTIME_DIRS, "etc/asterisk"):
            _hand_over(self.root / sub, uid, gid)
        for source, target in self._binds():
            source.mkdir(parents=True, exist_ok=True)
            target.mkdir(parents=True, exist_ok=True)
            if not _is_mounted(target):
                _run(["mount", "--bind", str(source), str(target)])

    def unmount(self) -> None:
        """Undo every mount, innermost first (idempotent)."""
        for _source, target in reversed(self._binds()):
            _umount(target)
        for name in _LEGACY_BINDS:
            _umount(self.root / name)
        _umount(self.root)

    def _binds(self) -> list[tuple[Path, Path]]:
        binds = []
        for folder in self.shared_dirs:
            folder = folder.resolve()
            binds.append((folder, self.root / folder.relative_to("/")))
        return binds

    # -- the process ----------------------------------------------------------------------

    def cli(self, command: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Run one Asterisk CLI command through the control socket."""
        return subprocess.run(
            ["chroot", str(self.root), "/usr/sbin/asterisk", "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def is_running(self) -> bool:
        if not (self.run_dir / "asterisk.ctl").exists():
            return False
        try:
            return self.cli("core show uptime", timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def start(self, boot_timeout: float = 60.0) -> int:
        """Start Asterisk detached and wait until it is fully booted; return its pid."""
        if self.is_running():
            log.info("Asterisk is already running in %s", self.root)
            return self.pid() or 0
        self.mount()
        with open(self.log_file, "ab") as out:
            process = subprocess.Popen(
                [
                    "chroot",
                    str(self.root),
                    "/usr/sbin/asterisk",
                    "-f",
                    "-n",
                    "-U",
                    USER,
                    "-G",
                    USER,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives `hotline asterisk start` returning
                umask=0o077,  # recordings, logs and its database readable by nobody else
            )
        _children[self.root] = process
        deadline = time.monotonic() + boot_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ProvisionError(
                    f"Asterisk exited with {process.returncode} while booting; see {self.log_file}"
                )
            try:
                booted = self.cli("core waitfullybooted", timeout=5)
            except subprocess.TimeoutExpired:
                continue
            if booted.returncode == 0 and "fully booted" in booted.stdout:
                log.info("Asterisk fully booted (pid %s); its log: %s (console: %s)", process.pid,
                         self.root / "var/log/asterisk/messages.log", self.log_file)  # fmt: skip
                return process.pid
            time.sleep(0.2)
        process.kill()
        raise ProvisionError(
            f"Asterisk did not boot within {boot_timeout:.0f} s; see {self.log_file}"
        )

    def alive(self) -> bool:
        """Whether the Asterisk process exists (cheap: no CLI round trip)."""
        child = _children.get(self.root)
        if child is not None:
            return child.poll() is None  # also reaps a child killed by a signal
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def pid(self) -> int | None:
        try:
            return int((self.run_dir / "asterisk.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def reload(self) -> str:
        result = self.cli("core reload")
        if result.returncode != 0:
            raise ProvisionError(f"reload failed: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout.strip()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop Asterisk (gracefully, then by signal) and unmount everything."""
        pid = self.pid()
        if self.is_running():
            try:
                self.cli("core stop now", timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("Asterisk did not answer `core stop now`")
        child = _children.pop(self.root, None)
        if child is not None:
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning(
                    "Asterisk (pid %s) still running after %.0f s: killing it", pid, timeout
                )
                child.kill()
                child.wait()
        elif pid is not None:
            wait_gone(pid, timeout)
        if self.root.is_dir():
            self.unmount()
        log.info("Asterisk stopped and %s unmounted", self.root)


def wait_gone(pid: int, timeout: float, name: str = "Asterisk") -> None:
    """Wait until process ``pid`` (not a child of ours) has exited; kill it after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    log.warning("%s (pid %s) still running after %.0f s: killing it", name, pid, timeout)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    time.sleep(0.2)


def _mount_points() -> set[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        return {line.split()[4].replace("\\040", " ") for line in info}


def _hand_over(folder: Path, uid: int, gid: int) -> None:
    """Give Asterisk's files under ``folder`` to its user: an instance made with an older root
    keeps files of the user's former id. Root's own files and mount points stay as they are."""
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(parent, d))]
        for name in dirs + files:
            entry = os.path.join(parent, name)
            info = os.lstat(entry)
            if info.st_uid not in (0, uid):
                os.lchown(entry, uid, gid)


def _is_mounted(path: Path) -> bool:
    return str(path.resolve()) in _mount_points()


def _umount(path: Path) -> None:
    if not _is_mounted(path):
        return
    result = subprocess.run(["umount", str(path)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        log.warning("umount %s: %s; detaching lazily", path, result.stderr.strip())
        _run(["umount", "-l", str(path)])


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ProvisionError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")
