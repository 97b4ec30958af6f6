"""The Asterisk 22 root, built once from Debian sid with debootstrap and cached.

Debian bookworm ships no Asterisk; sid does (22.x). The root lives outside the repository
(``asterisk_cache_dir``) so every clone, test run and CI run on a machine reuses it.
"""

from __future__ import annotations

import fcntl
import grp
import logging
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

# "-2": roots built before the asterisk user got ids of its own (it had Debian's 101, which on
# the host can be another daemon's, e.g. postgres) are not reused.
ROOT_NAME = "asterisk-22-sid-2"
PACKAGES = ("asterisk", "asterisk-modules")
_MARKER = ".hotline-root-complete"
USER = "asterisk"  # the user Asterisk runs as, made by Debian's package
FIRST_OWN_ID = 64000  # the asterisk user's uid/gid: the first one from here free on both sides


class ProvisionError(RuntimeError):
    """The Asterisk root could not be built or is unusable."""


def cached_root(cache_dir: Path) -> Path:
    return cache_dir / ROOT_NAME


def is_built(cache_dir: Path) -> bool:
    root = cached_root(cache_dir)
    return (root / _MARKER).is_file() and (root / "usr/sbin/asterisk").is_file()


def build_root(cache_dir: Path, mirror: str) -> Path:
    """Return the cached root, building it first if needed (about a minute)."""
    root = cached_root(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes provisioning at once build it once
        if is_built(cache_dir):
            return root
        if shutil.which("debootstrap") is None:
            raise ProvisionError("debootstrap is not installed (apt-get install debootstrap)")
        partial = cache_dir / f"{ROOT_NAME}.partial"
        if partial.exists():
            shutil.rmtree(partial)
        log.info("building the Asterisk 22 root from Debian sid into %s", root)
        started = time.monotonic()
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            "sid",
            str(partial),
            mirror,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise ProvisionError(f"debootstrap failed ({result.returncode}):\n{tail}")
        version = subprocess.run(
            ["chroot", str(partial), "/usr/sbin/asterisk", "-V"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if not version.startswith("Asterisk 22"):
            raise ProvisionError(f"the root holds {version or 'no Asterisk'}, not Asterisk 22")
        _give_own_ids(partial)
        (partial / _MARKER).write_text(version + "\n")
        if root.exists():
            shutil.rmtree(root)
        partial.rename(root)
        log.info("built %s in %.0f s", version, time.monotonic() - started)
        return root


def _give_own_ids(root: Path) -> None:
    """Give the root's asterisk user and group an id no host user or group has.

    Asterisk shares the host's kernel: with Debian's id (101) it could signal or trace the
    host's own user 101 (postgres, here). Its files in the root are handed over too.
    """
    passwd, group = root / "etc/passwd", root / "etc/group"
    root_uids = {int(line.split(":")[2]) for line in _lines(passwd)}
    root_gids = {int(line.split(":")[2]) for line in _lines(group)}
    taken = root_uids | root_gids | {u.pw_uid for u in pwd.getpwall()}
    taken |= {g.gr_gid for g in grp.getgrall()}
    new = next(i for i in range(FIRST_OWN_ID, 65000) if i not in taken)
    old_uid = old_gid = None
    for path in (passwd, group):
        lines = []
        for line in _lines(path):
            fields = line.split(":")
            if fields[0] == USER:
                if path == passwd:
                    old_uid, old_gid = int(fields[2]), int(fields[3])
                    fields[3] = str(new)
                fields[2] = str(new)
            lines.append(":".join(fields))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if old_uid is None:
        raise ProvisionError(f"{passwd} has no {USER} user")
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            entry = os.path.join(folder, name)
            info = os.lstat(entry)
            if info.st_uid == old_uid or info.st_gid == old_gid:
                os.lchown(
                    entry,
                    new if info.st_uid == old_uid else info.st_uid,
                    new if info.st_gid == old_gid else info.st_gid,
                )
    log.info("the root's %s user and group are %d (were %d/%d)", USER, new, old_uid, old_gid)


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]
