"""Caller ID as the network sends it is untrusted text: keep it for audit, use it if sane."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = re.compile(r"\+?[0-9]{3,20}")
_UNKNOWN = {"", "unknown", "anonymous", "restricted", "private", "<unknown>"}


@dataclass(frozen=True)
class CallerId:
    number: str | None  # digits (with an optional leading +), or None if unusable
    raw: str  # printable, at most 80 characters


def parse_caller_id(raw: str | None) -> CallerId:
    text = "".join(ch for ch in (raw or "") if ch.isprintable()).strip()[:80]
    candidate = re.sub(r"[\s\-()]", "", text)
    if candidate.lower() in _UNKNOWN or not _NUMBER.fullmatch(candidate):
        return CallerId(number=None, raw=text)
    return CallerId(number=candidate, raw=text)


def mask_number(number: str | None) -> str:
    """A phone number for logs and for people who need not call it: 13800010001 becomes
    138****0001 (short numbers keep their last two digits). Text without digits, such as
    "anonymous", is returned as it is; nothing becomes "-"."""
    if not number:
        return "-"
    digits = "".join(ch for ch in number if ch.isdigit())
    if not digits:
        return number
    lead = number[: len(number) - len(number.lstrip("+"))]
    if len(digits) >= 8:
        return f"{lead}{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"
    return f"{lead}{'*' * max(len(digits) - 2, 1)}{digits[-2:]}"
