"""The IVR menu tree's model: frozen dataclasses built by :mod:`ivr.menu` from the menu file."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# Global keys: they act on every menu node and cannot be bound to an option.
OPERATOR_KEY = "0"
REPEAT_KEY = "9"
BACK_KEY = "*"
RESERVED_KEYS = {OPERATOR_KEY: "the operator", REPEAT_KEY: "repeat", BACK_KEY: "back"}
OPTION_KEYS = frozenset("12345678")
DEFAULT_MAX_DEPTH = 2
DEFAULT_MAX_NO_INPUT = 2

_ROUTE = re.compile(r"^(queue|action):([A-Za-z0-9][A-Za-z0-9_.-]{0,63})$")


class MenuError(ValueError):
    """A menu file that cannot be used. ``line``/``reason`` describe the first problem;
    ``problems`` holds every one found as ``(line, reason)``."""

    def __init__(self, file: str, problems: list[tuple[int | None, str]]) -> None:
        self.file = file
        self.problems = tuple(problems)
        self.line, self.reason = self.problems[0]
        super().__init__("\n".join(_where(file, line) + reason for line, reason in problems))


def _where(file: str, line: int | None) -> str:
    return f"{file}:{line}: " if line is not None else f"{file}: "


@dataclass(frozen=True)
class Route:
    """Where a call goes when it leaves the menu: a queue or a named dialplan action."""

    kind: Literal["queue", "action"]
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def parse(cls, text: object) -> Route:
        match = _ROUTE.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"bad route {text!r}: expected 'queue:<name>' or 'action:<name>'")
        kind: Literal["queue", "action"] = "queue" if match[1] == "queue" else "action"
        return cls(kind, match[2])


@dataclass(frozen=True)
class Recording:
    """A studio recording that replaces a prompt's synthesised text in one language: an
    8 kHz mono 16-bit WAV, checked when the menu is loaded; ``digest`` names its copy."""

    path: Path
    digest: str


@dataclass(frozen=True)
class Prompt:
    """One playable prompt: a text in one language, with the stable id from the menu file,
    and the recording played instead of the synthesised text, if the menu names one."""

    id: str
    language: str
    text: str
    recording: Recording | None = None


@dataclass(frozen=True)
class PromptText:
    """A prompt's text in every declared language (and any recordings that replace it)."""

    id: str
    texts: Mapping[str, str]
    recordings: Mapping[str, Recording] = field(default_factory=dict)

    def prompt(self, language: str) -> Prompt:
        return Prompt(self.id, language, self.texts[language], self.recordings.get(language))


@dataclass(frozen=True)
class Option:
    """What one key does in one node: route the call, go to a node, and/or switch language."""

    key: str
    route: Route | None = None
    goto: str | None = None
    language: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Entry:
    """Digits collected in a number-entry node (e.g. a work-order number ended by #)."""

    route: Route
    max_digits: int = 20
    terminator: str | None = "#"


@dataclass(frozen=True)
class MenuNode:
    id: str
    prompt: PromptText
    options: tuple[Option, ...] = ()
    entry: Entry | None = None
    timeout_s: float | None = None  # None: the menu's timeout
    on_no_input: str | None = None  # node to go to on a timeout instead of repeating
    all_languages: bool = False  # play the prompt in every language (the language choice)
    depth: int | None = None  # levels below and including the main menu; None before it

    def option(self, key: str) -> Option | None:
        return next((o for o in self.options if o.key == key), None)


@dataclass(frozen=True)
class Menu:
    nodes: Mapping[str, MenuNode]
    prompts: Mapping[str, PromptText]
    voices: Mapping[str, str]
    start: str
    main: str
    intro: tuple[str, ...] = ()
    invalid_prompt: str = "invalid"
    transfer_prompt: str | None = None
    languages: tuple[str, ...] = ("zh", "en")
    default_language: str = "zh"
    timeout_s: float = 5.0
    max_tries: int = 3
    max_no_input: int = DEFAULT_MAX_NO_INPUT  # timeouts in a row, anywhere, before the operator
    max_depth: int = DEFAULT_MAX_DEPTH
    operator_route: Route = field(default_factory=lambda: Route("queue", "operator"))
    source: str = "<menu>"

    def texts(self) -> Iterator[PromptText]:
        """Every prompt text of the menu: the nodes' and the extra prompts'."""
        yield from (node.prompt for node in self.nodes.values())
        yield from self.prompts.values()

    def all_prompts(self) -> tuple[Prompt, ...]:
        """Every playable prompt, in every declared language."""
        return tuple(t.prompt(lang) for t in self.texts() for lang in self.languages)
