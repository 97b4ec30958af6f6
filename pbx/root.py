"""The Asterisk 22 root, built once from Debian sid with debootstrap and cached.

Debian bookworm ships no Asterisk; sid does (22.x). The root lives outside the repository
(``asterisk_cache_dir``) so every clone, test run and CI run on a machine reuses it.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

ROOT_NAME = "asterisk-22-sid"
PACKAGES = ("asterisk", "asterisk-modules")
_MARKER = ".hotline-root-complete"


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
        (partial / _MARKER).write_text(version + "\n")
        if root.exists():
            shutil.rmtree(root)
        partial.rename(root)
        log.info("built %s in %.0f s", version, time.monotonic() - started)
        return root
