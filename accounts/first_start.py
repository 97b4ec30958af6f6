"""The accounts a new installation starts with, so that whoever runs ``./run.sh`` can log in:
an administrator, a supervisor and an operator bound to the first seat, each with a password
generated once into ``data_dir/secrets.toml`` (0600; never in the repository). Made only
while no account exists at all; change or disable them with ``hotline users``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from accounts.service import AccountService
from accounts.users import AccountRole
from hotline.secrets import stored_secret

log = logging.getLogger(__name__)

ACTOR = "first-start"


def first_accounts(first_extension: str) -> list[tuple[str, AccountRole, str]]:
    """(name, role, seat extension) of the accounts a new installation gets."""
    return [
        ("admin", AccountRole.ADMIN, ""),
        ("lead", AccountRole.SUPERVISOR, ""),
        (f"op{first_extension}", AccountRole.OPERATOR, first_extension),
    ]


async def make_first_accounts(
    accounts: AccountService, data_dir: Path, first_extension: str
) -> list[str]:
    """Make the first accounts if there is no account yet; returns the names made."""
    if await accounts.users():
        return []
    made = []
    for name, role, extension in first_accounts(first_extension):
        password = await asyncio.to_thread(stored_secret, data_dir, f"user-{name}")
        await accounts.add_user(name, role, password=password, extension=extension, actor=ACTOR)
        made.append(name)
    log.info("first start: accounts %s made; their passwords are user-<name> in %s "
             "(change them with `hotline users passwd`)", ", ".join(made),
             data_dir / "secrets.toml")  # fmt: skip
    return made
