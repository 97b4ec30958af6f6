"""The work-order status a caller hears after 3 + number + #, in the caller's language.

The work-order domain answers with facts (:class:`OrderFacts`: the state, the order it was
merged into, the day it is due); the words for them, per language, are data: the sentence in
``ivr/order_status.toml``, the states' names in the work orders' ``state_labels.toml`` (the
ones the web pages show), both checked at start against the menu's languages and the states.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from ivr.text_tables import TextTables
from workorders.states import LABELS_FILE

DEFAULT_FILE = Path(__file__).with_name("order_status.toml")
_PARTS = ("sentence", "merged", "due", "date")


class OrderFacts(Protocol):
    """What the work-order domain tells about one order, for the caller."""

    @property
    def state(self) -> str: ...

    @property
    def merged_into(self) -> str | None: ...

    @property
    def due(self) -> date | None:
        """The local day of the time limit, while a department still owes an answer."""
        ...


FactsLookup = Callable[[str], Awaitable[OrderFacts | None]]


class StatusTextError(ValueError):
    """The status texts file cannot be used (a missing language, state or placeholder)."""


@dataclass(frozen=True)
class StatusTexts:
    parts: Mapping[str, Mapping[str, str]]  # part -> language -> template
    states: Mapping[str, Mapping[str, str]]  # state -> language -> name
    month_names: Mapping[str, tuple[str, ...]]

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        languages: Iterable[str],
        states: Iterable[str],
        labels: Path = LABELS_FILE,
    ) -> StatusTexts:
        """Read and check the files (the sentence's ``path``, the states' names in ``labels``):
        every part and state in every language, or one error naming each gap."""
        states = tuple(states)
        file = TextTables(path, languages, StatusTextError)
        parts = {part: file.table(part) for part in _PARTS}
        label_file = TextTables(labels, languages, StatusTextError)
        names = label_file.named("states", states, "work-order state")
        months = {
            lang: tuple(str(m) for m in value)
            for lang, value in file.data.get("month_names", {}).items()
            if isinstance(value, list)
        }
        file.problems += [
            f"[month_names] {x}: not twelve" for x, m in months.items() if len(m) != 12
        ]
        texts = cls(parts, names, months)
        if not file.problems and not label_file.problems:
            try:  # every template filled once, so a misspelt placeholder fails at start
                for lang in file.languages:
                    texts.speak(_Example(states[0], "1", date(2026, 1, 31)), lang)
            except (KeyError, IndexError) as exc:
                file.problems.append(f"unknown placeholder {exc}")
        file.check(label_file)
        return texts

    def speak(self, facts: OrderFacts, language: str) -> str:
        """The sentence the caller hears."""
        merged = ""
        if facts.merged_into:
            number = " ".join(facts.merged_into)  # read digit by digit
            merged = self.parts["merged"][language].format(number=number)
        due = ""
        if facts.due is not None:
            day = facts.due
            names = self.month_names.get(language)
            when = self.parts["date"][language].format(
                year=day.year,
                month=day.month,
                day=day.day,
                month_name=names[day.month - 1] if names else day.month,
            )
            due = self.parts["due"][language].format(date=when)
        state = self.states[facts.state][language]
        return self.parts["sentence"][language].format(state=state, merged=merged, due=due)


@dataclass(frozen=True)
class _Example:
    state: str
    merged_into: str | None
    due: date | None


class OrderStatusReader:
    """The IVR's status lookup: the order's facts, spoken in the caller's language."""

    def __init__(self, lookup: FactsLookup, texts: StatusTexts) -> None:
        self._lookup = lookup
        self._texts = texts

    async def __call__(self, number: str, language: str) -> str | None:
        facts = await self._lookup(number)
        return None if facts is None else self._texts.speak(facts, language)
