"""The base of every domain error: a stable ``code`` safe to show to clients, the HTTP
``status`` it stands for, and a ``message`` for people.

Domain packages subclass it and set ``code`` and ``status`` as class attributes; the web
layer turns any of them into its one error shape in one place (:mod:`web.errors`).
"""

from __future__ import annotations


class DomainError(Exception):
    code = "invalid_input"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
