"""The knowledge base's rules over SQL: entries with unique titles, edited by name of who
edits, searched (valid entries only unless asked), suggested from an order's words,
imported (all or nothing, matched by title) and exported."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.base import utcnow
from knowledge.entries import (
    DuplicateTitle,
    Entry,
    InvalidEntry,
    Kind,
    UnknownEntry,
    check_dates,
    read_fields,
)
from knowledge.models import KnowledgeEntryRow
from knowledge.search import Match, in_category, index_text, query_terms, ranked

log = logging.getLogger(__name__)

MAX_RESULTS = 100


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float  # higher is better; comparable within one search only


@dataclass(frozen=True)
class SearchResult:
    terms: tuple[str, ...]  # the words looked for
    match: Match  # all of them, or (when no entry had all) any
    hits: tuple[Hit, ...]


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int


def entry_of(row: KnowledgeEntryRow) -> Entry:
    return Entry(
        id=row.id, title=row.title, category=row.category, kind=Kind(row.kind),
        content=row.content, issuing_unit=row.issuing_unit, valid_from=row.valid_from,
        valid_to=row.valid_to, keywords=tuple(row.keywords or ()), updated_at=row.updated_at,
        updated_by=row.updated_by,
    )  # fmt: skip


def _index(row: KnowledgeEntryRow) -> None:
    """The words the search index reads: the title and keywords weigh as the title."""
    row.search_title = index_text(row.title, " ".join(row.keywords or ()))
    row.search_body = index_text(row.content, row.category.replace("/", " "), row.issuing_unit)


def _valid_on(day: date) -> list[ColumnElement[bool]]:
    row = KnowledgeEntryRow
    return [
        or_(row.valid_from.is_(None), row.valid_from <= day),
        or_(row.valid_to.is_(None), row.valid_to >= day),
    ]


class KnowledgeService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], today: Callable[[], date]
    ) -> None:
        self.sessions = sessions
        self.today = today  # the centre's local day (entries are valid from/to a day)

    # -- reading ------------------------------------------------------------------------------

    async def get(self, entry_id: int) -> Entry:
        async with self.sessions() as session:
            return entry_of(await self._row(session, entry_id))

    async def listing(
        self, *, category: str = "", include_invalid: bool = False, limit: int = MAX_RESULTS
    ) -> list[Entry]:
        row = KnowledgeEntryRow
        query = select(row).order_by(row.category, row.title).limit(limit)
        query = query.where(*self._filters(category, include_invalid))
        async with self.sessions() as session:
            return [entry_of(r) for r in (await session.scalars(query)).all()]

    async def search(
        self,
        text: str,
        *,
        category: str = "",
        include_invalid: bool = False,
        limit: int = 20,
        match: Match = Match.ALL,
    ) -> SearchResult:
        """Entries with the words of ``text``, best first. With ``Match.ALL``, when no entry
        has every word, those with any of them (ranked: the more and rarer, the better)."""
        terms = query_terms(text)
        if not terms:
            return SearchResult((), match, ())
        filters = self._filters(category, include_invalid)
        async with self.sessions() as session:
            dialect = session.get_bind().dialect.name
            found = (
                await session.execute(ranked(dialect, terms, match, filters).limit(limit))
            ).all()
            if not found and match is Match.ALL and len(terms) > 1:
                match = Match.ANY
                query = ranked(dialect, terms, match, filters).limit(limit)
                found = (await session.execute(query)).all()
            rows = {}
            if found:
                ids = [entry_id for entry_id, _score in found]
                rows = {r.id: r for r in await session.scalars(select(KnowledgeEntryRow).where(
                    KnowledgeEntryRow.id.in_(ids)))}  # fmt: skip
        hits = tuple(Hit(entry_of(rows[i]), float(score)) for i, score in found if i in rows)
        return SearchResult(tuple(terms), match, hits)

    async def export(self) -> list[Entry]:
        async with self.sessions() as session:
            query = select(KnowledgeEntryRow).order_by(KnowledgeEntryRow.id)
            return [entry_of(r) for r in (await session.scalars(query)).all()]

    def _filters(self, category: str, include_invalid: bool) -> list[ColumnElement[bool]]:
        filters = [] if include_invalid else _valid_on(self.today())
        if category:
            filters.append(in_category(category.strip().strip("/")))
        return filters

    # -- editing ------------------------------------------------------------------------------

    async def create(self, body: Mapping[str, Any], actor: str) -> Entry:
        fields = read_fields(body)
        async with self.sessions() as session:
            await self._title_free(session, fields["title"])
            row = KnowledgeEntryRow(**fields, updated_by=actor, updated_at=utcnow())
            _index(row)
            session.add(row)
            await self._commit(session, fields["title"])
            log.info("knowledge entry %d %r added by %s", row.id, row.title, actor)
            return entry_of(row)

    async def update(self, entry_id: int, body: Mapping[str, Any], actor: str) -> Entry:
        changes = read_fields(body, partial=True)
        async with self.sessions() as session:
            row = await self._row(session, entry_id)
            if "title" in changes and changes["title"] != row.title:
                await self._title_free(session, changes["title"])
            check_dates(changes.get("valid_from", row.valid_from),
                        changes.get("valid_to", row.valid_to))  # fmt: skip
            for name, value in changes.items():
                setattr(row, name, value)
            row.updated_by, row.updated_at = actor, utcnow()
            _index(row)
            await self._commit(session, row.title)
            log.info("knowledge entry %d changed by %s: %s", entry_id, actor, ", ".join(changes))
            return entry_of(row)

    async def delete(self, entry_id: int, actor: str) -> None:
        async with self.sessions() as session:
            row = await self._row(session, entry_id)
            await session.delete(row)
            await session.commit()
        log.info("knowledge entry %d %r deleted by %s", entry_id, row.title, actor)

    async def import_entries(
        self, records: Iterable[Mapping[str, Any]], actor: str
    ) -> ImportReport:
        """Every record checked before any is stored (all or nothing): an entry whose title
        exists is updated, the others added."""
        checked: dict[str, dict[str, Any]] = {}
        for number, record in enumerate(records, 1):
            try:
                fields = read_fields(record)
            except InvalidEntry as exc:
                raise InvalidEntry(f"entry {number}: {exc.message}") from None
            if fields["title"] in checked:
                raise InvalidEntry(f"entry {number}: title {fields['title']!r} given twice")
            checked[fields["title"]] = fields
        created = updated = 0
        now = utcnow()
        async with self.sessions() as session:
            query = select(KnowledgeEntryRow).where(KnowledgeEntryRow.title.in_(list(checked)))
            existing = {r.title: r for r in await session.scalars(query)} if checked else {}
            for title, fields in checked.items():
                row = existing.get(title)
                if row is None:
                    row = KnowledgeEntryRow(**fields)
                    session.add(row)
                    created += 1
                else:
                    for name, value in fields.items():
                        setattr(row, name, value)
                    updated += 1
                row.updated_by, row.updated_at = actor, now
                _index(row)
            await self._commit(session, "")
        log.info("knowledge import by %s: %d added, %d updated", actor, created, updated)
        return ImportReport(created, updated)

    async def count(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count(KnowledgeEntryRow.id))) or 0)

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    async def _row(session: AsyncSession, entry_id: int) -> KnowledgeEntryRow:
        row = await session.get(KnowledgeEntryRow, entry_id)
        if row is None:
            raise UnknownEntry(f"no knowledge entry {entry_id}")
        return row

    @staticmethod
    async def _title_free(session: AsyncSession, title: str) -> None:
        query = select(KnowledgeEntryRow.id).where(KnowledgeEntryRow.title == title)
        if (await session.scalar(query)) is not None:
            raise DuplicateTitle(f"an entry titled {title!r} exists already")

    @staticmethod
    async def _commit(session: AsyncSession, title: str) -> None:
        try:
            await session.commit()
        except IntegrityError:  # another editor took the title in between
            await session.rollback()
            raise DuplicateTitle(f"an entry titled {title!r} exists already") from None
