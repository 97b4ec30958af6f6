"""Readiness of every part the hotline needs, for ``GET /healthz``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]  # raises (any exception) when the part is down


@dataclass(frozen=True)
class PartStatus:
    name: str
    up: bool
    detail: str


async def check_parts(checks: Mapping[str, Check], timeout_s: float) -> list[PartStatus]:
    """Run every check concurrently, each under the deadline."""

    async def one(name: str, check: Check) -> PartStatus:
        try:
            await asyncio.wait_for(check(), timeout_s)
        except TimeoutError:
            return PartStatus(name, False, f"no answer within {timeout_s:.0f} s")
        except Exception as exc:  # any failure means "down"; the reason is reported
            return PartStatus(name, False, str(exc) or type(exc).__name__)
        return PartStatus(name, True, "ok")

    return list(await asyncio.gather(*(one(n, c) for n, c in checks.items())))
