"""A knowledge-base entry, the rules its fields follow (one validation for the API, the
import and the command line), and the knowledge base's errors with their stable codes
(mapped to HTTP in web/errors.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from domain.errors import DomainError

MAX_TITLE = 128  # characters, as the national guidance sets it
MAX_CATEGORY = 200
MAX_CONTENT = 20_000
MAX_UNIT = 128
MAX_KEYWORD = 32
MAX_KEYWORDS = 20
FIELDS = ("title", "category", "kind", "content", "issuing_unit", "valid_from", "valid_to",
          "keywords")  # fmt: skip
#: how keywords are separated when given as one text (CSV, the page's form)
KEYWORD_SEPARATORS = re.compile(r"[;,，；、]")


class Kind(StrEnum):
    GUIDE = "guide"  # 办事指南, a service guide
    LAW = "law"  # 法律法规, laws and regulations
    QA = "qa"  # 热点问答, hot questions and answers


class KnowledgeError(DomainError):
    """Base of the knowledge base's errors."""


class InvalidEntry(KnowledgeError):
    pass


class UnknownEntry(KnowledgeError):
    code = "not_found"
    status = 404


class DuplicateTitle(KnowledgeError):
    code = "duplicate_title"
    status = 409


@dataclass(frozen=True)
class Entry:
    id: int
    title: str
    category: str
    kind: Kind
    content: str
    issuing_unit: str
    valid_from: date | None
    valid_to: date | None
    keywords: tuple[str, ...]
    updated_at: datetime | None = None
    updated_by: str = ""

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    def fields(self) -> dict[str, Any]:
        """The entry's own fields as JSON (what export writes and import reads)."""
        return {
            "title": self.title,
            "category": self.category,
            "kind": self.kind.value,
            "content": self.content,
            "issuing_unit": self.issuing_unit,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "keywords": list(self.keywords),
        }

    def as_dict(self, today: date) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.fields(),
            "valid": self.valid_on(today),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
        }


def _text(
    value: Any, name: str, max_length: int, *, required: bool, multiline: bool = False
) -> str:
    # imported here: web.errors maps this module's errors, and web.params imports web.errors
    from web.params import has_control

    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidEntry(f"{name} must be a string")
    value = value.strip()
    if required and not value:
        raise InvalidEntry(f"{name} is required")
    if len(value) > max_length:
        raise InvalidEntry(f"{name} is longer than {max_length} characters ({len(value)})")
    if has_control(value, multiline=multiline):
        raise InvalidEntry(f"{name} holds control characters")
    return value


def _category(value: Any) -> str:
    path = _text(value, "category", MAX_CATEGORY, required=True)
    parts = [part.strip() for part in path.split("/")]
    if any(not part for part in parts):
        raise InvalidEntry(f"category is a path of names separated by '/', not {path!r}")
    return "/".join(parts)


def _date(value: Any, name: str) -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidEntry(f"{name} must be a date as YYYY-MM-DD, or null")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidEntry(f"{name} must be a date as YYYY-MM-DD, not {value!r}") from None


def _keywords(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = KEYWORD_SEPARATORS.split(value)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidEntry("keywords must be a list of strings")
    words = [_text(v, "a keyword", MAX_KEYWORD, required=False) for v in value]
    words = list(dict.fromkeys(w for w in words if w))
    if len(words) > MAX_KEYWORDS:
        raise InvalidEntry(f"at most {MAX_KEYWORDS} keywords")
    return tuple(words)


def _kind(value: Any) -> Kind:
    if value is None or value == "":
        return Kind.GUIDE
    try:
        return Kind(value)
    except ValueError:
        raise InvalidEntry(f"kind must be one of {', '.join(Kind)}, not {value!r}") from None


_READERS = {
    "title": lambda v: _text(v, "title", MAX_TITLE, required=True),
    "category": _category,
    "kind": _kind,
    "content": lambda v: _text(v, "content", MAX_CONTENT, required=True, multiline=True),
    "issuing_unit": lambda v: _text(v, "issuing_unit", MAX_UNIT, required=False),
    "valid_from": lambda v: _date(v, "valid_from"),
    "valid_to": lambda v: _date(v, "valid_to"),
    "keywords": _keywords,
}


def read_fields(body: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """The entry fields in ``body``, checked and normalised; all of them unless ``partial``
    (a change: only those given). Unknown fields are refused, so a typo is not lost."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidEntry(f"unknown field(s): {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    names = [n for n in FIELDS if n in body] if partial else list(FIELDS)
    if partial and not names:
        raise InvalidEntry("nothing to change")
    fields: dict[str, Any] = {name: _READERS[name](body.get(name)) for name in names}
    check_dates(fields.get("valid_from"), fields.get("valid_to"))
    return fields


def check_dates(valid_from: date | None, valid_to: date | None) -> None:
    if valid_from and valid_to and valid_to < valid_from:
        raise InvalidEntry(f"valid_to {valid_to} is before valid_from {valid_from}")
