"""SQL tables of the work-order domain (SQLAlchemy 2, on the shared :class:`Base`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, UTCDateTime, utcnow


class WorkOrderRow(Base):
    __tablename__ = "work_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(20), unique=True, index=True)
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(24), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    caller_name: Mapped[str] = mapped_column(String(64), default="")
    caller_phone: Mapped[str] = mapped_column(String(32), default="", index=True)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    email: Mapped[str] = mapped_column(String(254), default="")

    category: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(128), default="")
    location_text: Mapped[str] = mapped_column(String(256), default="")
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    long: Mapped[float | None] = mapped_column(Float, nullable=True)
    address_id: Mapped[str] = mapped_column(String(64), default="")
    zipcode: Mapped[str] = mapped_column(String(16), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    transcript: Mapped[str] = mapped_column(Text, default="")
    recording_path: Mapped[str] = mapped_column(String(512), default="")
    # A received document (e.g. a fax's TIFF) for the operator to read and complete from.
    attachment_path: Mapped[str] = mapped_column(String(512), default="")
    # The Asterisk uniqueid of the call (or fax) the order came from: one order per call.
    call_id: Mapped[str] = mapped_column(String(64), default="")
    # The seat (the operator's extension) who took the call.
    seat: Mapped[str] = mapped_column(String(32), default="")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)

    lead_department: Mapped[str] = mapped_column(String(128), default="", index=True)
    assisting_departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    extension_days: Mapped[int] = mapped_column(Integer, default=0)
    requested_extension_days: Mapped[int] = mapped_column(Integer, default=0)
    # 0 nothing, 1 urged (near the deadline), 2 escalated (overdue): supervision's progress.
    supervision_level: Mapped[int] = mapped_column(Integer, default=0)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)

    reply: Mapped[str] = mapped_column(Text, default="")
    satisfaction: Mapped[str] = mapped_column(String(24), default="")
    resolved: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    merged_into: Mapped[str] = mapped_column(String(20), default="")

    # Open311 intake: the service chosen and what came with the request.
    service_code: Mapped[str] = mapped_column(String(32), default="", index=True)
    token: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    media_url: Mapped[str] = mapped_column(String(1024), default="")
    device_id: Mapped[str] = mapped_column(String(128), default="")
    account_id: Mapped[str] = mapped_column(String(128), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The public face of an Open311 request: a random id (not the sequential number) and the
    # citizen's consent, given at submission, to show it in the public feed.
    public_id: Mapped[str | None] = mapped_column(
        String(32), unique=True, index=True, nullable=True
    )
    published: Mapped[bool] = mapped_column(Boolean, default=False)

    history: Mapped[list[WorkOrderEventRow]] = relationship(
        back_populates="work_order",
        order_by="WorkOrderEventRow.id",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    __table_args__ = (
        # Exactly one order per call: the idempotency key of drafting (intake's outbox).
        Index(
            "uq_work_orders_call_id", "call_id", unique=True,
            sqlite_where=text("call_id != ''"), postgresql_where=text("call_id != ''"),
        ),
    )  # fmt: skip


class WorkOrderEventRow(Base):
    """One line of a work order's history: who did what, when, and from which state."""

    __tablename__ = "work_order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(24))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(24), default="")
    to_state: Mapped[str] = mapped_column(String(24), default="")
    note: Mapped[str] = mapped_column(Text, default="")

    work_order: Mapped[WorkOrderRow] = relationship(back_populates="history")


class WorkOrderCounter(Base):
    """Per-day sequence behind the human-friendly numbers (``YYYYMMDD`` + 6 digits)."""

    __tablename__ = "work_order_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


def text_width(column: str) -> int:
    """The most characters a work order's text column holds (0: unbounded text): the one
    source of the length limits the web checks before storing."""
    length: int | None = getattr(WorkOrderRow.__table__.c[column].type, "length", None)
    return length or 0


TABLES = [WorkOrderRow.__table__, WorkOrderEventRow.__table__, WorkOrderCounter.__table__]
