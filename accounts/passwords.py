"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile),
off the event loop: one hash takes tens of milliseconds on purpose."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
# Verified against when the user is unknown, so that a wrong name takes as long as a wrong
# password (no user enumeration by timing).
_DUMMY = _HASHER.hash("not a password of anybody")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(stored: str, password: str) -> bool:
    """True if ``password`` matches the stored hash (an empty hash matches nothing)."""
    return await asyncio.to_thread(_verify, stored or _DUMMY, password, bool(stored))


def _verify(stored: str, password: str, real: bool) -> bool:
    try:
        return _HASHER.verify(stored, password) and real
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
