"""Words per language, read from a TOML file of tables (``ivr/order_status.toml``,
``workorders/state_labels.toml``, ``ivr/revisit.toml``): each table holds one text per
language. Every gap is collected, so an administrator fixes the file in one
pass, then raised as one error."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class TextTables:
    def __init__(self, path: Path, languages: Iterable[str], error: type[ValueError]) -> None:
        self.path = path
        self.languages = tuple(languages)
        self.error = error
        self.problems: list[str] = []
        try:
            self.data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise error(f"{path}: {exc}") from exc

    def table(self, name: str) -> dict[str, str]:
        """``[name]`` (dotted for a nested table): its text in every language."""
        found: object = self.data
        for part in name.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        texts = found if isinstance(found, dict) else {}
        for lang in self.languages:
            if not isinstance(texts.get(lang), str) or not texts[lang].strip():
                self.problems.append(f"[{name}] has no text for {lang!r}")
        return {k: v for k, v in texts.items() if isinstance(v, str)}

    def named(self, group: str, names: Iterable[str], what: str) -> dict[str, dict[str, str]]:
        """``[group.<name>]`` for each of ``names``; a table for any other name is a problem."""
        names = tuple(names)
        raw = self.data.get(group, {})
        unknown = sorted(raw.keys() - set(names)) if isinstance(raw, dict) else []
        self.problems += [f"[{group}.{name}]: no such {what}" for name in unknown]
        return {name: self.table(f"{group}.{name}") for name in names}

    def check(self, *others: TextTables) -> None:
        """One error naming every gap of this file and of ``others`` read with it."""
        found = [f"{t.path}: " + "; ".join(t.problems) for t in (self, *others) if t.problems]
        if found:
            raise self.error("; ".join(found))
