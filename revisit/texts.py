"""The revisit call's words per language, from ``ivr/revisit.toml`` (data, like the IVR's
menu), checked at start against the menu's languages and the order categories; the prompts
are synthesised by :class:`ivr.prompts.PromptLibrary` like the IVR's."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ivr.text_tables import TextTables
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
        """Read and check the file: every part and category in every language, or one error
        naming each gap (:class:`ivr.text_tables.TextTables`, as the IVR's status texts)."""
        file = TextTables(path, languages, RevisitTextError)
        parts = {part: file.table(part) for part in _PARTS}
        names = file.named("categories", categories, "order category")
        texts = cls(parts, names, file.languages)
        if not file.problems:
            try:  # every template filled once, so a misspelt placeholder fails at start
                for lang in file.languages:
                    texts.summary(lang, "1", next(iter(names)), "x")
            except (KeyError, IndexError, StopIteration) as exc:
                file.problems.append(f"unknown placeholder {exc}")
        file.check()
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
