"""What a waiting caller hears from the ACD, as sentences synthesised on demand.

Numbers are spoken by synthesising the whole sentence (``PromptLibrary.speak`` caches each
text by its hash, so "you are number 2, about 3 minutes" is made once and reused).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Protocol

from ivr.tree import Prompt

log = logging.getLogger(__name__)

_TEXTS: dict[str, dict[str, str]] = {
    "position": {
        "zh": "您现在排在第{position}位，预计等待约{minutes}分钟，请不要挂机。",
        "en": "You are number {position} in the queue. The estimated wait is about "
        "{minutes} minutes. Please hold.",
    },
    "busy": {
        "zh": "您现在排在第{position}位，话务员正忙，请不要挂机。",
        "en": "You are number {position} in the queue. All operators are busy. Please hold.",
    },
    "callback-offer": {
        "zh": "如需保留您的位置并由我们给您回电，请按1。",
        "en": "To keep your place and have us call you back, press 1.",
    },
    "callback-booked": {
        "zh": "已为您登记回电，轮到您时我们会给您回电。再见。",
        "en": "Your callback is booked. We will call you back when it is your turn. Goodbye.",
    },
}


class Speaker(Protocol):
    async def speak(self, prompt: Prompt) -> Path: ...


def sentence(kind: str, language: str, **values: object) -> Prompt:
    texts = _TEXTS[kind]
    text = texts.get(language) or texts["zh"]
    lang = language if language in texts else "zh"
    return Prompt(f"acd-{kind}", lang, text.format(**values))


def position_sentence(language: str, position: int, wait_s: float | None) -> Prompt:
    if wait_s is None or math.isinf(wait_s):
        return sentence("busy", language, position=position)
    minutes = max(1, math.ceil(wait_s / 60))
    return sentence("position", language, position=position, minutes=minutes)


class Announcer:
    """Turns sentences into files Asterisk plays; a failed synthesis is logged, not fatal."""

    def __init__(self, speaker: Speaker) -> None:
        self._speaker = speaker

    async def file(self, prompt: Prompt, who: str) -> str | None:
        try:
            return str(await self._speaker.speak(prompt))
        except Exception:
            log.exception("%s: could not synthesise %r; the caller hears music instead", who,
                          prompt.text)  # fmt: skip
            return None
