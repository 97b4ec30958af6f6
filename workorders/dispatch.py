"""Drafting and dispatch as data: keywords → category and topic, place names → district.

Dispatch follows "territory first, then the department in charge" (属地优先, 行业主管): a
territorial topic whose place resolves to a district goes to the district's office with the
department in charge assisting; any other topic goes to its department in charge; a place
alone goes to its district. The rules live in ``rules.toml`` so dispatchers can edit them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
CATEGORIES = ("consultation", "help", "complaint", "report", "suggestion", "praise")

# A street address: a run of characters ending in a road/estate word, with its house number.
_ADDRESS = re.compile(
    r"[\u4e00-\u9fff0-9]{1,14}?(?:大道|路|街|巷|小区|社区|村)(?:[0-9一二三四五六七八九十百]+号)?"
)
# Characters that end the words leading up to an address ("我家住在…", "就在…").
_ADDRESS_LEAD = re.compile(r".*[在住于到是的我家里从那这个说]")
_CLAUSE_END = re.compile(r"[。！？!?；;，,\n]")


@dataclass(frozen=True)
class Topic:
    name: str
    keywords: tuple[str, ...]
    department: str
    territorial: bool


@dataclass(frozen=True)
class District:
    name: str
    places: tuple[str, ...]
    office: str


@dataclass(frozen=True)
class QueueKind:
    """What the queue a citizen chose in the voice menu says about the call's work order."""

    queue: str  # the menu's "queue:<name>" route, i.e. the ACD skill
    categories: tuple[str, ...]  # the first is the order's category unless the words pick another
    desk: str = ""  # a special desk (e.g. 营商环境), shown in the subject


@dataclass(frozen=True)
class Suggestion:
    """What the rules make of a text: the draft an operator corrects before dispatching."""

    category: str
    subject: str
    location: str
    district: str | None
    lead_department: str | None
    assisting_departments: tuple[str, ...]
    urgent: bool
    matched: tuple[str, ...]  # the keywords and places that decided it, for the operator


def _hits(text: str, keywords: Sequence[str]) -> list[str]:
    return [word for word in keywords if word and word in text]


