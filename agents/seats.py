"""The seats file: operator seats as data (TOML), validated with the line and reason.

Layout::

    languages = ["zh", "en"]            # languages a seat may declare
    [defaults]
    wrap_up_s = 15                      # wrap-up after each call unless the skill/seat says else
    ring_timeout_s = 15                 # a seat not answering by then is paused "no-answer"
    [skills.report]
    label = "Reports and complaints"
    wrap_up_s = 30                      # optional, per skill
    [[seat]]
    extension = "8001"
    name = "Wang Fang"
    pin_hash = "pbkdf2_sha256$200000$<salt hex>$<digest hex>"   # or: pin = "4711"
    languages = ["zh"]
    skills = { report = 1, consultation = 4 }
    wrap_up_s = 20                      # optional, per seat: wins over the skill's

Skill levels run 1-10 with **1 the most proficient** (as in Avaya's Expert Agent Selection and
Asterisk's member penalty): the ACD offers a call to the best band first. A plain ``pin`` is
accepted for a first install (and logged as a warning); ``hotline`` admins store ``pin_hash``
made by :func:`hash_pin`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LEVEL_MIN, LEVEL_MAX = 1, 10
PIN_ITERATIONS = 200_000
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_EXTENSION = re.compile(r"^[0-9]{2,8}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_PIN = re.compile(r"^[0-9]{4,12}$")


class SeatsError(ValueError):
    """A seats file that cannot be used: where (file and line) and why."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")
        self.source, self.line, self.reason = source, line, reason


@dataclass(frozen=True)
class Skill:
    name: str
    label: str
    wrap_up_s: float | None = None


@dataclass(frozen=True)
class Seat:
    extension: str
    name: str
    skills: tuple[tuple[str, int], ...]  # (skill, level), level 1 = most proficient
    languages: tuple[str, ...]
    pin_hash: str
    wrap_up_s: float | None = None
    ring_timeout_s: float | None = None

    @property
    def skill_levels(self) -> dict[str, int]:
        return dict(self.skills)

    def check_pin(self, pin: str) -> bool:
        return verify_pin(self.pin_hash, pin)


@dataclass(frozen=True)
class SeatsFile:
    skills: tuple[Skill, ...]
    languages: tuple[str, ...]
    seats: tuple[Seat, ...]
    wrap_up_s: float = 15.0
    ring_timeout_s: float = 15.0

    def seat(self, extension: str) -> Seat:
        for seat in self.seats:
            if seat.extension == extension:
                return seat
        raise KeyError(extension)

    def wrap_up_for(self, seat: Seat, skill: str | None) -> float:
        """Wrap-up after a call of ``skill``: the seat's own, else the skill's, else default."""
        if seat.wrap_up_s is not None:
            return seat.wrap_up_s
        if skill is not None:
            known = {s.name: s for s in self.skills}
            if skill in known and known[skill].wrap_up_s is not None:
                return known[skill].wrap_up_s  # type: ignore[return-value]
        return self.wrap_up_s

    def ring_timeout_for(self, seat: Seat) -> float:
        return seat.ring_timeout_s if seat.ring_timeout_s is not None else self.ring_timeout_s


