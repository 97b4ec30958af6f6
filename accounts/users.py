"""Who a user is (role, department, seat or phone), the rules an account must follow, and the
accounts' errors with their stable codes (mapped to HTTP in web/errors.py)."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import DomainError
from workorders.orders import Actor
from workorders.orders import Role as OrderRole

NAME = re.compile(r"[^\s\x00-\x1f\x7f/\\:]{1,64}")
EXTENSION = re.compile(r"\d{2,16}")
MIN_PASSWORD = 10


class AccountRole(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    DEPARTMENT = "department"
    ADMIN = "admin"  # manages accounts; sees and does what a supervisor does


SUPERVISORS = frozenset({AccountRole.SUPERVISOR, AccountRole.ADMIN})


class AccountError(DomainError):
    """Base of the accounts' errors."""

    code = "account_error"


class InvalidAccount(AccountError):
    code = "invalid_input"


class UnknownUser(AccountError):
    code = "unknown_user"
    status = 404


class UserExists(AccountError):
    code = "user_exists"
    status = 409


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: AccountRole
    department: str = ""
    extension: str = ""
    disabled: bool = False

    def actor(self) -> Actor:
        """The user as the work orders know actors (an admin acts as a supervisor)."""
        role = OrderRole.SUPERVISOR if self.role is AccountRole.ADMIN else OrderRole(self.role)
        return Actor(self.name, role, self.department)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "role": self.role.value, "department": self.department,
                "extension": self.extension, "disabled": self.disabled}  # fmt: skip


def check_account(
    name: str,
    role: AccountRole,
    department: str,
    extension: str,
    *,
    departments: Collection[str],
    extensions: Collection[str],
) -> None:
    """A department user names one department of the dispatch catalogue; an operator one
    seat of the seats file; a supervisor or an admin may name the seat whose softphone is
    theirs (listen-in rings it, ``*25`` records an announcement from it)."""
    if not NAME.fullmatch(name):
        raise InvalidAccount("a user name is 1-64 characters without spaces, slashes or colons")
    if role is AccountRole.DEPARTMENT:
        if department not in departments:
            known = "、".join(sorted(departments)) or "none"
            raise InvalidAccount(f"department {department[:64]!r} is not in the catalogue: {known}")
    elif department:
        raise InvalidAccount("only a department user is bound to a department")
    if role is AccountRole.OPERATOR or (role in SUPERVISORS and extension):
        if not EXTENSION.fullmatch(extension) or extension not in extensions:
            known = ", ".join(sorted(extensions)) or "none"
            raise InvalidAccount(f"{role.value} needs a seat extension of the seats file: {known}")
    elif extension:
        raise InvalidAccount("a department user is bound to no seat extension")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidAccount(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise InvalidAccount("a password has at most 1024 characters")
