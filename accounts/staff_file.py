"""The hand-made staff file of earlier versions (``var/staff.toml``: ``[[staff]] token, name,
role, department``), imported once as users with their tokens, then renamed
``staff.toml.imported`` so that it is not read again."""

from __future__ import annotations

import asyncio
import logging
import tomllib
from pathlib import Path

from accounts.service import AccountService
from accounts.users import AccountError, AccountRole, UnknownUser

log = logging.getLogger(__name__)
ACTOR = "staff-file-import"


async def import_staff_file(accounts: AccountService, path: Path) -> int:
    """Import ``path`` if it exists; returns the number of tokens imported."""
    entries = await asyncio.to_thread(_entries, path)
    if entries is None:
        return 0
    imported = 0
    for entry in entries:
        try:
            name, role = str(entry["name"]), AccountRole(str(entry["role"]))
        except (KeyError, ValueError) as exc:
            log.error("staff file %s: entry without a name or a known role (%s): skipped",
                      path, exc)  # fmt: skip
            continue
        department = str(entry.get("department", ""))
        if role is AccountRole.DEPARTMENT and not department:
            log.error("staff file %s: %s has role department but no department: skipped",
                      path, name)  # fmt: skip
            continue
        try:
            await accounts.user(name)
        except UnknownUser:
            await accounts.add_user(name, role, department=department, actor=ACTOR, checked=False)
            if role is AccountRole.DEPARTMENT and department not in accounts.departments:
                log.warning("imported user %s: department %s is not in the dispatch catalogue",
                            name, department)  # fmt: skip
        try:
            await accounts.issue_token(name, actor=ACTOR, token=str(entry["token"]))
        except AccountError as exc:
            log.error("staff file %s: token of %s not imported: %s", path, name, exc)
            continue
        imported += 1
    done = path.with_name(path.name + ".imported")
    await asyncio.to_thread(path.rename, done)
    await accounts.audit(ACTOR, "staff_import", str(path), f"{imported} token(s)")
    log.warning(
        "imported %d staff token(s) from %s as users (no passwords: set them with "
        "`hotline users passwd NAME`); the file is now %s",
        imported, path, done,
    )  # fmt: skip
    return imported


def _entries(path: Path) -> list[dict[str, object]] | None:
    if not path.is_file():
        return None
    staff = tomllib.loads(path.read_text(encoding="utf-8")).get("staff", [])
    return [entry for entry in staff if isinstance(entry, dict)]
