"""Knowledge base: knowledge_entries and its full-text search index (SQLite: the FTS5 table
knowledge_search over the segmented columns, kept in step by triggers; PostgreSQL: the
stored generated column knowledge_search_vector, their weighted to_tsvector('simple', ...),
with the GIN index knowledge_search_gin).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_INDEX = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS knowledge_search USING fts5("
    "search_title, search_body, content='knowledge_entries', content_rowid='id')",
    "CREATE TRIGGER IF NOT EXISTS knowledge_search_added AFTER INSERT ON knowledge_entries "
    "BEGIN INSERT INTO knowledge_search(rowid, search_title, search_body) "
    "VALUES (new.id, new.search_title, new.search_body); END",
    "CREATE TRIGGER IF NOT EXISTS knowledge_search_deleted AFTER DELETE ON knowledge_entries "
    "BEGIN INSERT INTO knowledge_search(knowledge_search, rowid, search_title, search_body) "
    "VALUES ('delete', old.id, old.search_title, old.search_body); END",
    "CREATE TRIGGER IF NOT EXISTS knowledge_search_changed AFTER UPDATE ON knowledge_entries "
    "BEGIN INSERT INTO knowledge_search(knowledge_search, rowid, search_title, search_body) "
    "VALUES ('delete', old.id, old.search_title, old.search_body); "
    "INSERT INTO knowledge_search(rowid, search_title, search_body) "
    "VALUES (new.id, new.search_title, new.search_body); END",
    # entries already there (a database adopted from create_all) are indexed too
    "INSERT INTO knowledge_search(knowledge_search) VALUES ('rebuild')",
)
POSTGRESQL_INDEX = (
    # stored: ranking reads it instead of cutting every matching entry's text again
    "ALTER TABLE knowledge_entries ADD COLUMN IF NOT EXISTS knowledge_search_vector tsvector "
    "GENERATED ALWAYS AS (setweight(to_tsvector('simple', search_title), 'A') || "
    "setweight(to_tsvector('simple', search_body), 'B')) STORED",
    "CREATE INDEX IF NOT EXISTS knowledge_search_gin ON knowledge_entries "
    "USING gin (knowledge_search_vector)",
)


def upgrade() -> None:
    bind = op.get_bind()
    # A database adopted from before migrations (create_all of today's models) has the table.
    if "knowledge_entries" not in sa.inspect(bind).get_table_names():
        op.create_table(
            "knowledge_entries",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("title", sa.String(length=128), nullable=False),
            sa.Column("category", sa.String(length=200), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("content", sa.Text(), nullable=False),
            sa.Column("issuing_unit", sa.String(length=128), nullable=False),
            sa.Column("valid_from", sa.Date(), nullable=True),
            sa.Column("valid_to", sa.Date(), nullable=True),
            sa.Column("keywords", sa.JSON(), nullable=False),
            sa.Column("search_title", sa.Text(), nullable=False),
            sa.Column("search_body", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_by", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("title"),
        )
        with op.batch_alter_table("knowledge_entries", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_knowledge_entries_category"), ["category"])
    for statement in SQLITE_INDEX if bind.dialect.name == "sqlite" else POSTGRESQL_INDEX:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("added", "deleted", "changed"):
            op.execute(f"DROP TRIGGER IF EXISTS knowledge_search_{trigger}")
        op.execute("DROP TABLE IF EXISTS knowledge_search")
    op.drop_table("knowledge_entries")
