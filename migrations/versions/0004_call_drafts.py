"""One work order per call (unique call_id), the seat on the order, the queue on a recording.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_BLANK = sa.text("call_id != ''")


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    # A database adopted from before migrations (create_all of today's models) has them already.
    if "seat" not in _columns("work_orders"):
        _one_order_per_call()
    if "skill" not in _columns("call_recordings"):
        with op.batch_alter_table("call_recordings", schema=None) as batch_op:
            batch_op.add_column(sa.Column("skill", sa.String(length=32), nullable=False,
                                          server_default=""))  # fmt: skip


def _one_order_per_call() -> None:
    # Orders drafted twice for one call before this revision (e.g. a fax with two handlers):
    # the first keeps the call's id, later ones keep it with their own id appended.
    op.execute(
        "UPDATE work_orders SET call_id = call_id || '#' || CAST(id AS VARCHAR(20)) "
        "WHERE call_id != '' AND id > (SELECT MIN(w.id) FROM work_orders w "
        "WHERE w.call_id = work_orders.call_id)"
    )
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seat", sa.String(length=32), nullable=False,
                                      server_default=""))  # fmt: skip
        batch_op.drop_index("ix_work_orders_call_id")
        batch_op.create_index(
            "uq_work_orders_call_id", ["call_id"], unique=True,
            sqlite_where=NOT_BLANK, postgresql_where=NOT_BLANK,
        )  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("call_recordings", schema=None) as batch_op:
        batch_op.drop_column("skill")
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.drop_index("uq_work_orders_call_id")
        batch_op.create_index("ix_work_orders_call_id", ["call_id"], unique=False)
        batch_op.drop_column("seat")
