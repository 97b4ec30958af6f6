"""The intake as the engine holds it: recording listener, fax handler, retention job.

The composition root opens it once, registers ``fax.on_event`` for ``ReceiveFAX`` on its AMI,
passes ``recordings`` to the ACD connector as a call listener, runs ``run_retention`` and
``run_recovery`` as tasks and awaits ``close`` at shutdown (before the AMI and the database go).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calls.store import CallStore
from intake.config import IntakeConfig
from intake.fax import FaxIntake, WorkOrderCreator
from intake.outbox import Outbox
from intake.recording import AmiActions, CallDrafter, RecordingListener
from intake.retention import run_retention
from intake.store import RecordingStore
from intake.transcription import SideTranscriber

log = logging.getLogger(__name__)


class WorkOrders(CallDrafter, WorkOrderCreator, Protocol):
    """What intake needs of the work-order service: drafts of calls, registered faxes."""


@dataclass
class Intake:
    config: IntakeConfig
    store: RecordingStore
    recordings: RecordingListener
    fax: FaxIntake

    @classmethod
    def open(
        cls,
        config: IntakeConfig,
        ami: AmiActions,
        sessions: async_sessionmaker[AsyncSession],
        work_orders: WorkOrders,
        transcriber: SideTranscriber | None,
    ) -> Intake:
        """Build the parts; without a transcriber calls are still recorded and drafted."""
        config.recordings_dir.mkdir(parents=True, exist_ok=True)
        store = RecordingStore(sessions)
        outbox = Outbox(config.outbox)
        outbox.open()
        calls = CallStore(sessions)
        recordings = RecordingListener(config, ami, store, work_orders, transcriber, outbox,
                                       calls)  # fmt: skip
        return cls(config, store, recordings, FaxIntake(work_orders))

    async def run_retention(self, stop: asyncio.Event) -> None:
        await run_retention(self.store, self.config, stop)

    async def run_recovery(self, stop: asyncio.Event) -> None:
        """Resume the outbox at start, then look again every ``recovery_interval_s``."""
        await self.recordings.run_recovery(stop)

    async def close(self, timeout: float = 30.0) -> None:
        """Finish running intakes within ``timeout``; the rest stay in the outbox."""
        await self.recordings.close(timeout)
        await self.fax.close(min(timeout, 10.0))
