"""Open311 privacy: a random public id per request and the citizen's consent to publication.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database adopted from before migrations (create_all of today's models) has them already.
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("work_orders")}
    if "public_id" in columns:
        return
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_id", sa.String(length=32), nullable=True))
        # Orders from before this revision never agreed to publication.
        batch_op.add_column(
            sa.Column("published", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(batch_op.f("ix_work_orders_public_id"), ["public_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_orders_public_id"))
        batch_op.drop_column("published")
        batch_op.drop_column("public_id")
