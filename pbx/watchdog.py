"""Restart the local Asterisk when it dies, so a crash is not dead air until someone notices.

:meth:`AsteriskWatchdog.run` checks the process every ``interval_s`` (cheaply: the child's
exit status or the pid file, no CLI round trip). A dead Asterisk is logged and started
again in its root, with a backoff that doubles up to ``max_backoff_s`` while starts fail.
The AMI client reconnects by itself; softphones register again at their next refresh.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pbx.instance import AsteriskInstance
from pbx.root import ProvisionError

log = logging.getLogger(__name__)


class AsteriskWatchdog:
    def __init__(
        self,
        instance: AsteriskInstance,
        *,
        interval_s: float = 1.0,
        first_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.instance = instance
        self.interval_s = interval_s
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.restarts = 0
        self.down_since: float | None = None  # monotonic time Asterisk was found dead
        self.last_error = ""

    async def check(self) -> None:
        """A health check: raises while Asterisk is down (and being restarted)."""
        if self.down_since is not None or not self.instance.alive():
            detail = f"; restarting ({self.last_error})" if self.last_error else ""
            raise RuntimeError(f"Asterisk is not running{detail}")

    async def run(self, stopping: asyncio.Event) -> None:
        """Watch until ``stopping`` is set."""
        backoff = self.first_backoff_s
        while not await _wait(stopping, self.interval_s):
            if self.instance.alive():
                continue
            if self.down_since is None:
                self.down_since = time.monotonic()
                log.error("Asterisk (pid %s) is gone: restarting it", self.instance.pid())
            try:
                pid = await asyncio.to_thread(self.instance.start)
            except (ProvisionError, OSError) as exc:
                self.last_error = str(exc)
                log.error("Asterisk did not restart (%s); next try in %.0f s", exc, backoff)
                if await _wait(stopping, backoff):
                    return
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            self.restarts += 1
            log.warning("Asterisk restarted (pid %s) after %.1f s down (restart %d)",
                        pid, time.monotonic() - self.down_since, self.restarts)  # fmt: skip
            self.down_since, self.last_error, backoff = None, "", self.first_backoff_s


async def _wait(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for ``event``; True if it is set."""
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        return False
    return True