def hash_pin(pin: str, *, salt: bytes | None = None, iterations: int = PIN_ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<salt hex>$<digest hex>`` for a seats file's ``pin_hash``."""
    if not _PIN.match(pin):
        raise ValueError("a PIN is 4 to 12 digits (it is dialed from a softphone)")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def verify_pin(pin_hash: str, pin: str) -> bool:
    """Constant-time check of ``pin`` against a stored hash (or a ``plain$`` PIN)."""
    kind, _, rest = pin_hash.partition("$")
    if kind == "plain":
        return hmac.compare_digest(rest.encode(), pin.encode())
    if kind != "pbkdf2_sha256":
        return False
    try:
        iterations_s, salt_hex, digest_hex = rest.split("$")
        digest = hashlib.pbkdf2_hmac(
            "sha256", pin.encode(), bytes.fromhex(salt_hex), int(iterations_s)
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


def load_seats(path: Path) -> SeatsFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeatsError(str(path), None, f"cannot read: {exc}") from exc
    return parse_seats(text, source=str(path))


class _Lines:
    """Finds the line of a ``[[seat]]`` block or of a key inside it (tomllib gives none)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        header = re.compile(r"^\s*\[\[\s*seat\s*\]\]")
        self.seat_starts = [i + 1 for i, line in enumerate(self.lines) if header.match(line)]

    def seat(self, index: int) -> int | None:
        return self.seat_starts[index] if index < len(self.seat_starts) else None

    def key(self, index: int, key: str) -> int | None:
        start = self.seat(index)
        if start is None:
            return None
        end = self.seat_starts[index + 1] if index + 1 < len(self.seat_starts) else None
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number in range(start, (end or len(self.lines) + 1) - 1):
            if pattern.match(self.lines[number]):
                return number + 1
        return start

    def table(self, name: str) -> int | None:
        pattern = re.compile(rf"^\s*\[\s*{re.escape(name)}\s*\]")
        for number, line in enumerate(self.lines, start=1):
            if pattern.match(line):
                return number
        return None


def parse_seats(text: str, *, source: str = "<seats>") -> SeatsFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise SeatsError(source, int(match.group(1)) if match else None, str(exc)) from exc
    lines = _Lines(text)

    def fail(line: int | None, reason: str) -> SeatsError:
        return SeatsError(source, line, reason)

    unknown = sorted(set(data) - {"languages", "defaults", "skills", "seat"})
    if unknown:
        raise fail(None, f"unknown section(s): {', '.join(unknown)}")
    languages = data.get("languages", ["zh"])
    if not isinstance(languages, list) or not all(
        isinstance(x, str) and _LANGUAGE.match(x) for x in languages
    ):
        raise fail(None, "languages must be a list of language codes such as 'zh', 'en'")
    defaults = data.get("defaults", {})
    wrap_up_s = _seconds(defaults.get("wrap_up_s", 15), "defaults.wrap_up_s", fail)
    ring_timeout_s = _seconds(defaults.get("ring_timeout_s", 15), "defaults.ring_timeout_s", fail)
    skills = _parse_skills(data.get("skills", {}), fail, lines)
    known = {s.name for s in skills}
    raw_seats = data.get("seat", [])
    if not isinstance(raw_seats, list) or not raw_seats:
        raise fail(None, "no [[seat]] declared")
    seats: list[Seat] = []
    seen: dict[str, int | None] = {}
    for index, raw in enumerate(raw_seats):
        seat = _parse_seat(index, raw, known, set(languages), fail, lines)
        if seat.extension in seen:
            raise fail(
                lines.key(index, "extension"),
                f"duplicate extension {seat.extension} (first at line {seen[seat.extension]})",
            )
        seen[seat.extension] = lines.key(index, "extension")
        seats.append(seat)
    return SeatsFile(
        skills=skills,
        languages=tuple(languages),
        seats=tuple(seats),
        wrap_up_s=wrap_up_s,
        ring_timeout_s=ring_timeout_s,
    )


def _seconds(value: object, what: str, fail: Any, line: int | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
        raise fail(line, f"{what} must be a number of seconds between 0 and 3600")
    return float(value)


def _parse_skills(raw: object, fail: Any, lines: _Lines) -> tuple[Skill, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise fail(None, "declare the skills first: [skills.<name>] tables")
    skills = []
    for name, spec in raw.items():
        line = lines.table(f"skills.{name}")
        if not _NAME.match(name):
            raise fail(line, f"skill name {name!r}: lower case letters, digits, '-' or '_'")
        if not isinstance(spec, Mapping):
            raise fail(line, f"skill {name}: expected a table with label and wrap_up_s")
        wrap = spec.get("wrap_up_s")
        skills.append(
            Skill(
                name=name,
                label=str(spec.get("label", name)),
                wrap_up_s=None
                if wrap is None
                else _seconds(wrap, f"skill {name}: wrap_up_s", fail, line),
            )
        )
    return tuple(skills)


def _parse_seat(
    index: int,
    raw: object,
    known_skills: set[str],
    known_languages: set[str],
    fail: Any,
    lines: _Lines,
) -> Seat:
    at = lines.seat(index)
    if not isinstance(raw, Mapping):
        raise fail(at, "a [[seat]] must be a table")
    allowed = {
        "extension",
        "name",
        "pin",
        "pin_hash",
        "skills",
        "languages",
        "wrap_up_s",
        "ring_timeout_s",
    }
    for key in raw:
        if key not in allowed:
            raise fail(lines.key(index, key), f"unknown seat field {key!r}")
    extension = raw.get("extension")
    if not isinstance(extension, str) or not _EXTENSION.match(extension):
        raise fail(lines.key(index, "extension"), "extension must be a string of 2-8 digits")
    name = raw.get("name", f"Seat {extension}")
    if not isinstance(name, str) or not name.strip():
        raise fail(lines.key(index, "name"), f"seat {extension}: empty name")
    if "pin" in raw and "pin_hash" in raw:
        raise fail(lines.key(index, "pin"), f"seat {extension}: give pin or pin_hash, not both")
    if "pin_hash" in raw:
        pin_hash = raw["pin_hash"]
        if not isinstance(pin_hash, str) or not pin_hash.startswith("pbkdf2_sha256$"):
            raise fail(lines.key(index, "pin_hash"), f"seat {extension}: pin_hash not pbkdf2")
    elif "pin" in raw:
        pin = raw["pin"]
        if not isinstance(pin, str) or not _PIN.match(pin):
            raise fail(lines.key(index, "pin"), f"seat {extension}: pin must be 4-12 digits")
        log.warning("seat %s has a plain pin in the seats file; store pin_hash", extension)
        pin_hash = f"plain${pin}"
    else:
        raise fail(at, f"seat {extension}: no pin or pin_hash (operators log in with it)")
    raw_skills = raw.get("skills")
    if not isinstance(raw_skills, Mapping) or not raw_skills:
        raise fail(lines.key(index, "skills"), f"seat {extension}: skills = {{ name = level }}")
    skills = []
    for skill, level in raw_skills.items():
        if skill not in known_skills:
            raise fail(
                lines.key(index, "skills"),
                f"seat {extension}: unknown skill {skill!r} (declared: "
                f"{', '.join(sorted(known_skills))})",
            )
        if isinstance(level, bool) or not isinstance(level, int):
            raise fail(lines.key(index, "skills"), f"seat {extension}: level of {skill} not int")
        if not LEVEL_MIN <= level <= LEVEL_MAX:
            raise fail(
                lines.key(index, "skills"),
                f"seat {extension}: level {level} of {skill} outside {LEVEL_MIN}-{LEVEL_MAX}",
            )
        skills.append((skill, level))
    languages = raw.get("languages", [])
    if not isinstance(languages, list) or not languages:
        raise fail(lines.key(index, "languages"), f"seat {extension}: no languages")
    for language in languages:
        if language not in known_languages:
            raise fail(
                lines.key(index, "languages"),
                f"seat {extension}: unknown language {language!r} (declared: "
                f"{', '.join(sorted(known_languages))})",
            )
    wrap, ring = raw.get("wrap_up_s"), raw.get("ring_timeout_s")
    return Seat(
        extension=extension,
        name=name.strip(),
        skills=tuple(skills),
        languages=tuple(languages),
        pin_hash=pin_hash,
        wrap_up_s=None
        if wrap is None
        else _seconds(wrap, "wrap_up_s", fail, lines.key(index, "wrap_up_s")),
        ring_timeout_s=None
        if ring is None
        else _seconds(ring, "ring_timeout_s", fail, lines.key(index, "ring_timeout_s")),
    )
