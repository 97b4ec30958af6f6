"""Call records closed when Asterisk no longer has the call, though no ``Hangup`` reached the
engine: the call ended while the engine was down (kill -9, a restart), or Asterisk itself
restarted. Checked at start and every ``interval_s`` against Asterisk's live channels; a
record younger than ``settle_s`` is left alone (its channel may not be listed yet). With
several boxes on one database, an engine checks only its own box's calls: those whose
uniqueid starts with the box's system name (``box``; Asterisk prefixes its call ids so)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from calls.store import CallStore
from db.base import utcnow

log = logging.getLogger(__name__)

# The uniqueids of the channels Asterisk has now (raises if it cannot be asked).
LiveCalls = Callable[[], Awaitable[set[str]]]
UNHEARD = "ended while the engine was not listening"


async def close_ended(
    calls: CallStore, live: LiveCalls, settle_s: float = 10.0, box: str = ""
) -> int:
    """Close every open record of ``box`` whose call Asterisk no longer has; returns how
    many."""
    before = utcnow() - timedelta(seconds=settle_s)
    candidates = await calls.open_before(before, prefix=f"{box}-" if box else "")
    if not candidates:
        return 0
    channels = await live()  # asked after the records were read: a new call is never closed
    closed = 0
    for uniqueid in candidates:
        if uniqueid not in channels and await calls.close(uniqueid, cause=None, cause_text=UNHEARD):
            closed += 1
    if closed:
        log.warning("%d call records closed: their calls %s", closed, UNHEARD)
    return closed


async def run(
    calls: CallStore,
    live: LiveCalls,
    stopping: asyncio.Event,
    ready: Callable[[], bool],
    *,
    interval_s: float = 30.0,
    settle_s: float = 10.0,
    box: str = "",
) -> None:
    """:func:`close_ended` once ``ready()`` (AMI connected), then every ``interval_s``."""
    while not stopping.is_set():
        if ready():
            try:
                await close_ended(calls, live, settle_s, box)
            except (SQLAlchemyError, OSError, TimeoutError, RuntimeError) as exc:  # AMI too
                log.warning("open call records not checked (%s); next round retries", exc)
            wait = interval_s
        else:
            wait = 1.0
        try:
            await asyncio.wait_for(stopping.wait(), wait)
        except TimeoutError:
            pass
