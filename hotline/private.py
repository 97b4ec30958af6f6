"""Personal data and secrets on disk: folders 0700, files 0600, owned by the user who needs them.

The engine runs as root (it mounts Asterisk's root); Asterisk runs as its own unprivileged
user and writes the recordings, so folders it writes into are owned by that user. A folder
made below such a folder takes the owner of the folder it is made in.
"""

from __future__ import annotations

import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600

Owner = tuple[int, int]  # uid, gid


def private_dir(path: Path, owner: Owner | None = None) -> Path:
    """Make ``path`` (and missing parents) mode 0700; every folder made here, and ``path``
    itself, is owned by ``owner`` or else by the owner of the folder it was made in."""
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        made.mkdir(mode=FOLDER_MODE, exist_ok=True)
        _own(made, owner or _owner_of(made.parent))
    os.chmod(path, FOLDER_MODE)
    if owner is not None:
        _own(path, owner)
    return path


def private_file(path: Path, owner: Owner | None = None) -> Path:
    """Make an existing file mode 0600 (and owned by ``owner`` if given)."""
    os.chmod(path, FILE_MODE)
    if owner is not None:
        _own(path, owner)
    return path


def write_private(path: Path, text: str, owner: Owner | None = None) -> None:
    """Write ``text`` to ``path`` as a 0600 file, never readable by others even briefly."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    private_file(tmp, owner)
    tmp.replace(path)


def _owner_of(path: Path) -> Owner:
    info = path.stat()
    return info.st_uid, info.st_gid


def _own(path: Path, owner: Owner) -> None:
    if os.geteuid() == 0 and _owner_of(path) != owner:
        os.chown(path, *owner)
