"""The IVR menu tree as data: load ``menu.toml``, validate it, return frozen dataclasses.

Every problem found is reported at once, each with the file, the line where it can be
located, and the reason, so an administrator fixes the file in one pass. The TOML shape is
documented at the top of ``ivr/menu.toml``.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

from ivr.recorded import load_recording
from ivr.toml_lines import LineIndex
from ivr.tree import (
    BACK_KEY,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_NO_INPUT,
    OPERATOR_KEY,
    OPTION_KEYS,
    REPEAT_KEY,
    RESERVED_KEYS,
    Entry,
    Menu,
    MenuError,
    MenuNode,
    Option,
    Prompt,
    PromptText,
    Recording,
    Route,
)

__all__ = [
    "BACK_KEY",
    "OPERATOR_KEY",
    "REPEAT_KEY",
    "Entry",
    "Menu",
    "MenuError",
    "MenuNode",
    "Option",
    "Prompt",
    "PromptText",
    "Recording",
    "Route",
    "load_menu",
    "parse_menu",
]

log = logging.getLogger(__name__)

_ID = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")

_MENU_FIELDS = {"start", "main", "intro", "invalid_prompt", "transfer_prompt", "languages"}
_MENU_FIELDS |= {"default_language", "timeout_s", "max_tries", "max_depth", "operator_route"}
_MENU_FIELDS |= {"max_no_input"}
_FILE_SUFFIX = "_file"  # zh_file = "prompts/zh/welcome.wav": a recording replaces the text
_NODE_FIELDS = {"options", "timeout_s", "on_no_input", "all_languages", "route", "max_digits"}
_NODE_FIELDS |= {"terminator"}
_OPTION_FIELDS = {"key", "route", "goto", "language"}


def load_menu(path: Path, *, max_depth: int | None = None) -> Menu:
    """Read and validate a menu file; ``max_depth`` overrides the file's ``[menu] max_depth``.
    Recordings (``zh_file = ...``) are found relative to the menu file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MenuError(str(path), [(None, f"cannot read the menu file: {exc}")]) from exc
    return parse_menu(text, str(path), max_depth=max_depth, base_dir=path.parent)


def parse_menu(
    text: str,
    source: str = "<menu>",
    *,
    max_depth: int | None = None,
    base_dir: Path | None = None,
) -> Menu:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found[1]) if found else None
        raise MenuError(source, [(line, f"not valid TOML: {exc}")]) from exc
    return _Builder(data, source, LineIndex(text), max_depth, base_dir or Path.cwd()).build()


