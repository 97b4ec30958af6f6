"""The ACD's event log in SQL (like Asterisk's queue_log): the source of the statistics."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


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
