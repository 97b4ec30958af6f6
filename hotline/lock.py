"""One running hotline per data directory: ``hotline up`` holds ``data_dir/hotline.lock``.

The lock (``flock``) lives as long as the process, so a crash never leaves a stale lock. A
second ``hotline up`` on the same data directory is refused before it touches anything:
no Asterisk stop, no unmount, no port taken.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hotline.private import FILE_MODE, private_dir


class AlreadyRunning(RuntimeError):
    """Another process holds the data directory."""


@contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    private_dir(data_dir)
    path = data_dir / "hotline.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise AlreadyRunning(
                f"a hotline (pid {holder}) is already running on {data_dir}; not starting"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
