"""SQL tables of the revisit schedule: one revisit per order and round (a reworked order is
revisited again), and every attempt to call, so a restart or a crash loses nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, UTCDateTime, utcnow


class RevisitRow(Base):
    __tablename__ = "revisits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_number: Mapped[str] = mapped_column(String(20), index=True)
    # The order's rework count when scheduled: a reworked, reviewed-again order gets another.
    round: Mapped[int] = mapped_column(Integer, default=0)
    # due → dialing → done; or manual (an operator calls); see revisit.rules.States
    state: Mapped[str] = mapped_column(String(16), index=True)
    manual_reason: Mapped[str] = mapped_column(String(32), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # calls that count (not interrupted)
    # The engine placing the current attempt, until when (a dead engine's lease runs out).
    owner: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    satisfaction: Mapped[str] = mapped_column(String(24), default="")
    result_by: Mapped[str] = mapped_column(String(64), default="")  # "call" or the operator
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)

    history: Mapped[list[RevisitAttemptRow]] = relationship(
        back_populates="revisit",
        order_by="RevisitAttemptRow.id",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    __table_args__ = (UniqueConstraint("order_number", "round", name="uq_revisits_order_round"),)


class RevisitAttemptRow(Base):
    """One outbound call: who placed it, when, and how it ended (empty while in flight)."""

    __tablename__ = "revisit_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    revisit_id: Mapped[int] = mapped_column(ForeignKey("revisits.id"), index=True)
    channel_id: Mapped[str] = mapped_column(String(64), unique=True)  # Originate's ChannelId
    owner: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), default="")

    revisit: Mapped[RevisitRow] = relationship(back_populates="history")


TABLES = [RevisitRow.__table__, RevisitAttemptRow.__table__]
