"""The hotline's own Redis: a ``redis-server`` under the data folder, not the system one.

It listens on loopback only, on its own port, asks for a password generated once into
``data_dir/secrets.toml`` (``redis_password``), and keeps its data in an append-only file
(AOF, fsync every second) in a private 0700 folder: logins, waiting callers and callbacks
survive a restart of Redis. ``hotline up`` starts it when ``redis_url`` is empty (the
default), like Asterisk: adopts one still running after the engine was killed, restarts
it when it dies (:func:`watch`) and stops it at a clean stop. Tests start one on a private
port through the same class.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.exceptions import RedisError

from hotline.private import private_dir, write_private

log = logging.getLogger(__name__)


class RedisServerError(RuntimeError):
    """The managed redis-server did not start (the reason and its log's tail say why)."""


@dataclass(frozen=True)
class RedisServer:
    folder: Path  # data, AOF, configuration (with the password), log and pid file
    port: int
    password: str
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    @property
    def config_file(self) -> Path:
        return self.folder / "redis.conf"

    @property
    def log_file(self) -> Path:
        return self.folder / "redis.log"

    @property
    def pid_file(self) -> Path:
        return self.folder / "redis.pid"

    def write_config(self) -> None:
        private_dir(self.folder)
        write_private(
            self.config_file,
            "\n".join(
                [
                    "# written by hotline12345 (queueing/redis_server.py); edits are replaced",
                    f"bind {self.host}",
                    f"port {self.port}",
                    "protected-mode yes",
                    f'requirepass "{self.password}"',
                    f'dir "{self.folder}"',
                    f'pidfile "{self.pid_file}"',
                    f'logfile "{self.log_file}"',
                    "daemonize yes",  # detached: an engine killed with -9 leaves it running
                    "appendonly yes",
                    "appendfsync everysec",
                    'save ""',
                    "",
                ]
            ),
        )

    def ping(self) -> bool:
        client = redis.Redis(
            host=self.host, port=self.port, password=self.password, socket_timeout=1,
            socket_connect_timeout=1,
        )  # fmt: skip
        try:
            return bool(client.ping())
        except (RedisError, OSError):
            return False
        finally:
            client.close()

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def alive(self) -> bool:
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

    def start(self, timeout_s: float = 15.0) -> int:
        """Start redis-server (or adopt the one already answering); return its pid."""
        self.write_config()
        if self.ping():
            log.info("Redis already running on %s:%s (pid %s)", self.host, self.port, self.pid())
            return self.pid() or 0
        # Detached (daemonize): Ctrl-C on the engine does not reach it, the engine stops it.
        started = subprocess.run(
            ["redis-server", str(self.config_file)], stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while started.returncode == 0 and time.monotonic() < deadline:
            if self.ping():
                log.info("Redis started on %s:%s (pid %s, AOF in %s)", self.host, self.port,
                         self.pid(), self.folder)  # fmt: skip
                return self.pid() or 0
            time.sleep(0.05)
        tail = self.log_file.read_text(errors="replace")[-800:] if self.log_file.exists() else ""
        raise RedisServerError(
            f"redis-server on port {self.port} did not start:\n{started.stderr}{tail}"
        )

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM: Redis flushes its AOF and exits; SIGKILL if it does not in time."""
        pid = self.pid()
        if pid is None or not self.alive():
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                log.info("Redis (pid %s) stopped", pid)
                return
            time.sleep(0.05)
        log.warning("Redis (pid %s) still running after %.0f s: killing it", pid, timeout_s)
        os.kill(pid, signal.SIGKILL)


async def watch(server: RedisServer, stopping: asyncio.Event, interval_s: float = 1.0) -> None:
    """Start the managed Redis again whenever it is found dead, until ``stopping``."""
    while not stopping.is_set():
        try:
            await asyncio.wait_for(stopping.wait(), interval_s)
            return
        except TimeoutError:
            pass
        if await asyncio.to_thread(server.alive):
            continue
        log.error("Redis (port %s) is gone: restarting it", server.port)
        try:
            await asyncio.to_thread(server.start)
        except (RedisServerError, OSError) as exc:
            log.error("Redis did not restart (%s); trying again", exc)
            await asyncio.sleep(5)