class _Builder:
    """Collects every problem while building, then raises one MenuError."""

    def __init__(
        self, data: dict[str, Any], source: str, lines: LineIndex, depth: int | None, base: Path
    ):
        self.data = data
        self.source = source
        self.lines = lines
        self.max_depth_override = depth
        self.base = base
        self.problems: list[tuple[int | None, str]] = []

    def problem(self, line: int | None, reason: str) -> None:
        self.problems.append((line, reason))

    def build(self) -> Menu:
        for name in sorted(set(self.data) - {"menu", "voices", "prompts", "nodes"}):
            self.problem(self.lines.find(name), f"unknown table [{name}]")
        settings = self._table(self.data.get("menu", {}), "menu")
        languages = self._languages(settings)
        voices = self._voices(languages)
        prompts = {
            pid: self._prompt_text(raw, f"prompts.{pid}", pid, languages, set())
            for pid, raw in self._table(self.data.get("prompts", {}), "prompts").items()
        }
        raw_nodes = self._table(self.data.get("nodes", {}), "nodes")
        if not raw_nodes:
            self.problem(None, "no [nodes.<id>] defined")
        nodes = {nid: self._node(nid, raw, languages) for nid, raw in raw_nodes.items()}
        menu = self._menu(settings, languages, voices, prompts, nodes)
        if self.problems:
            raise MenuError(self.source, self.problems)
        assert menu is not None
        return menu

    # -- pieces -------------------------------------------------------------------------

    def _table(self, raw: object, path: str) -> dict[str, Any]:
        if isinstance(raw, dict):
            return raw
        self.problem(self.lines.find(path), f"{path} must be a table")
        return {}

    def _languages(self, settings: dict[str, Any]) -> tuple[str, ...]:
        raw = settings.get("languages", ["zh", "en"])
        line = self.lines.find("menu", key="languages")
        if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
            self.problem(line, "languages must be a non-empty list of language codes")
            return ("zh",)
        for lang in raw:
            if not _LANGUAGE.match(lang):
                self.problem(line, f"language {lang!r} is not a code like 'zh' or 'en'")
        if len(set(raw)) != len(raw):
            self.problem(line, "a language is listed twice")
        return tuple(dict.fromkeys(raw))

    def _voices(self, languages: tuple[str, ...]) -> dict[str, str]:
        raw = self._table(self.data.get("voices", {}), "voices")
        voices: dict[str, str] = {}
        for lang in languages:
            if not isinstance(raw.get(lang), str) or not raw[lang]:
                self.problem(self.lines.find("voices"), f"no TTS voice for language {lang!r}")
            else:
                voices[lang] = raw[lang]
        for lang in raw.keys() - set(languages):
            self.problem(self.lines.find("voices", key=lang), f"voice for undeclared {lang!r}")
        return voices

    def _prompt_text(
        self, raw: object, path: str, pid: str, languages: tuple[str, ...], fields: set[str]
    ) -> PromptText:
        table = self._table(raw, path)
        if not _ID.match(pid):
            self.problem(self.lines.find(path), f"id {pid!r}: use a-z, 0-9, '-' or '_'")
        texts: dict[str, str] = {}
        for lang in languages:
            value = table.get(lang)
            if not isinstance(value, str) or not value.strip():
                self.problem(self.lines.find(path), f"{path}: missing prompt text for {lang!r}")
            else:
                texts[lang] = value.strip()
        recordings = self._recordings(table, path, languages)
        files = {f"{lang}{_FILE_SUFFIX}" for lang in languages}
        for name in sorted(table.keys() - set(languages) - fields - files):
            self.problem(
                self.lines.find(path, key=name),
                f"{path}: unknown field {name!r} (neither a setting nor a declared language)",
            )
        return PromptText(pid, texts, recordings)

    def _recordings(
        self, table: dict[str, Any], path: str, languages: tuple[str, ...]
    ) -> dict[str, Recording]:
        found: dict[str, Recording] = {}
        for lang in languages:
            name = f"{lang}{_FILE_SUFFIX}"
            if name not in table:
                continue
            value = table[name]
            if not isinstance(value, str) or not value.strip():
                self.problem(self.lines.find(path, key=name), f"{path}: {name} must be a path")
                continue
            try:
                found[lang] = load_recording(self.base / value.strip())
            except ValueError as exc:
                self.problem(self.lines.find(path, key=name), f"{path}: {name}: {exc}")
        return found

    def _node(self, nid: str, raw: object, languages: tuple[str, ...]) -> MenuNode:
        path = f"nodes.{nid}"
        table = self._table(raw, path)
        prompt = self._prompt_text(table, path, nid, languages, _NODE_FIELDS)
        timeout = table.get("timeout_s")
        if timeout is not None and not _positive(timeout):
            self.problem(self.lines.find(path, key="timeout_s"), f"{path}: bad timeout_s")
            timeout = None
        if not isinstance(table.get("all_languages", False), bool):
            self.problem(self.lines.find(path, key="all_languages"), f"{path}: true or false")
        entry = None
        if "route" in table:
            entry = self._entry(table, path)
        options = self._options(table.get("options", []), path, languages)
        if entry is not None and options:
            self.problem(self.lines.find(path, key="route"), f"{path}: both route and options")
        if entry is None and not options:
            self.problem(self.lines.find(path), f"{path}: no options and no route")
        return MenuNode(
            id=nid,
            prompt=prompt,
            options=options,
            entry=entry,
            timeout_s=float(timeout) if timeout is not None else None,
            on_no_input=table.get("on_no_input"),
            all_languages=table.get("all_languages") is True,
        )

    def _entry(self, table: dict[str, Any], path: str) -> Entry | None:
        route = self._route(table["route"], self.lines.find(path, key="route"), path)
        max_digits = table.get("max_digits", 20)
        if not isinstance(max_digits, int) or not 1 <= max_digits <= 64:
            self.problem(self.lines.find(path, key="max_digits"), f"{path}: max_digits 1-64")
            max_digits = 20
        terminator = table.get("terminator", "#")
        if terminator not in ("#", "*", ""):
            line = self.lines.find(path, key="terminator")
            self.problem(line, f"{path}: terminator must be '#', '*' or '' (none)")
            terminator = "#"
        return Entry(route, max_digits, terminator or None) if route else None

    def _options(self, raw: object, path: str, languages: tuple[str, ...]) -> tuple[Option, ...]:
        if not isinstance(raw, list) or not all(isinstance(o, dict) for o in raw):
            self.problem(self.lines.find(path), f"{path}: options must be [[{path}.options]]")
            return ()
        options: list[Option] = []
        seen: dict[str, int | None] = {}
        for index, item in enumerate(raw):
            opath = f"{path}.options"

            def at(key: str | None = None, index: int = index, opath: str = opath) -> int | None:
                return self.lines.find(opath, index=index, key=key)

            for name in sorted(item.keys() - _OPTION_FIELDS):
                self.problem(at(name), f"{path}: unknown option field {name!r}")
            key = item.get("key")
            if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 9:
                key = str(key)
            if not isinstance(key, str) or len(key) != 1 or key not in "0123456789*#ABCD":
                self.problem(at("key"), f"{path}: option key {key!r} is not a DTMF digit")
                continue
            if key in RESERVED_KEYS:
                reason = f"{path}: key {key!r} is global ({RESERVED_KEYS[key]}), not per node"
                self.problem(at("key"), reason)
                continue
            if key not in OPTION_KEYS:
                self.problem(at("key"), f"{path}: key {key!r} cannot be used; use 1-8")
                continue
            if key in seen:
                first = seen[key]
                self.problem(at("key"), f"{path}: duplicate key {key!r} (first at line {first})")
                continue
            seen[key] = at("key")
            route = None
            if "route" in item:
                route = self._route(item["route"], at("route"), path)
            goto = item.get("goto")
            if goto is not None and not isinstance(goto, str):
                self.problem(at("goto"), f"{path}: goto must be a node id")
                goto = None
            language = item.get("language")
            if language is not None and language not in languages:
                self.problem(at("language"), f"{path}: language {language!r} is not declared")
                language = None
            if route is not None and goto is not None:
                self.problem(at(), f"{path}: key {key!r} has both route and goto")
            elif route is None and goto is None and language is None:
                self.problem(at(), f"{path}: key {key!r} needs a route, a goto or a language")
            options.append(Option(key, route, goto, language, at("key")))
        return tuple(options)

    def _route(self, raw: object, line: int | None, path: str) -> Route | None:
        try:
            return Route.parse(raw)
        except ValueError as exc:
            self.problem(line, f"{path}: {exc}")
            return None

    def _menu(
        self,
        settings: dict[str, Any],
        languages: tuple[str, ...],
        voices: dict[str, str],
        prompts: dict[str, PromptText],
        nodes: dict[str, MenuNode],
    ) -> Menu | None:
        def at(key: str) -> int | None:
            return self.lines.find("menu", key=key)

        for name in sorted(settings.keys() - _MENU_FIELDS):
            self.problem(at(name), f"[menu]: unknown setting {name!r}")
        for pid in prompts.keys() & nodes.keys():
            self.problem(self.lines.find(f"prompts.{pid}"), f"prompt id {pid!r} is also a node")
        default_language = settings.get("default_language", languages[0])
        if default_language not in languages:
            self.problem(
                at("default_language"), f"default_language {default_language!r} undeclared"
            )
        main = settings.get("main", "main")
        start = settings.get("start", main)
        for name, target in (("main", main), ("start", start)):
            if target not in nodes:
                self.problem(at(name), f"[menu] {name}: unknown target node {target!r}")
        intro = settings.get("intro", [])
        if not isinstance(intro, list):
            self.problem(at("intro"), "[menu] intro must be a list of prompt ids")
            intro = []
        invalid_prompt = settings.get("invalid_prompt", "invalid")
        transfer_prompt = settings.get("transfer_prompt")
        for name, pid in [("intro", p) for p in intro] + [("invalid_prompt", invalid_prompt)]:
            if pid not in prompts:
                self.problem(at(name), f"[menu] {name}: unknown prompt {pid!r}")
        if transfer_prompt is not None and transfer_prompt not in prompts:
            self.problem(at("transfer_prompt"), f"[menu] unknown prompt {transfer_prompt!r}")
        timeout_s = settings.get("timeout_s", 5)
        if not _positive(timeout_s):
            self.problem(at("timeout_s"), "[menu] timeout_s must be a positive number")
        max_tries = settings.get("max_tries", 3)
        if not isinstance(max_tries, int) or isinstance(max_tries, bool) or max_tries < 1:
            self.problem(at("max_tries"), "[menu] max_tries must be a whole number >= 1")
        max_no_input = settings.get("max_no_input", DEFAULT_MAX_NO_INPUT)
        if not isinstance(max_no_input, int) or isinstance(max_no_input, bool) or max_no_input < 1:
            self.problem(at("max_no_input"), "[menu] max_no_input must be a whole number >= 1")
        max_depth = self.max_depth_override or settings.get("max_depth", DEFAULT_MAX_DEPTH)
        if not isinstance(max_depth, int) or max_depth < 1:
            self.problem(at("max_depth"), "[menu] max_depth must be a whole number >= 1")
            max_depth = DEFAULT_MAX_DEPTH
        operator = self._route(
            settings.get("operator_route", "queue:operator"), at("operator_route"), "[menu]"
        )
        self._check_targets(nodes)
        if self.problems:
            return None
        assert operator is not None
        depths = self._depths(nodes, main, start, max_depth)
        return Menu(
            nodes={nid: _with_depth(node, depths.get(nid)) for nid, node in nodes.items()},
            prompts=prompts,
            voices=voices,
            start=start,
            main=main,
            intro=tuple(intro),
            invalid_prompt=invalid_prompt,
            transfer_prompt=transfer_prompt,
            languages=languages,
            default_language=default_language,
            timeout_s=float(timeout_s),
            max_tries=max_tries,
            max_no_input=max_no_input,
            max_depth=max_depth,
            operator_route=operator,
            source=self.source,
        )

    def _check_targets(self, nodes: dict[str, MenuNode]) -> None:
        for node in nodes.values():
            for option in node.options:
                if option.goto is not None and option.goto not in nodes:
                    reason = f"nodes.{node.id}: key {option.key!r}: unknown target node"
                    self.problem(option.line, f"{reason} {option.goto!r}")
            if node.on_no_input is not None and node.on_no_input not in nodes:
                line = self.lines.find(f"nodes.{node.id}", key="on_no_input")
                self.problem(line, f"nodes.{node.id}: on_no_input: unknown target node")

    def _depths(
        self, nodes: dict[str, MenuNode], main: str, start: str, max_depth: int
    ) -> dict[str, int]:
        """Breadth-first levels from the main menu (level 1); nodes before it have none."""
        depths = {main: 1}
        queue = deque([main])
        while queue:
            node = nodes[queue.popleft()]
            for target in _targets(node):
                if target not in depths:
                    depths[target] = depths[node.id] + 1
                    queue.append(target)
        for nid, depth in depths.items():
            if depth > max_depth:
                line = self.lines.find(f"nodes.{nid}")
                self.problem(line, f"nodes.{nid}: {depth} levels deep, over max_depth {max_depth}")
        if self.problems:
            raise MenuError(self.source, self.problems)
        reachable = {start}
        queue = deque([start])
        while queue:
            for target in _targets(nodes[queue.popleft()]):
                if target not in reachable:
                    reachable.add(target)
                    queue.append(target)
        for nid in sorted(nodes.keys() - reachable):
            log.warning("%s: node %s cannot be reached from %s", self.source, nid, start)
        return depths


def _targets(node: MenuNode) -> list[str]:
    found = [o.goto for o in node.options if o.goto is not None]
    return found + ([node.on_no_input] if node.on_no_input else [])


def _with_depth(node: MenuNode, depth: int | None) -> MenuNode:
    return replace(node, depth=depth)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
