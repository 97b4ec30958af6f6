"""Accounts on the web: who makes a request (a bearer token, or the session cookie of a
browser), the access rules of :mod:`accounts.access` applied to every request, CSRF checks
on every state-changing browser request, the audit of every such request, and the login,
logout and account pages.

The session cookie is ``<random id>.<HMAC-SHA256 of it>`` (HttpOnly, SameSite=Strict); the
session itself is in SQL. A state-changing request made with the cookie carries the
session's CSRF token in ``X-CSRF-Token`` or the form field ``csrf_token``. The login form
has its own double-submit token (a short-lived cookie equal to a form field).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from accounts.access import READS, allowed, rule_for
from accounts.pages import account_page, login_page
from accounts.service import AccountService, WebSession
from accounts.users import SUPERVISORS, AccountRole, User
from web.errors import HttpError, refusal_of
from web.params import query_int
from workorders.orders import Actor

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION_COOKIE = "hotline_session"
LOGIN_COOKIE = "hotline_login"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = READS
LOGIN_PATH = "/login"


@dataclass(frozen=True)
class Who:
    """Who makes a request: a user (by token or session), and their browser session if any."""

    user: User | None = None
    session: WebSession | None = None


_WHO = web.RequestKey("who", Who)


def current_user(request: web.Request) -> User | None:
    return request.get(_WHO, Who()).user


def actor_of(request: web.Request) -> Actor:
    """The work orders' actor for the request's user (the staff API's identity)."""
    user = current_user(request)
    if user is None:
        raise HttpError(401, "unauthenticated", "log in, or send Authorization: Bearer <token>")
    return user.actor()


def landing(user: User) -> str:
    if user.role in SUPERVISORS:
        return "/supervisor"
    return "/desk" if user.role is AccountRole.OPERATOR else "/account"


def _local(path: str) -> str:
    """A redirect target of this site only (no scheme, no other host)."""
    return path if path.startswith("/") and not path.startswith(("//", "/\\")) else ""


@dataclass(frozen=True)
class AccountsWeb:
    accounts: AccountService
    secure_cookie: bool = False  # behind HTTPS: the cookies are sent over HTTPS only

    # -- every request ------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        user, session, why = await self._identify(request)
        request[_WHO] = Who(user, session)
        unsafe = request.method not in SAFE_METHODS
        if session is not None and unsafe and request.path != LOGIN_PATH:
            await self._check_csrf(request, session)
        rule = rule_for(request.path)
        if rule is not None:
            if user is None:
                browser = "Authorization" not in request.headers  # a machine gets its 401
                if rule.page and not unsafe and browser:
                    raise web.HTTPSeeOther(f"{LOGIN_PATH}?next={quote(request.path_qs)}")
                raise HttpError(
                    401,
                    "unauthenticated",
                    why,
                    headers={"WWW-Authenticate": 'Bearer realm="hotline12345"'},
                )
            if not allowed(user, request.method, request.path, rule):
                raise HttpError(
                    403, "forbidden", f"a {user.role.value} may not {request.method} {request.path}"
                )
        if user is None or not unsafe:
            return await handler(request)
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except Exception as exc:
            refusal = refusal_of(exc)
            status = refusal.status if refusal else 500
            raise
        finally:
            await self.accounts.audit(user.name, "request", f"{request.method} {request.path}",
                                      f"status {status}", request.remote or "")  # fmt: skip

    async def _identify(self, request: web.Request) -> tuple[User | None, WebSession | None, str]:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            user = await self.accounts.user_for_token(token.strip())
            return user, None, "unknown, revoked or disabled token"
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            session = await self.accounts.session(cookie)
            if session is not None:
                return session.user, session, ""
            return None, None, "the session has expired or ended: log in again"
        return None, None, "log in, or send Authorization: Bearer <token>"

    async def _check_csrf(self, request: web.Request, session: WebSession) -> None:
        given = request.headers.get(CSRF_HEADER, "")
        if not given and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            given = str((await request.post()).get(CSRF_FIELD, ""))
        if not given or not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
            log.warning("%s %s by %s refused: no valid CSRF token", request.method, request.path,
                        session.user.name)  # fmt: skip
            raise HttpError(403, "csrf_failed", "the request lacks this session's CSRF token")

    # -- pages and routes ---------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(LOGIN_PATH, self.login_form),
            web.post(LOGIN_PATH, self.login),
            web.post("/logout", self.logout),
            web.get("/account", self.account),
            web.get("/api/me", self.me),
            web.get("/api/audit", self.audit_log),
            web.get("/", self.home),
        ]

    async def login_form(self, request: web.Request) -> web.Response:
        user = current_user(request)
        next_path = _local(request.query.get("next", ""))
        if user is not None:
            raise web.HTTPSeeOther(next_path or landing(user))
        return self._login_page(next_path)

    def _login_page(
        self, next_path: str, name: str = "", error: str = "", status: int = 200
    ) -> web.Response:
        token = secrets.token_urlsafe(24)
        response = web.Response(
            text=login_page(token, next_path, name, error),
            content_type="text/html",
            status=status,
            headers={"Cache-Control": "no-store"},
        )
        response.set_cookie(LOGIN_COOKIE, token, max_age=900, path=LOGIN_PATH, httponly=True,
                            samesite="Strict", secure=self.secure_cookie)  # fmt: skip
        return response

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        next_path = _local(str(form.get("next", "")))
        expected = request.cookies.get(LOGIN_COOKIE, "")
        given = str(form.get(CSRF_FIELD, ""))
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise HttpError(403, "csrf_failed", "reload the login page and try again")
        done = await self.accounts.login(name, password, request.remote or "")
        if done is None:
            error = "用户名或密码错误 / wrong name or password"
            return self._login_page(next_path, name[:64], error, status=401)
        response = web.HTTPSeeOther(next_path or landing(done.session.user))
        max_age = int(self.accounts.session_ttl.total_seconds())
        response.set_cookie(SESSION_COOKIE, done.cookie, max_age=max_age, path="/", httponly=True,
                            samesite="Strict", secure=self.secure_cookie)  # fmt: skip
        response.del_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        # the middleware checked the session's CSRF token (a cross-site form cannot log out)
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if cookie:
            await self.accounts.logout(cookie, request.remote or "")
        response = web.HTTPSeeOther(LOGIN_PATH)
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    async def account(self, request: web.Request) -> web.Response:
        user, session = current_user(request), request.get(_WHO, Who()).session
        if user is None or session is None:
            raise web.HTTPSeeOther(f"{LOGIN_PATH}?next=/account")
        return web.Response(text=account_page(user, session.csrf_token), content_type="text/html",
                            headers={"Cache-Control": "no-store"})  # fmt: skip

    async def me(self, request: web.Request) -> web.Response:
        """Who is logged in, and the CSRF token the page sends back with changes."""
        user, session = current_user(request), request.get(_WHO, Who()).session
        assert user is not None  # the access rules let only users through
        body: dict[str, Any] = user.as_dict()
        if session is not None:
            body["csrf_token"] = session.csrf_token
            body["expires_at"] = session.expires_at.isoformat()
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def audit_log(self, request: web.Request) -> web.Response:
        limit = query_int(request, "limit", 100, 1, 1000)
        return web.json_response({"entries": await self.accounts.audit_log(limit)})

    async def home(self, request: web.Request) -> web.Response:
        user = current_user(request)
        raise web.HTTPSeeOther(landing(user) if user else LOGIN_PATH)
