"""How the engine reaches a number outside: the carrier trunk's dial string (the
``callback_dial`` setting, ``{number}`` standing for the number called). Queue callbacks,
revisit calls and transfers all dial through :meth:`OutboundDial.channel`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutboundDial:
    template: str  # e.g. "PJSIP/citizens/sip:{number}@127.0.0.1"

    def __post_init__(self) -> None:
        try:
            self.channel("0")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"callback_dial {self.template!r}: {exc!r}") from exc
        if "{number}" not in self.template:
            raise ValueError(f"callback_dial {self.template!r} has no {{number}}")

    def channel(self, number: str) -> str:
        """The Asterisk channel that dials ``number`` (for AMI Originate or ``Dial()``)."""
        return self.template.format(number=number)
