"""Full-text search that works for Chinese. Chinese has no spaces between words, so jieba
cuts each entry into words (search mode: a long word and the shorter words inside it, so
"社保卡" is found by "社保" too); the words, space-separated, are what the database indexes:
SQLite's FTS5 table ``knowledge_search`` (ranked by BM25) or PostgreSQL's
stored ``to_tsvector('simple', ...)`` with its GIN index (ranked by ts_rank), the title weighing
more than the body. A query is cut the same way; stop words (请问, 怎么办, 的 ...) are dropped.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, column, func, literal_column, or_, select, table
from sqlalchemy.sql import Select

from knowledge.models import SEARCH_INDEX, KnowledgeEntryRow

with warnings.catch_warnings():
    # jieba 0.42.1's regexes hold invalid escapes, a warning when Python compiles it without
    # its cached bytecode, and it may import the deprecated pkg_resources: neither is ours
    warnings.simplefilter("ignore")
    import jieba

jieba.setLogLevel(logging.WARNING)  # it announces its dictionary at INFO on every start

MAX_TERMS = 32
TITLE_WEIGHT = 10.0  # SQLite's BM25 weight of the title against the body's 1.0
_WORD = re.compile(r"\w")
STOP_WORDS = frozenset(
    "的 了 是 我 你 他 她 在 和 与 及 或 就 都 也 还 吗 呢 啊 吧 呀 嘛 哦 请 请问 问 "
    "一下 怎么 怎么办 怎样 如何 什么 哪里 哪儿 哪个 为什么 能 能不能 可以 可不可以 要 想 "
    "需要 有 有没有 没有 这 那 这个 那个 个 您 你们 我们 他们 谢谢 您好 你好 喂".split()
)


class Match(StrEnum):
    ALL = "all"  # every word of the query (a search box)
    ANY = "any"  # any of them, the more the better (suggestions from an order's words)


def warm_up() -> None:
    """Load jieba's dictionary (about a second, blocking: run it in a thread at start)."""
    jieba.initialize()


def words(text: str) -> list[str]:
    """The words the index holds for ``text``: jieba's search mode, lower-cased,
    punctuation dropped."""
    return [w.lower() for w in jieba.cut_for_search(text) if _WORD.search(w) and w.strip()]


def index_text(*parts: str) -> str:
    return " ".join(w for part in parts for w in words(part))


def query_terms(query: str) -> list[str]:
    """The words to look for: jieba's precise cut of the query (every one of its words is in
    the index of a text that holds it), without stop words and repeats."""
    terms = (w.lower() for w in jieba.cut(query) if _WORD.search(w) and w.strip())
    kept = [t for t in dict.fromkeys(terms) if t not in STOP_WORDS]
    return kept[:MAX_TERMS]


def _fts_phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_query(terms: Sequence[str], match: Match) -> str:
    """An FTS5 query string: each term quoted (no operator a caller types gets through)."""
    joiner = " AND " if match is Match.ALL else " OR "
    return joiner.join(_fts_phrase(t) for t in terms)


def pg_document() -> ColumnElement[Any]:
    """The entry's words as PostgreSQL's tsvector, title words weighted A and body words B:
    the column migration 0007 generates and indexes."""
    return literal_column(f"{KnowledgeEntryRow.__tablename__}.{SEARCH_INDEX}_vector")


def _pg_query(terms: Sequence[str], match: Match) -> ColumnElement[Any]:
    parts = [func.plainto_tsquery(literal_column("'simple'"), t) for t in terms]
    query: ColumnElement[Any] = parts[0]
    for part in parts[1:]:
        query = query.op("&&" if match is Match.ALL else "||")(part)
    return query


def ranked(
    dialect: str, terms: Sequence[str], match: Match, filters: Iterable[ColumnElement[bool]]
) -> Select[Any]:
    """``SELECT id, score`` of the entries matching ``terms`` (best first; higher score is
    better) within ``filters``."""
    row = KnowledgeEntryRow
    if dialect == "postgresql":
        document, query = pg_document(), _pg_query(terms, match)
        score = func.ts_rank(document, query)
        return (
            select(row.id, score.label("score"))
            .where(document.op("@@")(query), *filters)
            .order_by(score.desc(), row.id)
        )
    fts = table(SEARCH_INDEX, column("rowid"))
    name: ColumnElement[Any] = literal_column(SEARCH_INDEX)
    bm25 = func.bm25(name, TITLE_WEIGHT, 1.0)  # lower is better
    return (
        select(row.id, (-bm25).label("score"))
        .select_from(row.__table__.join(fts, fts.c.rowid == row.id))
        .where(name.op("MATCH")(fts_query(terms, match)), *filters)
        .order_by(bm25, row.id)
    )


def in_category(category: str) -> ColumnElement[bool]:
    """The category and every category under it."""
    row = KnowledgeEntryRow
    return or_(row.category == category, row.category.startswith(category + "/", autoescape=True))
