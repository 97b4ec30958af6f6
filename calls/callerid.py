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
