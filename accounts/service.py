"""The accounts' rules: users and their passwords, bearer tokens for machines, browser
sessions (a signed random id in the cookie, its SHA-256 in SQL), and the audit log.

Every change and every login (failed ones too) is written to ``audit_log`` in the same
transaction as the change itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.models import ApiTokenRow, AuditRow, UserRow, WebSessionRow
from accounts.passwords import hash_password, needs_rehash, verify_password
from accounts.users import (
    SUPERVISORS,
    AccountRole,
    UnknownUser,
    User,
    UserExists,
    check_account,
    check_password,
)
from db.base import utcnow

log = logging.getLogger(__name__)

#: failed logins of one name within :data:`THROTTLE_WINDOW` after which even the right
#: password is refused until the window has passed (password guessing)
THROTTLE_FAILURES = 10
THROTTLE_WINDOW = timedelta(minutes=15)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class WebSession:
    user: User
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class Login:
    """A successful login: the cookie's value and the session behind it."""

    cookie: str
    session: WebSession


class AccountService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        session_secret: str,
        session_ttl: timedelta = timedelta(hours=8),
        departments: Collection[str] = (),
        extensions: Collection[str] = (),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self._secret = session_secret.encode()
        self.session_ttl = session_ttl
        self.departments = frozenset(departments)
        self.extensions = frozenset(extensions)
        self.clock = clock

    # -- users ------------------------------------------------------------------------------

    async def add_user(
        self,
        name: str,
        role: AccountRole,
        *,
        password: str = "",
        department: str = "",
        extension: str = "",
        actor: str = "cli",
        checked: bool = True,
    ) -> User:
        """A new account. ``checked=False`` only for the staff-file import, whose entries
        predate the catalogue checks (logged)."""
        if checked:
            check_account(name, role, department, extension,
                          departments=self.departments, extensions=self.extensions)  # fmt: skip
        if password:
            check_password(password)
        hashed = await hash_password(password) if password else ""
        async with self.sessions.begin() as db:
            if await _row(db, name) is not None:
                raise UserExists(f"user {name!r} exists already")
            now = self.clock()
            row = UserRow(
                name=name,
                role=role.value,
                department=department,
                extension=extension,
                password_hash=hashed,
                disabled=False,
                created_at=now,
                updated_at=now,
            )
            db.add(row)
            await db.flush()
            detail = f"role={role.value} department={department} extension={extension}"
            self._audit(db, actor, "user_add", name, detail)
            return _user(row)

    async def set_password(self, name: str, password: str, *, actor: str = "cli") -> None:
        check_password(password)
        hashed = await hash_password(password)
        async with self.sessions.begin() as db:
            row = await _existing(db, name)
            row.password_hash, row.updated_at = hashed, self.clock()
            # a new password ends the sessions opened with the old one
            await db.execute(delete(WebSessionRow).where(WebSessionRow.user_id == row.id))
            self._audit(db, actor, "user_passwd", name)

    async def bind(
        self, name: str, *, department: str = "", extension: str = "", actor: str = "cli"
    ) -> User:
        """Bind an operator to another seat, a supervisor or admin to their phone (or to none:
        ``extension=""``), or a department user to another department (e.g. an account
        imported from the old staff file, which had neither)."""
        async with self.sessions.begin() as db:
            row = await _existing(db, name)
            check_account(row.name, AccountRole(row.role), department, extension,
                          departments=self.departments, extensions=self.extensions)  # fmt: skip
            row.department, row.extension, row.updated_at = department, extension, self.clock()
            self._audit(
                db, actor, "user_bind", name, f"department={department} extension={extension}"
            )
            return _user(row)

    async def set_disabled(self, name: str, disabled: bool = True, *, actor: str = "cli") -> None:
        """Disable (or enable again) an account; disabling ends its sessions and tokens."""
        async with self.sessions.begin() as db:
            row = await _existing(db, name)
            row.disabled, row.updated_at = disabled, self.clock()
            if disabled:
                await db.execute(delete(WebSessionRow).where(WebSessionRow.user_id == row.id))
                await db.execute(
                    update(ApiTokenRow)
                    .where(ApiTokenRow.user_id == row.id, ApiTokenRow.revoked_at.is_(None))
                    .values(revoked_at=self.clock())
                )
            self._audit(db, actor, "user_disable" if disabled else "user_enable", name)

    async def users(self) -> list[User]:
        async with self.sessions() as db:
            rows = (await db.execute(select(UserRow).order_by(UserRow.name))).scalars()
            return [_user(row) for row in rows]

    async def user(self, name: str) -> User:
        async with self.sessions() as db:
            return _user(await _existing(db, name))

    async def supervisor_at(self, extension: str) -> User | None:
        """The enabled supervisor or admin whose phone is ``extension`` (the first by name if
        several share it), or None."""
        roles = [role.value for role in SUPERVISORS]
        async with self.sessions() as db:
            row = (await db.execute(
                select(UserRow).where(UserRow.extension == extension, UserRow.role.in_(roles),
                                      UserRow.disabled.is_(False)).order_by(UserRow.name).limit(1)
            )).scalar_one_or_none()  # fmt: skip
            return None if row is None or not extension else _user(row)

    # -- tokens for machines ------------------------------------------------------------------

    async def issue_token(self, name: str, *, actor: str = "cli", token: str = "") -> str:
        """A new bearer token for ``name``, returned once; only its SHA-256 is kept.
        ``token`` is given only when importing a token that exists already."""
        token = token or secrets.token_urlsafe(32)
        async with self.sessions.begin() as db:
            row = await _existing(db, name)
            db.add(ApiTokenRow(user_id=row.id, token_hash=sha256(token), created_at=self.clock()))
            self._audit(db, actor, "token_issue", name)
        return token

    async def user_for_token(self, token: str) -> User | None:
        if not token or len(token) > 256:
            return None
        async with self.sessions() as db:
            query = (
                select(UserRow)
                .join(ApiTokenRow, ApiTokenRow.user_id == UserRow.id)
                .where(ApiTokenRow.token_hash == sha256(token), ApiTokenRow.revoked_at.is_(None))
            )
            row = (await db.execute(query)).scalar_one_or_none()
        return None if row is None or row.disabled else _user(row)

    # -- browser sessions ---------------------------------------------------------------------

    async def login(self, name: str, password: str, remote: str = "") -> Login | None:
        """A new session if the password is right and the account enabled; None otherwise
        (the same answer for an unknown name, a wrong password and a disabled account)."""
        async with self.sessions() as db:
            row = await _row(db, name[:64])
            failures = await db.scalar(
                select(func.count()).select_from(AuditRow).where(
                    AuditRow.actor == name[:64], AuditRow.action == "login_failed",
                    AuditRow.at > self.clock() - THROTTLE_WINDOW)
            )  # fmt: skip
        throttled = (failures or 0) >= THROTTLE_FAILURES
        ok = await verify_password(row.password_hash if row else "", password[:1024])
        async with self.sessions.begin() as db:
            if row is None or not ok or row.disabled or throttled:
                why = "unknown user" if row is None else "wrong password" if not ok else ""
                why = why or ("throttled" if throttled else "disabled")
                self._audit(db, name[:64], "login_failed", name[:64], why, remote)
                return None
            if needs_rehash(row.password_hash):
                rehashed = await hash_password(password)
                await db.execute(update(UserRow).where(UserRow.id == row.id)
                                 .values(password_hash=rehashed))  # fmt: skip
            session_id, now = secrets.token_urlsafe(32), self.clock()
            session = WebSession(_user(row), secrets.token_urlsafe(32), now + self.session_ttl)
            db.add(
                WebSessionRow(
                    id_hash=sha256(session_id),
                    user_id=row.id,
                    created_at=now,
                    csrf_token=session.csrf_token,
                    expires_at=session.expires_at,
                )
            )
            await db.execute(delete(WebSessionRow).where(WebSessionRow.expires_at <= now))
            self._audit(db, row.name, "login", row.name, "", remote)
        return Login(f"{session_id}.{self._sign(session_id)}", session)

    async def session(self, cookie: str) -> WebSession | None:
        """The live session a cookie stands for: signed, known, not expired, user enabled."""
        session_id = self._verified(cookie)
        if session_id is None:
            return None
        async with self.sessions() as db:
            query = (
                select(WebSessionRow, UserRow)
                .join(UserRow, UserRow.id == WebSessionRow.user_id)
                .where(WebSessionRow.id_hash == sha256(session_id))
            )
            found = (await db.execute(query)).one_or_none()
        if found is None:
            return None
        session, row = found
        if row.disabled or session.expires_at <= self.clock():
            return None
        return WebSession(_user(row), session.csrf_token, session.expires_at)

    async def logout(self, cookie: str, remote: str = "") -> None:
        session_id = self._verified(cookie)
        if session_id is None:
            return
        async with self.sessions.begin() as db:
            query = (
                select(UserRow.name)
                .join(WebSessionRow, WebSessionRow.user_id == UserRow.id)
                .where(WebSessionRow.id_hash == sha256(session_id))
            )
            name = (await db.execute(query)).scalar_one_or_none()
            await db.execute(
                delete(WebSessionRow).where(WebSessionRow.id_hash == sha256(session_id))
            )
            if name is not None:
                self._audit(db, name, "logout", name, "", remote)

    def _sign(self, session_id: str) -> str:
        return hmac.new(self._secret, session_id.encode(), hashlib.sha256).hexdigest()

    def _verified(self, cookie: str) -> str | None:
        session_id, _, signature = cookie.partition(".")
        if not session_id or len(cookie) > 256:
            return None
        return session_id if hmac.compare_digest(signature, self._sign(session_id)) else None

    # -- audit --------------------------------------------------------------------------------

    async def audit(
        self, actor: str, action: str, target: str = "", detail: str = "", remote: str = ""
    ) -> None:
        async with self.sessions.begin() as db:
            self._audit(db, actor, action, target, detail, remote)

    def _audit(
        self, db: AsyncSession, actor: str, action: str, target: str = "", detail: str = "",
        remote: str = "",
    ) -> None:  # fmt: skip
        db.add(AuditRow(at=self.clock(), actor=actor[:64], action=action[:32],
                        target=target[:128], detail=detail[:255], remote=remote[:64]))  # fmt: skip
        log.info("audit: %s %s %s %s", actor[:64], action, target[:128], detail[:255])

    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        async with self.sessions() as db:
            query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
            rows = (await db.execute(query)).scalars()
            return [{"at": r.at.isoformat(), "actor": r.actor, "action": r.action,
                     "target": r.target, "detail": r.detail, "remote": r.remote}
                    for r in rows]  # fmt: skip


async def _row(db: AsyncSession, name: str) -> UserRow | None:
    return (await db.execute(select(UserRow).where(UserRow.name == name))).scalar_one_or_none()


async def _existing(db: AsyncSession, name: str) -> UserRow:
    row = await _row(db, name)
    if row is None:
        raise UnknownUser(f"no user {name[:64]!r}")
    return row


def _user(row: UserRow) -> User:
    return User(row.id, row.name, AccountRole(row.role), row.department, row.extension,
                row.disabled)  # fmt: skip
