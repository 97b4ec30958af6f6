"""The hotline running in a data folder, as the other ``hotline`` commands find it.

The engine writes ``<data_dir>/instance.json`` (0600: it names the database and Redis)
once its web service listens, and removes it when it stops. ``hotline seats``, ``stats``
and ``calls`` read it, so they act on the instance running in that data folder whatever
their own environment says, and they say on stderr which instance they read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url

from hotline.private import write_private
from hotline.settings import Settings, SettingsError

INSTANCE_FILE = "instance.json"


@dataclass(frozen=True)
class RunningInstance:
    pid: int
    settings: Settings

    @property
    def web_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}"


def instance_file(data_dir: Path) -> Path:
    return data_dir / INSTANCE_FILE


def write_instance(settings: Settings) -> Path:
    path = instance_file(settings.data_dir)
    write_private(path, json.dumps({"pid": os.getpid(), "settings": settings.to_dict()}))
    return path


def remove_instance(settings: Settings) -> None:
    path = instance_file(settings.data_dir)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass  # gone already, or another instance's file: not ours to remove


def running_instance(data_dir: Path) -> RunningInstance | None:
    """The hotline running in ``data_dir``; None if none is (a dead engine's file is stale)."""
    try:
        written = json.loads(instance_file(data_dir).read_text(encoding="utf-8"))
        pid = int(written["pid"])
        settings = Settings.from_dict(written["settings"])
    except (OSError, ValueError, KeyError, TypeError, SettingsError):
        return None
    return RunningInstance(pid, settings) if process_alive(pid) else None


def describe(settings: Settings) -> str:
    """Which instance ``settings`` name, for a person (passwords hidden)."""
    database = make_url(settings.effective_database_url).render_as_string(hide_password=True)
    redis = _hide_password(settings.redis_url) or f"(its own, port {settings.redis_port})"
    return (
        f"data dir {settings.data_dir}, database {database}, "
        f"Redis {redis} prefix {settings.acd_prefix}"
    )


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***" if parts.username else ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def process_alive(pid: int | None) -> bool:
    """Whether process ``pid`` runs (read from /proc: no command started)."""
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}  # a zombie is dead, its parent did not reap it yet
