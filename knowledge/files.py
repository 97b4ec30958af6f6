"""Knowledge entries as files: JSON (a list of entries, or ``{"entries": [...]}``) and CSV
(a header row of the field names; keywords separated by ``;``; dates as YYYY-MM-DD or
empty). What export writes, import reads back unchanged."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from knowledge.entries import FIELDS, Entry, InvalidEntry

FORMATS = ("json", "csv")


def format_of(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise InvalidEntry(f"{path}: a knowledge file ends in .json or .csv")
    return suffix


def parse(text: str, fmt: str) -> list[dict[str, Any]]:
    """The records of a file's text (checked field by field on import, not here)."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidEntry(f"not valid JSON: {exc}") from None
        if isinstance(data, dict):
            data = data.get("entries")
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InvalidEntry('a JSON knowledge file is a list of entries, or {"entries": [...]}')
        return data
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # Excel's UTF-8 mark
    missing = [f for f in ("title", "category", "content") if f not in (reader.fieldnames or ())]
    if missing:
        raise InvalidEntry(f"the CSV header lacks {', '.join(missing)}")
    records = []
    for row in reader:
        if None in row:
            raise InvalidEntry(f"CSV line {reader.line_num} has more cells than the header")
        records.append({k: ("" if v is None else v) for k, v in row.items()})
    return records


def read(path: Path) -> list[dict[str, Any]]:
    return parse(path.read_text("utf-8"), format_of(path))


def render(entries: Sequence[Entry], fmt: str) -> str:
    records = [e.fields() for e in entries]
    if fmt == "json":
        return json.dumps({"entries": records}, ensure_ascii=False, indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(FIELDS), lineterminator="\n")
    writer.writeheader()
    for record in records:
        record["keywords"] = ";".join(record["keywords"])
        writer.writerow({k: "" if v is None else v for k, v in record.items()})
    return out.getvalue()
