"""Transcription worker processes on this machine: ``hotline worker`` started N times.

``hotline up`` uses it so one box transcribes out of the box (``transcription_workers``
processes, setting ``transcription_local_workers``); ``hotline worker --processes N`` uses it
on other machines. Each process is ``python -m hotline.cli worker`` with the given settings in
its environment; one that dies is started again (its job is taken again after its lease),
and :meth:`LocalWorkers.stop` sends SIGTERM (running jobs go back to the queue), then SIGKILL
after ``grace_s``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping

log = logging.getLogger(__name__)


class LocalWorkers:
    def __init__(self, count: int, env: Mapping[str, str], grace_s: float = 15.0) -> None:
        if count < 1:
            raise ValueError(f"worker count must be at least 1, got {count}")
        self.count = count
        self.env = dict(env)
        self.grace_s = grace_s
        self.processes: list[subprocess.Popen[bytes]] = []
        self.restarts = 0

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(p.pid for p in self.processes if p.poll() is None)

    def _spawn(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "hotline.cli", "worker", "--parent", str(os.getpid())],
            env=self.env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.info("transcription worker started (pid %d)", process.pid)
        return process

    def start(self) -> None:
        self.processes = [self._spawn() for _ in range(self.count)]

    def restart_dead(self) -> int:
        """Start again every worker that exited; returns how many."""
        restarted = 0
        for index, process in enumerate(self.processes):
            if process.poll() is not None:
                log.error("transcription worker pid %d exited (status %s): starting another",
                          process.pid, process.returncode)  # fmt: skip
                self.processes[index] = self._spawn()
                restarted += 1
        self.restarts += restarted
        return restarted

    async def supervise(self, stop: asyncio.Event, interval_s: float = 2.0) -> None:
        """Restart dead workers until ``stop``; a worker that dies at once (no model, Redis
        refused) is retried no faster than every ``interval_s``."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                self.restart_dead()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(self.grace_s)
            except subprocess.TimeoutExpired:
                log.warning("transcription worker pid %d still busy after %.0f s: killed (its "
                            "job was already given back)", process.pid, self.grace_s)  # fmt: skip
                process.kill()
                process.wait(5)
        log.info("%d transcription worker(s) stopped", len(self.processes))
