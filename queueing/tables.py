"""The ACD's event log in SQL (like Asterisk's queue_log): the source of the statistics; and
the queue callbacks' calls to citizens (retried, then failed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UTCDateTime, utcnow


class AcdEventRow(Base):
    __tablename__ = "acd_events"
    __table_args__ = (UniqueConstraint("stream_ms", "stream_seq", name="uq_acd_events_stream"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stream_ms: Mapped[int] = mapped_column(BigInteger)  # the Redis stream id, for resuming
    stream_seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16), index=True)
    at: Mapped[float] = mapped_column(Float, index=True)  # epoch seconds
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    seat: Mapped[str] = mapped_column(String(16))
    skill: Mapped[str] = mapped_column(String(32))
    data: Mapped[str] = mapped_column(String(128))


class CallbackRow(Base):
    """A queue callback's calls to the citizen (the outbound dialer's record, durable): the
    citizen's leg in flight, due again, booked in its queue, answered, or failed."""

    __tablename__ = "callbacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)  # the first callback's id
    number: Mapped[str] = mapped_column(String(32))
    skill: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)  # see CallbackState
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # calls to the citizen ended
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    last_status: Mapped[str] = mapped_column(String(16), default="")  # Asterisk's DIALSTATUS
    owner: Mapped[str] = mapped_column(String(64), default="")  # the engine dialling it
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
