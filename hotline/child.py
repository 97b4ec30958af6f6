"""The engine (``hotline up``) as a child process with given settings, for the fault tests,
the soak and benchmarks: a real process, so SIGKILL is a real crash."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hotline.settings import PROJECT_DIR, Settings

READY_LINE = "hotline ready"  # logged by `hotline up` once it answers calls


class EngineProcess:
    """One engine, its output appended to ``log`` across restarts."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings, self.log = settings, log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env |= self.settings.to_environ() | {"PYTHONPATH": str(PROJECT_DIR)}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hotline.cli", "up"], env=env, stdout=out,
                stderr=subprocess.STDOUT, cwd=PROJECT_DIR,
            )  # fmt: skip
        self.starts += 1

    async def ready(self, timeout_s: float = 90) -> None:
        """Wait until this start has logged :data:`READY_LINE`; raise if the engine died."""
        deadline = time.monotonic() + timeout_s
        while self.text().count(READY_LINE) < self.starts:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"the engine died:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the engine did not start:\n{self.text()[-3000:]}")
            await asyncio.sleep(0.2)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout_s: float = 60) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
