"""The knowledge base's table. Its search index is made by migration 0007 beside it, not
declared here: on SQLite the FTS5 table ``knowledge_search`` (external content over the
segmented columns, kept in step by triggers), on PostgreSQL the stored generated column
``knowledge_search_vector`` (their weighted ``to_tsvector('simple', ...)``) with the GIN
index ``knowledge_search_gin``. A later migration that
rebuilds ``knowledge_entries`` on SQLite (batch mode copies the table) must make the
triggers again."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UTCDateTime, utcnow

#: the search index's objects are named with this prefix (see :func:`is_search_index`)
SEARCH_INDEX = "knowledge_search"


def is_search_index(name: str | None) -> bool:
    """Whether a table, column, index or trigger belongs to the search index (kept out of the schema
    comparison of the models with the database: it is not declared on the models)."""
    return bool(name) and str(name).startswith(SEARCH_INDEX)


class KnowledgeEntryRow(Base):
    __tablename__ = "knowledge_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(128), unique=True)
    category: Mapped[str] = mapped_column(String(200), index=True)  # path: "社会保障/社保卡"
    kind: Mapped[str] = mapped_column(String(16), default="guide")  # knowledge.entries.Kind
    content: Mapped[str] = mapped_column(Text)
    issuing_unit: Mapped[str] = mapped_column(String(128), default="")
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    # jieba's words, space-separated: what the search index reads (knowledge.search)
    search_title: Mapped[str] = mapped_column(Text, default="")
    search_body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
