"""Where tables and keys sit in a TOML text, to name the line of a problem (tomllib gives
positions only for syntax errors)."""

from __future__ import annotations

import re


class LineIndex:
    """Where tables and keys sit in the TOML text (tomllib reports no positions)."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")

    def __init__(self, text: str) -> None:
        self.tables: dict[tuple[str, int | None], int] = {}
        self.keys: dict[tuple[str, int | None, str], int] = {}
        counts: dict[str, int] = {}
        table: tuple[str, int | None] = ("", None)
        in_multiline = False
        for number, line in enumerate(text.splitlines(), start=1):
            if line.count('"""') % 2 or line.count("'''") % 2:
                in_multiline = not in_multiline
                if not in_multiline:
                    continue
            if in_multiline and not self._KEY.match(line):
                continue
            if header := self._HEADER.match(line):
                name = re.sub(r"\s*\.\s*", ".", header[2]).replace('"', "").replace("'", "")
                index = None
                if header[1] == "[[":
                    index = counts.get(name, 0)
                    counts[name] = index + 1
                table = (name, index)
                self.tables.setdefault(table, number)
            elif key := self._KEY.match(line):
                name = key[1].strip("\"'")
                self.keys.setdefault((*table, name), number)

    def find(self, table: str, index: int | None = None, key: str | None = None) -> int | None:
        """The line of ``key`` in ``table`` (its ``index``-th if an array), else of the table."""
        if key is not None and (table, index, key) in self.keys:
            return self.keys[(table, index, key)]
        if (table, index) in self.tables:
            return self.tables[(table, index)]
        parent, _, last = table.rpartition(".")
        return self.keys.get((parent, None, last)) or self.tables.get((parent, None))
