"""The revisit call's words per language, from ``ivr/revisit.toml`` (data, like the IVR's
menu), checked at start against the menu's languages and the order categories; the prompts
are synthesised by :class:`ivr.prompts.PromptLibrary` like the IVR's."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.tree import Prompt
from revisit.rules import cut, digits

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "ivr" / "revisit.toml"
FIXED = ("resolved", "satisfaction", "thanks", "no_answer")
_PARTS = ("summary", *FIXED)


class RevisitTextError(ValueError):
    """The revisit texts file cannot be used (a missing language, category or placeholder)."""


@dataclass(frozen=True)
class RevisitTexts:
    parts: Mapping[str, Mapping[str, str]]  # part -> language -> text
    categories: Mapping[str, Mapping[str, str]]  # category -> language -> name
    languages: tuple[str, ...]

    @classmethod
    def load(
        cls, path: Path, *, languages: Iterable[str], categories: Iterable[str]
    ) -> RevisitTexts:
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise RevisitTextError(f"{path}: {exc}") from exc
        languages = tuple(languages)
        problems: list[str] = []

        def table(raw: object, name: str) -> dict[str, str]:
            found = raw if isinstance(raw, dict) else {}
            for lang in languages:
                if not isinstance(found.get(lang), str) or not found[lang].strip():
                    problems.append(f"[{name}] has no text for {lang!r}")
            return {k: v for k, v in found.items() if isinstance(v, str)}

        parts = {part: table(data.get(part), part) for part in _PARTS}
        raw_categories = data.get("categories", {})
        names = {c: table(raw_categories.get(c), f"categories.{c}") for c in categories}
        texts = cls(parts, names, languages)
        if not problems:
            try:
                for lang in languages:
                    texts.summary(lang, "1", next(iter(names)), "x")
            except (KeyError, IndexError, StopIteration) as exc:
                problems.append(f"unknown placeholder {exc}")
        if problems:
            raise RevisitTextError(f"{path}: " + "; ".join(problems))
        return texts

    def language(self, wanted: str | None) -> str:
        """The original call's language if the texts have it, else the first one."""
        return wanted if wanted in self.languages else self.languages[0]

    def summary_text(
        self, language: str, number: str, category: str, reply: str, limit: int = 80
    ) -> str:
        name = self.categories.get(category, {}).get(language, category)
        return self.parts["summary"][language].format(
            number=digits(number), category=name, reply=cut(reply, limit) or "-"
        )

    def summary(
        self, language: str, number: str, category: str, reply: str, limit: int = 80
    ) -> Prompt:
        text = self.summary_text(language, number, category, reply, limit)
        # one file per text: the id names the order, the library's hash the words
        tag = hashlib.sha256(text.encode()).hexdigest()[:8]
        return Prompt(f"revisit-{number}-{tag}", language, text)

    def fixed(self, part: str, language: str) -> Prompt:
        return Prompt(f"revisit-{part.replace('_', '-')}", language, self.parts[part][language])

    def all_fixed(self) -> list[Prompt]:
        return [self.fixed(part, lang) for part in FIXED for lang in self.languages]
