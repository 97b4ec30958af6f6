"""The recording of a connected call, kept beside the call record (keyed by its uniqueid)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UTCDateTime


class CallRecordingRow(Base):
    __tablename__ = "call_recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)  # the uniqueid
    caller_number: Mapped[str] = mapped_column(String(32), default="")
    seat: Mapped[str] = mapped_column(String(32), default="")
    skill: Mapped[str] = mapped_column(String(32), default="")  # the queue the citizen chose
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    # recording | recorded | transcribed | failed (see ``error``) | deleted (by retention)
    status: Mapped[str] = mapped_column(String(16), default="recording")
    mix_path: Mapped[str] = mapped_column(String(512), default="")
    caller_path: Mapped[str] = mapped_column(String(512), default="")
    operator_path: Mapped[str] = mapped_column(String(512), default="")
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # CallTranscript.to_dict(): turns, and each side's words with their timings.
    transcript: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    work_order_number: Mapped[str] = mapped_column(String(20), default="", index=True)
    error: Mapped[str] = mapped_column(Text, default="")
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
