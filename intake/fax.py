"""Fax intake: res_fax's ``ReceiveFAX`` AMI event becomes a work order of channel "fax".

IVR key 5 sends the citizen to ``hotline-action,fax``, where ``ReceiveFAX`` stores the TIFF
under ``<recordings>/fax/<uniqueid>.tif`` (the same path on both sides of the chroot). When
res_fax reports the fax, the order is registered with the TIFF attached, for an operator to
read and complete. Register the handler on the engine's AMI:
``ami.on("ReceiveFAX", fax_intake.on_event)``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Protocol

from panoramisk.message import Message

from calls.callerid import parse_caller_id
from workorders.orders import SYSTEM, Actor, NewWorkOrder, WorkOrder

log = logging.getLogger(__name__)

FAX_INTAKE = replace(SYSTEM, name="fax-intake")


@dataclass(frozen=True)
class ReceivedFax:
    uniqueid: str
    channel: str
    caller_number: str | None
    remote_station_id: str
    pages: int
    files: tuple[str, ...]

    @property
    def description(self) -> str:
        return f"fax of {self.pages} page{'' if self.pages == 1 else 's'} received"


def received_fax(event: Message) -> ReceivedFax:
    """Read the fields of one ``ReceiveFAX`` event (``FileName`` repeats per file)."""
    names = event.get("FileName") or []
    files = tuple(n for n in ([names] if isinstance(names, str) else names) if n)
    pages = str(event.get("PagesTransferred", "") or "0")
    return ReceivedFax(
        uniqueid=str(event.get("Uniqueid", "")),
        channel=str(event.get("Channel", "")),
        caller_number=parse_caller_id(str(event.get("CallerIDNum", ""))).number,
        remote_station_id=str(event.get("RemoteStationID", "")).strip(),
        pages=int(pages) if pages.isdigit() else 0,
        files=files,
    )


class WorkOrderCreator(Protocol):
    async def create(
        self, new: NewWorkOrder, actor: Actor, *, issue_token: bool = False
    ) -> WorkOrder: ...


class FaxIntake:
    def __init__(self, work_orders: WorkOrderCreator) -> None:
        self.work_orders = work_orders
        self._tasks: set[asyncio.Task[WorkOrder | None]] = set()

    def on_event(self, event: Message) -> None:
        """AMI handler for ``ReceiveFAX``: registers the work order in the background."""
        fax = received_fax(event)
        task = asyncio.create_task(self.register_logged(fax), name=f"fax-{fax.uniqueid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def register_logged(self, fax: ReceivedFax) -> WorkOrder | None:
        try:
            return await self.register(fax)
        except Exception:
            log.exception("fax %s from %s: work order not registered", fax.uniqueid,
                          fax.caller_number)  # fmt: skip
            return None

    async def register(self, fax: ReceivedFax) -> WorkOrder | None:
        if fax.pages == 0 or not fax.files:
            log.warning("fax %s from %s on %s: nothing received (pages %s, files %s)",
                        fax.uniqueid, fax.caller_number, fax.channel, fax.pages,
                        fax.files)  # fmt: skip
            return None
        order = await self.work_orders.create(
            NewWorkOrder(
                channel="fax",
                caller_phone=fax.caller_number or "",
                description=fax.description,
                attachment_path=fax.files[0],
                call_id=fax.uniqueid,
                attributes={
                    "fax_pages": fax.pages,
                    "fax_files": list(fax.files),
                    "fax_remote_station_id": fax.remote_station_id,
                },
            ),
            FAX_INTAKE,
        )
        log.info("fax %s from %s (station %r): %d pages in %s, registered as %s",
                 fax.uniqueid, fax.caller_number, fax.remote_station_id, fax.pages,
                 fax.files[0], order.number)  # fmt: skip
        return order

    async def close(self, timeout: float = 10.0) -> None:
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