@dataclass(frozen=True)
class DispatchRules:
    categories: tuple[tuple[str, tuple[str, ...]], ...]
    topics: tuple[Topic, ...]
    districts: tuple[District, ...]
    urgent_keywords: tuple[str, ...] = ()
    default_category: str = "consultation"
    queues: tuple[QueueKind, ...] = ()

    def queue_kind(self, queue: str) -> QueueKind | None:
        return next((kind for kind in self.queues if kind.queue == queue), None)

    def category_of(self, text: str, allowed: Sequence[str] = ()) -> tuple[str, list[str]]:
        """The category with the most keyword hits; among ``allowed`` only (first: default)."""
        best, best_hits = (allowed[0] if allowed else self.default_category), list[str]()
        for name, keywords in self.categories:
            if allowed and name not in allowed:
                continue
            hits = _hits(text, keywords)
            if len(hits) > len(best_hits):
                best, best_hits = name, hits
        return best, best_hits

    def topic_of(self, text: str) -> tuple[Topic | None, list[str]]:
        best: Topic | None = None
        best_hits: list[str] = []
        for topic in self.topics:
            hits = _hits(text, topic.keywords)
            if len(hits) > len(best_hits):
                best, best_hits = topic, hits
        return best, best_hits

    def district_of(self, text: str) -> tuple[District | None, str]:
        """The district of the longest place name mentioned (longest wins: 大雁塔 over 雁塔)."""
        found: tuple[District | None, str] = (None, "")
        for district in self.districts:
            for place in (district.name, *district.places):
                if place in text and len(place) > len(found[1]):
                    found = (district, place)
        return found

    def suggest(self, text: str, queue: str = "") -> Suggestion:
        """The draft of ``text``; ``queue``, the queue the caller chose, sets its kind."""
        kind = self.queue_kind(queue) if queue else None
        category, category_hits = self.category_of(text, kind.categories if kind else ())
        topic, topic_hits = self.topic_of(text)
        district, place = self.district_of(text)
        lead: str | None = None
        assisting: tuple[str, ...] = ()
        if topic is not None and topic.territorial and district is not None:
            lead, assisting = district.office, (topic.department,)
        elif topic is not None:
            lead = topic.department
        elif district is not None:
            lead = district.office
        return Suggestion(
            category=category,
            subject=_with_desk(kind, topic.name if topic else _first_clause(text)),
            location=extract_address(text, self.place_names) or place,
            district=district.name if district else None,
            lead_department=lead,
            assisting_departments=assisting,
            urgent=bool(_hits(text, self.urgent_keywords)),
            matched=tuple(
                dict.fromkeys([*category_hits, *topic_hits, *([place] if place else [])])
            ),
        )

    @property
    def departments(self) -> frozenset[str]:
        """Every department the catalogue dispatches to: those in charge of a topic and the
        districts' offices (a department account is bound to one of them)."""
        return frozenset({t.department for t in self.topics} | {d.office for d in self.districts})

    @property
    def place_names(self) -> tuple[str, ...]:
        return tuple(p for d in self.districts for p in (d.name, *d.places))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DispatchRules:
        categories = tuple(
            (str(c["name"]), tuple(str(k) for k in c.get("keywords", [])))
            for c in data.get("category", [])
        )
        unknown = [name for name, _ in categories if name not in CATEGORIES]
        if unknown:
            raise ValueError(f"unknown categories in dispatch rules: {unknown}")
        return cls(
            categories=categories,
            topics=tuple(
                Topic(
                    name=str(t["name"]),
                    keywords=tuple(str(k) for k in t.get("keywords", [])),
                    department=str(t["department"]),
                    territorial=bool(t.get("territorial", False)),
                )
                for t in data.get("topic", [])
            ),
            districts=tuple(
                District(
                    name=str(d["name"]),
                    places=tuple(str(p) for p in d.get("places", [])),
                    office=str(d.get("office", f"{d['name']}人民政府")),
                )
                for d in data.get("district", [])
            ),
            urgent_keywords=tuple(str(k) for k in data.get("urgent_keywords", [])),
            default_category=str(data.get("default_category", "consultation")),
            queues=tuple(_queue_kind(name, q) for name, q in data.get("queue", {}).items()),
        )

    @classmethod
    def load(cls, path: Path = PACKAGE_DIR / "rules.toml") -> DispatchRules:
        return cls.from_mapping(tomllib.loads(path.read_text(encoding="utf-8")))


def _queue_kind(name: str, data: Mapping[str, Any]) -> QueueKind:
    categories = tuple(str(c) for c in data.get("categories", []))
    if not categories or any(c not in CATEGORIES for c in categories):
        raise ValueError(f"queue {name}: categories must be a list of {', '.join(CATEGORIES)}")
    return QueueKind(queue=name, categories=categories, desk=str(data.get("desk", "")))


def _with_desk(kind: QueueKind | None, subject: str) -> str:
    return f"[{kind.desk}] {subject}".strip() if kind is not None and kind.desk else subject


def extract_address(text: str, places: Sequence[str] = ()) -> str:
    """The first street address in ``text`` ("长安南路88号"), without the words leading to it.

    A known place name inside the match marks where the address starts ("举报东大街" → "东大街").
    """
    match = _ADDRESS.search(text)
    if match is None:
        return ""
    found = match.group(0)
    starts = [found.find(place) for place in places if place in found]
    if starts:
        return found[min(starts) :]
    return _ADDRESS_LEAD.sub("", found) or found


def _first_clause(text: str, limit: int = 30) -> str:
    clause = _CLAUSE_END.split(text.strip(), maxsplit=1)[0].strip()
    return clause[:limit]
