"""Staff accounts for tests of a running engine: a user of a role, and a bearer token for
them, made through the engine's own accounts (as `hotline users add` and `token` do)."""

from __future__ import annotations

from accounts.service import AccountService
from accounts.users import AccountRole, UnknownUser
from hotline.engine import Hotline


async def staff_token(
    accounts: AccountService,
    name: str,
    role: AccountRole,
    *,
    password: str = "",
    department: str = "",
    extension: str = "",
) -> str:
    """A new token for ``name`` (the account is made on first use)."""
    try:
        await accounts.user(name)
    except UnknownUser:
        await accounts.add_user(name, role, password=password, department=department,
                                extension=extension, actor="test")  # fmt: skip
    return await accounts.issue_token(name, actor="test")


async def supervisor_auth(hotline: Hotline) -> dict[str, str]:
    """The Authorization header of a supervisor of ``hotline``."""
    token = await staff_token(hotline.accounts.accounts, "e2e-lead", AccountRole.SUPERVISOR)
    return {"Authorization": f"Bearer {token}"}
