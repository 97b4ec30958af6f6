"""The ACD's event log (acd_events), until now created outside the migrations.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Databases from before this revision may have the table already (made at engine start).
    if "acd_events" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "acd_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream_ms", sa.BigInteger(), nullable=False),
        sa.Column("stream_seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("seat", sa.String(length=16), nullable=False),
        sa.Column("skill", sa.String(length=32), nullable=False),
        sa.Column("data", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stream_ms", "stream_seq", name="uq_acd_events_stream"),
    )
    with op.batch_alter_table("acd_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acd_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_acd_events_call_id"), ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_acd_events_type"), ["type"], unique=False)


def downgrade() -> None:
    op.drop_table("acd_events")
